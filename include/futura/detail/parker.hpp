// A one-permit event a thread sleeps on until another thread unparks it.
#pragma once

#include <futura/detail/deadline.hpp>

#include <atomic>
#include <cstdint>

namespace futura::detail {

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
