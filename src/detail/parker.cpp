// Parkers: one futex word per sleeping thread, so that waking a worker (or a waiter) costs one
// atomic exchange, and a system call only if it actually sleeps.
#include <futura/detail/futex.hpp>
#include <futura/detail/parker.hpp>

namespace futura::detail {

bool Parker::park(Deadline deadline) noexcept
{
    if (spin_until([this] { return word_.load(std::memory_order_acquire) == permit; })) {
        word_.store(empty, std::memory_order_relaxed);
        return true;
    }
    std::uint32_t seen = empty;
    for (;;) {
        if (seen == permit) {
            // Only the owner resets the word, so exchange cannot lose a concurrent permit.
            word_.store(empty, std::memory_order_relaxed);
            return true;
        }
        if (seen == empty &&
            !word_.compare_exchange_strong(seen, sleeping, std::memory_order_acquire)) {
            continue; // a permit arrived: `seen` now holds it
        }
        if (!futex_wait(word_, sleeping, deadline)) {
            // Timed out; a permit may still have raced in.
            seen = sleeping;
            if (word_.compare_exchange_strong(seen, empty, std::memory_order_acquire)) {
                return false;
            }
            continue;
        }
        seen = word_.load(std::memory_order_acquire);
    }
}

void Parker::unpark() noexcept
{
    if (word_.exchange(permit, std::memory_order_release) == sleeping) {
        futex_wake_one(word_);
    }
}

} // namespace futura::detail
