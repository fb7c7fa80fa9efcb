// A ring of answer frames in memory shared by the pool and one worker process.
//
// Why: a worker must hand each answer over before it starts the next call, so that a crash in
// that call is charged to it alone and no finished call's result is lost. Over the socket that
// costs a send per answer, most of a worker's time for small calls. Written here, an answer is
// out of the worker just as surely (the parent created the memory and keeps it mapped, so it
// outlives the worker), for the price of a copy; the worker writes to the socket only to wake
// a parent that sleeps.
//
// The worker is not trusted: the parent keeps its own read position, never reads the worker's
// indices twice, copies each record out before checking it, and refuses anything that does not
// add up with a ProtocolError. The memory is sealed against shrinking, so a worker cannot make
// the parent's reads fault.
#pragma once

#include <futura/detail/unique_fd.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace futura::detail {

class AnswerRing
{
public:
    /// The data area's size unless told otherwise: room for hundreds of small answers, far more
    /// than the scheduler keeps unanswered on one worker.
    static constexpr std::size_t default_capacity = 64 * 1024;
    /// Frames larger than this go on the socket: a copy costs as much as the send there.
    static constexpr std::size_t max_frame = 8 * 1024;
    /// Capacities allowed (powers of two): the smallest holds one largest frame.
    static constexpr std::size_t min_capacity = 256;
    static constexpr std::size_t max_capacity = std::size_t{1} << 24;

    /// The shared layout: a page of control words, then the data area. Each word on its own
    /// cache line: the worker writes `head`, the parent `tail` and `parent_asleep`.
    struct Control
    {
        alignas(64) std::atomic<std::uint64_t> head; ///< bytes of records published (worker)
        alignas(64) std::atomic<std::uint64_t> tail; ///< bytes of records taken (parent)
        /// 1: the parent looks again only when woken through the socket (parent sets it, the
        /// worker takes it back to 0 when it wakes the parent).
        alignas(64) std::atomic<std::uint32_t> parent_asleep;
    };
    static constexpr std::size_t data_offset = 4096;

    /// Each record: this header, then the frame, then padding to a multiple of 16 bytes
    /// (so a header never wraps around the end of the data area; the frame may).
    struct Record
    {
        std::uint64_t sequence; ///< the worker's count of answers before this one
        std::uint64_t size;     ///< the frame's bytes
    };
    static constexpr std::size_t record_alignment = sizeof(Record);

    /// The parent's side: a fresh ring, sealed against resizing, the parent asleep.
    /// @throws std::system_error if the memory cannot be made.
    static AnswerRing create(std::size_t capacity = default_capacity);
    /// The worker's side: maps the ring the parent sent, then closes `fd`.
    /// @throws ProtocolError if `fd` is not a ring.
    static AnswerRing open(UniqueFd fd);

    /// The descriptor to send to the worker (parent only).
    [[nodiscard]] int fd() const noexcept { return fd_.get(); }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

    // ----- worker ----------------------------------------------------------------------------
    /// Whether the parent sleeps; if so, this caller has taken the duty to wake it (by sending
    /// on the socket) and the next callers will not.
    bool take_wake_duty() noexcept;
    /// Appends `frame` as answer number `sequence`. @return false if it is larger than
    /// `max_frame` or the ring has no room: then it goes on the socket.
    bool try_write(std::span<const char> frame, std::uint64_t sequence) noexcept;

    // ----- parent ----------------------------------------------------------------------------
    /// Copies the next record's frame into `frame` and gives its room back to the worker.
    /// @return its sequence number, or nothing if the worker has published no more.
    /// @throws ProtocolError if the worker's index or the record's size cannot be right.
    std::optional<std::uint64_t> read(std::vector<char>& frame);
    /// The parent will look at the ring again only when woken. @return false if records came
    /// meanwhile (then it stays awake and must read them).
    bool try_sleep() noexcept;

private:
    AnswerRing(std::shared_ptr<void> mapping, std::size_t capacity, UniqueFd fd);
    [[nodiscard]] Control& control() const noexcept;
    [[nodiscard]] char* data() const noexcept;

    std::shared_ptr<void> mapping_; // control page and data; unmapped when the last copy goes
    std::size_t capacity_;          // a power of two
    UniqueFd fd_;                   // parent: to send; a worker keeps none open
    std::uint64_t position_ = 0;    // worker: its head; parent: its own read position
};

} // namespace futura::detail
