// futura::SharedLock: a lock that processes share without a server (Python's Manager().Lock()),
// which survives the death of its holder.
#pragma once

#include <futura/detail/deadline.hpp>
#include <futura/detail/shared_block.hpp>
#include <futura/transferable.hpp>

#include <chrono>

namespace futura {

/// A mutex shared between processes: passed to a process task it travels as a handle, and the
/// worker and this process lock the same lock. Usable with `std::lock_guard`, `std::unique_lock`
/// and `std::scoped_lock` (it is a *TimedLockable*).
///
/// - Robust: if a process dies holding it (a crashed or SIGKILLed worker), the next `lock()`,
///   in any process, gets it anyway, and `owner_died()` then says so until it is released, for
///   the new holder to repair what the lock guards. (Python's `Manager().Lock()` dies with the
///   manager; `multiprocessing.Lock()` stays held forever.)
/// - Error-checking: `lock()` again in the thread that holds it throws `std::system_error`
///   (`EDEADLK`) instead of hanging; `unlock()` by a thread that does not hold it throws
///   (`EPERM`).
///
/// Copies refer to the same lock (a handle). A default-constructed `SharedLock` is a new lock.
///
/// @par Example
/// @code
/// void add_twice(futura::SharedLock lock, futura::SharedArray<long> pair)
/// {
///     std::lock_guard held(lock);
///     if (lock.owner_died()) { /* a holder died: repair pair */ }
///     pair[0] += 1; pair[1] += 1;
/// }
/// @endcode
///
/// @par Thread safety
/// Distinct objects: safe. Shared objects: safe, across threads and processes.
class SharedLock
{
public:
    /// A new, unlocked lock in shared memory. @throws std::bad_alloc if shared memory runs out.
    SharedLock();

    /// Waits for the lock. @throws std::system_error (EDEADLK) if this thread holds it.
    void lock();

    /// Takes the lock if it is free. @return whether it took it.
    [[nodiscard]] bool try_lock();

    /// Waits for the lock at most `timeout`. @return whether it took it.
    template <class Rep, class Period>
    [[nodiscard]] bool try_lock_for(std::chrono::duration<Rep, Period> timeout)
    {
        return try_lock_until_deadline(detail::deadline_after(timeout));
    }

    /// Waits for the lock until `at` (any clock). @return whether it took it.
    template <class C, class Duration>
    [[nodiscard]] bool try_lock_until(std::chrono::time_point<C, Duration> at)
    {
        return try_lock_for(at - C::now());
    }

    /// Releases the lock. @throws std::system_error (EPERM) if this thread does not hold it.
    void unlock();

    /// For the holder: whether it took the lock from a process that died holding it (what the
    /// lock guards may be half-updated). False once released, and for anyone else.
    [[nodiscard]] bool owner_died() const noexcept;

    /// Whether `a` and `b` are the same lock.
    friend bool operator==(const SharedLock& a, const SharedLock& b) noexcept
    {
        return a.block_.same_as(b.block_);
    }

private:
    friend struct detail::Codec<SharedLock>;
    struct Received
    {};
    explicit SharedLock(Received) noexcept {}

    bool try_lock_until_deadline(detail::Deadline deadline);

    detail::SharedBlock block_;
};

namespace detail {

inline constexpr std::uint64_t shared_lock_tag = shared_tag(SharedKind::lock, 0);

/// A SharedLock travels as a handle to its segment.
template <>
struct Codec<SharedLock>
{
    static constexpr bool supported = true;
    static void encode(WireWriter& out, const SharedLock& lock) { lock.block_.encode(out); }
    static SharedLock decode(WireReader& in)
    {
        SharedLock lock(SharedLock::Received{});
        lock.block_ = SharedBlock::decode(in, shared_lock_tag);
        return lock;
    }
    template <class Archive>
    static void serialize(Archive& archive, SharedLock& lock)
    {
        lock.block_.serialize(archive, shared_lock_tag);
    }
};

} // namespace detail

} // namespace futura

namespace boost::serialization {

/// A SharedLock inside a user type sent to or from a worker travels as a handle.
template <class Archive>
void serialize(Archive& archive, futura::SharedLock& lock, unsigned /*version*/)
{
    futura::detail::Codec<futura::SharedLock>::serialize(archive, lock);
}

} // namespace boost::serialization
