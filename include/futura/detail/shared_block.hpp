// What futura's server-less shared objects have in common (SharedValue, SharedLock, SharedEvent,
// SharedQueue, SharedDict): a robust process-shared lock, futexes that other processes can wake,
// and a segment that starts with a header holding the lock and the crash bookkeeping, sent to a
// worker process as a handle.
#pragma once

#include <futura/detail/deadline.hpp>
#include <futura/detail/segment.hpp>
#include <futura/detail/wire.hpp>
#include <futura/transferable.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <pthread.h>
#include <utility>

namespace futura::detail {

/// Makes `mutex` (in fresh shared memory) process-shared, robust and error-checking.
/// @throws std::system_error if the system refuses.
void init_robust_mutex(pthread_mutex_t& mutex);

/// Locks a robust mutex. @return whether its previous owner died holding it (it is consistent
/// again, and locked). @throws std::system_error if it cannot be locked (EDEADLK: this thread
/// holds it already).
bool lock_robust_mutex(pthread_mutex_t& mutex);

/// What `try_lock_robust_mutex` got.
enum class RobustLock
{
    acquired,
    owner_died, ///< acquired, from an owner that died holding it (consistent again)
    busy,       ///< not acquired: held by another thread until the deadline
};

/// Locks a robust mutex if that can be done by `deadline` (a deadline already passed: tries
/// once, without waiting). @throws std::system_error as lock_robust_mutex.
RobustLock try_lock_robust_mutex(pthread_mutex_t& mutex, Deadline deadline);

/// Unlocks. @throws std::system_error (EPERM) if this thread does not hold it.
void unlock_robust_mutex(pthread_mutex_t& mutex);

/// Sleeps while `word == expected`, until woken by any process that maps the same memory, or
/// until `deadline`. May return spuriously. @return false only if the deadline passed.
bool shared_futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
                       Deadline deadline) noexcept;

/// Wakes up to `count` sleepers on `word`, in any process.
void shared_futex_wake(const std::atomic<std::uint32_t>& word, int count) noexcept;

/// The start of every shared object's segment.
struct alignas(64) SharedHeader
{
    /// What the segment holds (kind and layout, see shared_tag): a handle is checked against it.
    std::uint64_t tag = 0;
    /// Guards the object's body, and `writing` and `broken`.
    pthread_mutex_t mutex;
    /// 1 while the lock's holder is changing the body. A holder that dies with it set left the
    /// body half-changed: the next owner marks the object broken.
    std::atomic<std::uint32_t> writing{0};
    /// 1 for good once a holder died while writing: every later call throws BrokenSharedState.
    std::atomic<std::uint32_t> broken{0};
    /// SharedLock: whether its current holder took it from an owner that died holding it.
    std::atomic<std::uint32_t> owner_died{0};
};

/// The body of a shared object starts here, after its header.
inline constexpr std::size_t shared_body_offset = sizeof(SharedHeader);

/// The kind of object a segment holds.
enum class SharedKind : std::uint64_t
{
    lock = 1,
    event = 2,
    queue = 3,
    dict = 4,
};

