// The compiled part of futura::SharedLock: a robust process-shared mutex.
#include <futura/shared_lock.hpp>

#include <pthread.h>
#include <unistd.h>

namespace futura {

// The lock is the header's robust mutex; the header's owner_died word is written only by the
// lock's holder (under the lock), and read by it.

SharedLock::SharedLock() : block_(detail::SharedBlock::create(0, detail::shared_lock_tag)) {}

void SharedLock::lock()
{
    const bool died = detail::lock_robust_mutex(block_.header().mutex);
    block_.header().owner_died.store(died ? 1U : 0U, std::memory_order_relaxed);
}

bool SharedLock::try_lock() { return try_lock_until_deadline(detail::Clock::now()); }

bool SharedLock::try_lock_until_deadline(detail::Deadline deadline)
{
    const auto got = detail::try_lock_robust_mutex(block_.header().mutex, deadline);
    if (got == detail::RobustLock::busy) {
        return false;
    }
    block_.header().owner_died.store(got == detail::RobustLock::owner_died ? 1U : 0U,
                                     std::memory_order_relaxed);
    return true;
}

void SharedLock::unlock()
{
    // Cleared before the release, while still ours (after it, the next holder may set it). A
    // thread that does not hold the lock, whose unlock is about to fail, must not clear the
    // holder's flag: glibc records the holder's thread id in the mutex. Only when it is set,
    // which is rare: gettid is a system call.
    auto& header = block_.header();
    if (header.owner_died.load(std::memory_order_relaxed) != 0 &&
        header.mutex.__data.__owner == ::gettid()) {
        header.owner_died.store(0, std::memory_order_relaxed);
    }
    detail::unlock_robust_mutex(header.mutex);
}

bool SharedLock::owner_died() const noexcept
{
    return block_.header().owner_died.load(std::memory_order_relaxed) != 0;
}

} // namespace futura
