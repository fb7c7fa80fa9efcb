// A point in time after which a blocking call gives up; `never` for no timeout.
#pragma once

#include <chrono>

namespace futura::detail {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

inline constexpr Deadline never = Deadline::max();

/// The deadline `timeout` from now. Saturates instead of overflowing, so a huge timeout means
/// "forever"; a negative one means "already passed" (a poll), as in Python.
template <class Rep, class Period>
[[nodiscard]] Deadline deadline_after(std::chrono::duration<Rep, Period> timeout) noexcept
{
    const auto now = Clock::now();
    const auto left = std::chrono::duration<double>(never - now);
    const auto asked = std::chrono::duration<double>(timeout);
    if (asked >= left) {
        return never;
    }
    if (asked <= asked.zero()) {
        return now;
    }
    return now + std::chrono::duration_cast<Clock::duration>(asked);
}

} // namespace futura::detail
