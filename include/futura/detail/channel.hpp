// Bytes and file descriptors over the Unix stream socket between a pool and a worker.
//
// Descriptors ride on SCM_RIGHTS control messages attached to the leading bytes of a write, so
// they always arrive no later than the frames that refer to them; the receiver queues them in
// arrival order and each frame takes as many as its header says.
#pragma once

#include <futura/detail/attachments.hpp>
#include <futura/detail/protocol.hpp>

#include <cstddef>
#include <deque>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <sys/types.h>
#include <sys/uio.h>
#include <type_traits>
#include <utility>
#include <vector>

namespace futura::detail {

/// Allocates without zeroing what it adds: recvmsg writes a receive buffer before anything
/// reads it, and zeroing a large frame's room at every read would cost more than the read.
template <class T>
struct UninitializedAllocator : std::allocator<T>
{
    template <class U>
    struct rebind
    {
        using other = UninitializedAllocator<U>;
    };
    UninitializedAllocator() noexcept = default;
    template <class U>
    UninitializedAllocator(const UninitializedAllocator<U>& /*other*/) noexcept // NOLINT
    {}
    template <class U>
    void construct(U* place) noexcept(std::is_nothrow_default_constructible_v<U>)
    {
        ::new (static_cast<void*>(place)) U; // default-initialised: for char, left as it is
    }
    template <class U, class... Args>
    void construct(U* place, Args&&... args)
    {
        ::new (static_cast<void*>(place)) U(std::forward<Args>(args)...);
    }
};

/// Bytes received from a channel and not yet parsed.
using ReceiveBuffer = std::vector<char, UninitializedAllocator<char>>;

/// A channel buffer larger than this is given back once empty: one large argument or result
/// must not pin its size in every process for the pool's lifetime.
inline constexpr std::size_t kept_buffer_bytes = std::size_t{16} << 20;

/// Empties `buffer`, giving its memory back if it grew beyond `kept_buffer_bytes`.
template <class Buffer>
void clear_buffer(Buffer& buffer) noexcept
{
    if (buffer.capacity() > kept_buffer_bytes) {
        Buffer().swap(buffer);
    } else {
        buffer.clear();
    }
}

/// Descriptors received and not yet claimed by a frame, oldest first.
using ReceivedDescriptors = std::deque<UniqueFd>;

/// One read of what is available on `socket`, appended to `in`; descriptors that came with it
/// are appended to `descriptors`.
/// @return the bytes read, 0 at end of input, or -1 with errno set (EAGAIN when `nonblocking`
///         and nothing is there).
/// @throws ProtocolError if descriptors were dropped for lack of room (the sender broke the
///         one-control-message-per-253-descriptors rule) or something other than descriptors
///         came as control data.
ssize_t receive_some(int socket, ReceiveBuffer& in, ReceivedDescriptors& descriptors,
                     bool nonblocking);

/// As `receive_some`, reading at most `max_bytes` (or 64 KiB, if more) in one step (for an
/// inbox that hands out large frames before they have arrived, and so need not make room for
/// all of one at once).
ssize_t receive_some(int socket, ReceiveBuffer& in, ReceivedDescriptors& descriptors,
                     bool nonblocking, std::size_t max_bytes);

/// One read of what is available on `socket` into `into` (not empty), descriptors as
/// `receive_some`. @return as `receive_some`.
ssize_t receive_into(int socket, std::span<char> into, ReceivedDescriptors& descriptors,
                     bool nonblocking);

/// A frame of which at least this much has not arrived is decoded as it arrives where the
/// inbox allows it (`FrameInbox::read_large_frames_as_decoded`).
inline constexpr std::size_t streamed_frame_bytes = std::size_t{1} << 20;

/// How many bytes the frame that starts `in` still lacks (0 if its header is not complete or
/// not valid yet), so that a large frame is read in large steps into memory reserved once,
/// instead of 64 KiB at a time into a buffer that keeps moving as it grows.
std::size_t missing_frame_bytes(std::span<const char> in) noexcept;

/// Sends the first `count` (at most Attachments::max_descriptors) of `descriptors`, attached to
/// the first byte of `data` (which must not be empty).
/// @return 1 (the byte sent), or -1 with errno set (EAGAIN when `nonblocking` and the socket is
///         full; nothing was sent then).
ssize_t send_descriptors(int socket, std::span<const char> data,
                         std::span<const UniqueFd> descriptors, bool nonblocking);

/// Moves the `count` oldest received descriptors into `to`, for the frame that needs them.
/// @throws ProtocolError if fewer than `count` arrived: the frame names descriptors it lacks.
void claim_descriptors(ReceivedDescriptors& from, std::size_t count, Attachments& to);

/// Frames received on a channel and the descriptors that came with them: both ends of every
/// channel read through one of these.
///
/// A reader that may block on the channel (a worker) lets the inbox hand out a large frame as
/// soon as its checked prefix is in (`read_large_frames_as_decoded`): the frame's decoder then
/// reads the rest of it from the channel through the inbox (a MessageTail), straight into the
/// values it makes, and the next `receive` skips what the decoder left unread.
class FrameInbox final : public MessageTail
{
public:
    /// `max_unclaimed`: how many received descriptors may wait for their frame. The parent
    /// allows a worker one answer's worth (a worker must not fill its descriptor table); a
    /// worker trusts its parent, whose one write may carry several frames' descriptors.
    explicit FrameInbox(std::size_t max_unclaimed = static_cast<std::size_t>(-1)) noexcept
        : max_unclaimed_(max_unclaimed)
    {}

