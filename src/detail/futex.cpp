// Futexes: sleeping on a 32-bit word until another thread changes it and wakes it, with an
// absolute deadline (FUTEX_WAIT_BITSET on CLOCK_MONOTONIC, which is steady_clock on Linux).
#include <futura/detail/futex.hpp>

#include <cerrno>
#include <chrono>
#include <climits>
#include <ctime>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace futura::detail {

namespace {

long futex(const std::atomic<std::uint32_t>& word, int op, std::uint32_t value,
           const timespec* timeout, std::uint32_t mask) noexcept
{
    // The kernel reads the word; it never writes it, so the const_cast is only for the ABI.
    auto* address = const_cast<std::atomic<std::uint32_t>*>(&word); // NOLINT
    return syscall(SYS_futex, address, op, value, timeout, nullptr, mask);
}

} // namespace

bool futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
                Deadline deadline) noexcept
{
    static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
    if (deadline == never) {
        futex(word, FUTEX_WAIT_PRIVATE, expected, nullptr, 0);
        return true;
    }
    if (Clock::now() >= deadline) {
        return false;
    }
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, which is what steady_clock
    // is on Linux: no drift from converting to a relative timeout on every retry.
    const auto since_epoch = deadline.time_since_epoch();
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
    timespec at{};
    at.tv_sec = static_cast<time_t>(seconds.count());
    at.tv_nsec = static_cast<long>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - seconds).count());
    if (futex(word, FUTEX_WAIT_BITSET_PRIVATE, expected, &at, FUTEX_BITSET_MATCH_ANY) == -1 &&
        errno == ETIMEDOUT) {
        return false;
    }
    return true;
}

void futex_wake_all(const std::atomic<std::uint32_t>& word) noexcept
{
    futex(word, FUTEX_WAKE_PRIVATE, static_cast<std::uint32_t>(INT32_MAX), nullptr, 0);
}

void futex_wake_one(const std::atomic<std::uint32_t>& word) noexcept
{
    futex(word, FUTEX_WAKE_PRIVATE, 1, nullptr, 0);
}

} // namespace futura::detail