/// A tag for `kind` with element layout `layout` (sizes and alignments of the type arguments,
/// so that a handle of `SharedDict<int, long>` is not read as `SharedDict<long, int>`).
[[nodiscard]] constexpr std::uint64_t shared_tag(SharedKind kind, std::uint64_t layout) noexcept
{
    constexpr std::uint64_t magic = 0x66757475'00000000; // "futu"
    return magic ^ (static_cast<std::uint64_t>(kind) << 28U) ^ (layout & 0x0fff'ffffU);
}

/// The layout part of a tag, from the sizes and alignments of up to two types.
[[nodiscard]] constexpr std::uint64_t shared_layout(std::size_t size_a, std::size_t align_a,
                                                    std::size_t size_b = 0,
                                                    std::size_t align_b = 0) noexcept
{
    return (size_a * 131 + align_a) * 8191 + size_b * 131 + align_b;
}

/// A testing seam: called, if set, each time a shared object starts changing its body (with its
/// lock held and `writing` set), so that a test can kill the process exactly there. Null in
/// programs; set only by the crash tests, in the process that they kill.
inline void (*while_writing_hook)(const char* type) = nullptr;

/// The segment of one shared object and its header: what every handle holds. Copies share it.
class SharedBlock
{
public:
    SharedBlock() noexcept = default;

    /// A new zeroed segment of `shared_body_offset + body` bytes, whose header has its tag and
    /// an initialised lock. @throws std::bad_alloc if shared memory runs out.
    static SharedBlock create(std::size_t body, std::uint64_t tag);

    [[nodiscard]] SharedHeader& header() const noexcept { return *header_; }
    [[nodiscard]] std::byte* body() const noexcept
    {
        return reinterpret_cast<std::byte*>(header_) + shared_body_offset; // NOLINT
    }
    [[nodiscard]] std::size_t body_size() const noexcept
    {
        return segment_->size() - shared_body_offset;
    }
    [[nodiscard]] bool same_as(const SharedBlock& other) const noexcept
    {
        return header_ == other.header_;
    }

    /// Sends the handle: a copy of the segment's descriptor.
    void encode(WireWriter& out) const;

    /// Maps the segment a handle names, checked to be an object with `tag`.
    /// @throws ProtocolError if it is not.
    static SharedBlock decode(WireReader& in, std::uint64_t tag);

    /// Boost.Serialization of the handle, inside a user type sent to or from a worker.
    template <class Archive>
    void serialize(Archive& archive, std::uint64_t tag)
    {
        serialize_segment_handle(
            archive,
            [&](WireWriter& out) {
                return attach_segment(out, *segment_, segment_->data(), segment_->size());
            },
            [&](WireReader& in, const SegmentHandle& handle) {
                *this = adopt(open_segment(in, handle, alignof(SharedHeader), true), tag);
            });
    }

private:
    static SharedBlock adopt(SegmentView view, std::uint64_t tag);

    std::shared_ptr<Segment> segment_;
    SharedHeader* header_ = nullptr;
};

/// Holds a shared object's lock for one call (or for a user's guard). A previous owner that died
/// while writing marks the object broken; a broken object is refused.
class StateLock
{
public:
    /// Takes the lock of the object `type` names in messages ("futura::SharedDict").
    /// @throws BrokenSharedState if the object is broken; std::system_error if the lock cannot be
    /// taken (EDEADLK: this thread holds it already).
    StateLock(SharedHeader& header, const char* type);
    StateLock(const StateLock&) = delete;
    StateLock& operator=(const StateLock&) = delete;
    StateLock(StateLock&& other) noexcept
        : header_(std::exchange(other.header_, nullptr)), owner_died_(other.owner_died_)
    {}
    StateLock& operator=(StateLock&&) = delete;
    ~StateLock() { unlock(); }

    /// Whether the previous owner died holding the lock (but not while writing: the body is
    /// whole, though a multi-call update of that owner may be half done).
    [[nodiscard]] bool owner_died() const noexcept { return owner_died_; }

    /// Releases the lock (once; later calls do nothing).
    void unlock() noexcept;

private:
    SharedHeader* header_;
    bool owner_died_ = false;
};

/// Marks the body as being changed while it lives (the lock held): a holder that dies in between
/// leaves the object broken rather than silently half-changed.
class WritingScope
{
public:
    WritingScope(SharedHeader& header, const char* type) noexcept;
    WritingScope(const WritingScope&) = delete;
    WritingScope& operator=(const WritingScope&) = delete;
    ~WritingScope();

private:
    SharedHeader& header_;
};

/// @throws BrokenSharedState for the object `type`.
[[noreturn]] void throw_broken(const char* type);

} // namespace futura::detail
