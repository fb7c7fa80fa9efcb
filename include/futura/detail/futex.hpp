// Linux futex wait/wake on a 32-bit atomic word.
//
// futura blocks on futexes rather than on a mutex and condition variable so that a future's state
// word is also its wait queue: a future costs no mutex, and completing one nobody waits for costs
// no system call. `std::atomic::wait` would do for untimed waits, but it has no timed form.
#pragma once

#include <futura/detail/deadline.hpp>

#include <atomic>
#include <cstdint>

namespace futura::detail {

/// Sleeps while `word == expected`, until woken or `deadline` passes. May return spuriously.
/// @return false only if the deadline passed.
bool futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
                Deadline deadline) noexcept;

/// Wakes every thread sleeping on `word`.
void futex_wake_all(const std::atomic<std::uint32_t>& word) noexcept;

/// Wakes at most one thread sleeping on `word`.
void futex_wake_one(const std::atomic<std::uint32_t>& word) noexcept;

/// A short busy-wait hint for spin loops.
inline void cpu_relax() noexcept
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

} // namespace futura::detail
