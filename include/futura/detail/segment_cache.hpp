// Warm segments for automatic sharing: a large vector sent again writes into pages that are
// already backed instead of faulting in fresh ones, and is read out of them straight into its
// destination.
#pragma once

#include <futura/detail/attachments.hpp>
#include <futura/detail/wire.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace futura::detail {

/// Cached segments unused for this long are given back (the pool, or a worker, is idle).
inline constexpr std::chrono::seconds segment_idle{1};

/// Memfd segments whose pages are backed, kept by a sender (the pool, and each worker) to copy
/// its next large vector into. A segment is reused only once its receiver has released it: the
/// receiver sets a flag in the segment's last page after copying out of it, and the sender
/// checks the flag before writing into it again. A segment is reused only for the receiver it
/// was first sent to (`owner`), so no process ever sees another's data in one.
///
/// Everything it holds is a descriptor of this process: killed, the kernel frees it all.
///
/// @par Thread safety
/// Distinct objects: safe. Shared objects: safe.
class SegmentCache
{
public:
    using Clock = std::chrono::steady_clock;

    /// Keeps at most `limit_bytes` of segments (0: keeps none, every copy gets a fresh one).
    explicit SegmentCache(std::size_t limit_bytes) noexcept : limit_(limit_bytes) {}
    SegmentCache(const SegmentCache&) = delete;
    SegmentCache& operator=(const SegmentCache&) = delete;
    ~SegmentCache() = default;

    /// A segment holding the `bytes` (> 0) bytes at `data`, for `owner`: a released cached one
    /// if there is one that fits, else a new one (kept if it fits the limit).
    struct Filled
    {
        UniqueFd fd;                    // the receiver's copy of the descriptor
        std::uint64_t release_flag = 0; // where the receiver sets its flag; 0: not cached
    };
    /// With `give_up`, the whole pages of [data, data + bytes) are given back to the system as
    /// they are copied (MADV_DONTNEED: they read as zeros afterwards).
    /// @throws SharedMemoryExhausted if the system cannot provide the memory.
    Filled fill(const void* data, std::size_t bytes, std::uint64_t owner, bool give_up = false);

    /// Gives back every segment idle for `idle` (all of them for a zero duration). A segment's
    /// idle time starts at the first trim that finds it released by its receiver, so a call
    /// that runs or is read for longer than `idle` still finds its segments warm: called every
    /// `idle`, a segment is given back between one and two periods after its last use.
    void trim(Clock::duration idle);

    /// Restarts every segment's idle time: the sender is busy, and its next calls may send
    /// vectors of the same sizes.
    void touch();

    /// Forgets the segments of `owner` (a worker that is gone).
    void forget(std::uint64_t owner);

    /// Never reuses the segment `fd` names (a descriptor of the same file): it went to a
    /// receiver other than its owner, which must not see the owner's later data in it.
    void retire(int fd);

    /// The most it keeps, in bytes (ProcessPoolOptions::segment_cache_bytes).
    [[nodiscard]] std::size_t limit() const noexcept { return limit_; }
    /// Bytes of segments held.
    [[nodiscard]] std::size_t held_bytes() const;
    /// How many fills wrote into a warm segment, and how many into a new one.
    [[nodiscard]] std::size_t warm_fills() const;
    [[nodiscard]] std::size_t fresh_fills() const;

private:
    /// A cached segment, and this process's writable mapping of it once it is reused: writing
    /// into warm mapped pages is a plain memcpy, several times faster than pwrite (measured on
    /// 400 MB: 56 ms against 100-190 ms).
    struct Entry
    {
        Entry() noexcept = default;
        Entry(Entry&& other) noexcept;
        Entry& operator=(Entry&& other) noexcept;
        Entry(const Entry&) = delete;
        Entry& operator=(const Entry&) = delete;
        ~Entry();

        UniqueFd fd;
        void* mapping = nullptr; // of the data room, made at the first reuse
        std::size_t size = 0;    // of the file: data room, then a page holding the release flag
        std::uint64_t owner = 0;
        Clock::time_point used;          // filled, or the start of its idle time
        bool idle_clock_started = false; // a trim found it released since `used`
    };

    mutable std::mutex mutex_; // guards entries_, held_, warm_, fresh_
    std::vector<Entry> entries_;
    std::size_t limit_;
    std::size_t held_ = 0;
    std::size_t warm_ = 0;
    std::size_t fresh_ = 0;
};

/// The segments a task's own large vector arguments went out in, kept by the task until it is
/// done: the lvalue rule of issue 13. `submit(f, v)` stores a copy of `v` in the task; copying
/// that into a segment as well would hold the data three times in the caller (`v`, the task's
/// copy, the segment). Instead the task's copy is given back page by page as it is copied
/// (MADV_DONTNEED: the task never reads its arguments again), and the segment, write-sealed,
/// becomes the task's copy: a call sent again (taken back from a busy worker, or its worker
/// died before starting it) sends the same segment. At most one extra copy at any time.
/// A worker gives up its large results the same way (RemoteCall::invoke), never resending them.
struct ArgumentSegments
{
    struct Sent
    {
        UniqueFd fd;
        std::uint64_t release_flag = 0; // of a cached segment (never reused before it is read)
        std::uint64_t owner = 0;        // the receiver it was first sent to
    };
    std::vector<Sent> segments; // in the order the arguments are encoded
    std::size_t next = 0;       // the next one to send, in this encoding
};

/// Sends `bytes` (> 0) bytes at `data` in a segment: one from the writer's cache if it has one,
/// else a fresh write-sealed one. Writes the descriptor's index and the release flag's offset.
/// When the writer encodes a task's own arguments (`WireWriter::argument_segments`), the data at
/// `data` is given up as it is copied, and the segment is kept for a re-send (ArgumentSegments).
/// A cached segment may be kept so: its receiver claims the call before it reads the segment
/// (and releases it for reuse), and a claimed call is never sent again.
/// @throws SharedMemoryExhausted if the system cannot provide the memory.
void encode_in_cached_segment(WireWriter& out, const void* data, std::size_t bytes);

/// What `encode_in_cached_segment` sent, as received.
struct ReceivedSegment
{
    UniqueFd fd;
    std::uint64_t release_flag = 0;
};

/// Reads the handle `encode_in_cached_segment` wrote, checked against `bytes` before the
/// receiver allocates anything. @throws ProtocolError if the message is malformed.
ReceivedSegment take_cached_segment(WireReader& in, std::size_t bytes);

/// Copies the segment's first `bytes` bytes straight into `to` (one copy, no intermediate
/// buffer), then releases the segment to its sender.
/// @throws ProtocolError if the segment cannot be read.
void read_cached_segment(const ReceivedSegment& segment, void* to, std::size_t bytes);

/// Debug counters of the copies of large values (tests check that a call makes no more copies
/// than value semantics need): how many vectors went into a segment, and out of one; and how
/// many of those into a segment went into a warm one from a cache.
struct LargeCopyCounters
{
    std::uint64_t into_segment = 0;
    std::uint64_t out_of_segment = 0;
    std::uint64_t into_warm_segment = 0;
};
[[nodiscard]] LargeCopyCounters large_copy_counters() noexcept;

} // namespace futura::detail