    /// One read of what is available (`receive_some`), after dropping the frames taken.
    /// Invalidates the payloads of frames `next` returned before.
    /// @return the bytes read, 0 at end of input, or -1 with errno set.
    /// @throws ProtocolError as `receive_some`, or if more than `max_unclaimed` descriptors
    /// wait for their frames.
    ssize_t receive(int socket, bool nonblocking);

    /// The next complete frame, its descriptors moved into `attachments`; nothing if more bytes
    /// are needed. Its payload stays valid until the next `receive`. Once
    /// `read_large_frames_as_decoded`, also a large frame of which `unread` bytes are still on
    /// the channel: read them with `read`, before the next `receive`.
    /// @throws ProtocolError if the bytes are not a valid frame or its descriptors are missing.
    std::optional<Frame> next(Attachments& attachments);

    /// From now on, `next` hands out a frame of which at least `streamed_frame_bytes` have not
    /// arrived once its checked prefix is in, and `read` reads the rest from `socket`, blocking.
    void read_large_frames_as_decoded(int socket) noexcept { tail_socket_ = socket; }

    /// For a reader that must not block (the parent): the next frame if it is large and only its
    /// start is in (as `parse_frame_start` finds it: at least `streamed_frame_bytes` not arrived,
    /// the checked prefix in and authenticated), without taking it; nothing otherwise, and
    /// nothing for a frame whose start was declined (`keep_buffering`).
    /// @throws ProtocolError as `next`.
    std::optional<Frame> peek_large_start();

    /// Takes the frame `peek_large_start` returned and reads its unread bytes into `rest`
    /// (exactly that many) as they come, in the `receive` calls that follow, instead of
    /// buffering them; `rest_received` says when they are all in.
    void receive_rest_into(std::span<char> rest) noexcept;

    /// The frame `peek_large_start` returned is to be buffered whole and taken by `next`.
    void keep_buffering() noexcept { declined_start_ = true; }

    /// Whether a frame's rest is being read into its storage (`receive_rest_into`).
    [[nodiscard]] bool receiving_rest() const noexcept { return receiving_rest_; }
    /// Whether all of it is in; then `end_receiving_rest`.
    [[nodiscard]] bool rest_received() const noexcept { return rest_.empty(); }
    void end_receiving_rest() noexcept { receiving_rest_ = false; }

    /// Reads `size` bytes of the last frame's unread ones into `into`, blocking.
    /// @throws ProtocolError if that is more than the frame has left, or the channel fails or
    /// ends first.
    void read(char* into, std::size_t size) override;

    /// Whether bytes of an incomplete frame are held.
    [[nodiscard]] bool holds_partial_frame() const noexcept { return consumed_ < bytes_.size(); }

private:
    /// Reads and drops what is left unread of the last frame (its decoder stopped early).
    void skip_tail();
    void check_unclaimed() const;

    ReceiveBuffer bytes_;
    std::size_t consumed_ = 0;        // bytes of frames already returned
    ReceivedDescriptors descriptors_; // not yet claimed by a frame
    std::size_t max_unclaimed_;
    int tail_socket_ = -1;          // where unread bytes of frames are read from; -1: never
    std::uint64_t tail_unread_ = 0; // bytes of the last frame still on the channel
    bool declined_start_ = false;   // the next frame is large and is to be buffered whole
    bool receiving_rest_ = false;   // a frame's rest goes into rest_ (receive_rest_into)
    std::span<char> rest_;          // what of it has not arrived
};

/// Frames waiting to be written to a channel, with the descriptors they refer to and the large
/// payloads they comprise without holding them. Frames may be added while a write is under way:
/// descriptors always go out no later than their frame.
///
/// A large payload (InPlaceBytes) is written straight from its storage, between the buffer's
/// bytes, by `sendmsg` with several iovecs (a gather write): the buffer never holds a copy. The
/// outbox holds its owner until its last byte is written, so the storage outlives the write
/// however the frame's task ends meanwhile (answered by another worker, killed); dropping the
/// outbox (its worker died) drops the owners with the unsent frames.
class FrameOutbox
{
public:
    /// Where frames are encoded (`begin_frame`, `finish_frame`).
    std::vector<char>& bytes() noexcept { return bytes_; }

    /// Adds the descriptors the frame just finished refers to, in order.
    void add_descriptors(std::vector<UniqueFd>& descriptors);

    /// Adds what the frame just finished refers to: its descriptors, and the payloads to write
    /// from where they are (their offsets are in `bytes()`, after every earlier frame's).
    void add_attachments(Attachments& attachments);

    [[nodiscard]] bool empty() const noexcept
    {
        return sent_ == bytes_.size() && piece_ == in_place_.size();
    }

    enum class Progress
    {
        done,    ///< everything was written
        blocked, ///< the socket is full (nonblocking): try again when it is writable
        failed,  ///< the other end is gone (errno says why)
    };

    /// Writes as much as the socket takes: the descriptors first, each batch of up to 253 on one
    /// byte, then the rest. Blocking, it returns only when done or failed.
    Progress write(int socket, bool nonblocking);

private:
    /// Describes up to `max` of the unwritten bytes, in order, from the buffer and the payloads.
    /// @return how many iovecs it filled (0 when everything is written).
    std::size_t gather(iovec* parts, std::size_t max) const noexcept;
    /// Counts `count` more bytes as written, releasing each payload written in full.
    void advance(std::size_t count) noexcept;

    std::vector<char> bytes_;
    std::size_t sent_ = 0;               // bytes of bytes_ written
    std::vector<InPlaceBytes> in_place_; // by offset into bytes_
    std::size_t piece_ = 0;              // the first of in_place_ not written in full
    std::size_t piece_sent_ = 0;         // bytes of it written
    std::vector<UniqueFd> descriptors_;  // to go out with the next bytes written
};

} // namespace futura::detail
