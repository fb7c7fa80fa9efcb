// A one-permit event a thread sleeps on until another thread unparks it.
#pragma once

#include <futura/detail/deadline.hpp>
#include <futura/detail/futex.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <sched.h>

namespace futura::detail {

/// How long a thread about to sleep first spins. A futex sleep followed by a wake costs the waker
/// a system call and the sleeper microseconds of scheduler latency; a result that arrives within
/// this window costs neither.
inline constexpr auto spin_window = std::chrono::microseconds(20);

/// Spins until `done()` (then true) or the spin window passes (then false): first with pause,
/// then with sched_yield. When the thread we wait for shares our CPU (on a 2-core machine it
/// often does), a pure busy-wait would keep it off the CPU for the whole window, whereas
/// yielding lets it run and deliver at once. On an otherwise idle CPU, yield returns immediately
/// and the loop is a plain spin.
template <class Done>
bool spin_until(Done&& done) noexcept
{
    for (int i = 0; i < 32; ++i) {
        if (done()) {
            return true;
        }
        cpu_relax();
    }
    const auto until = Clock::now() + spin_window;
    do {
        sched_yield();
        if (done()) {
            return true;
        }
    } while (Clock::now() < until);
    return false;
}

/// Like a binary semaphore owned by one sleeping thread: `unpark()` grants a permit (waking the
/// thread if it sleeps), `park()` consumes one or sleeps until granted. Extra permits coalesce,
/// so a stale `unpark()` costs the parked thread one spurious wake-up, never a lost one.
class Parker
{
public:
    /// Consumes the permit, spinning briefly then sleeping until one is granted or the deadline
    /// passes. @return false if the deadline passed first.
    bool park(Deadline deadline) noexcept;

    /// Grants the permit; issues a system call only if the owner is actually asleep.
    void unpark() noexcept;

private:
    static constexpr std::uint32_t empty = 0;
    static constexpr std::uint32_t permit = 1;
    static constexpr std::uint32_t sleeping = 2;

    std::atomic<std::uint32_t> word_{empty};
};

} // namespace futura::detail
