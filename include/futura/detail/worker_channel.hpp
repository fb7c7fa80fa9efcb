// The parent's end of one worker's channel: it writes the frames the pool queues as the socket
// takes them, reads what the worker sends, and hands each complete frame to a listener, all on
// the pool's I/O thread.
//
// A worker's answers come two ways: most through its AnswerRing, the others (large ones, those
// with descriptors, those that wake a sleeping parent) on the socket. The worker numbers every
// answer, and publishes a ring record only after the socket answers before it were sent, so the
// channel puts them back in order: the next answer is the ring's next record if that carries the
// next number, else the socket's next answer frame, which must then have arrived.
#pragma once

#include <futura/detail/answer_ring.hpp>
#include <futura/detail/channel.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace futura::detail {

class WorkerChannel : public std::enable_shared_from_this<WorkerChannel>
{
public:
    /// Who handles what arrives. Called on the I/O thread, never after `close()`.
    class Listener
    {
    public:
        /// A complete frame. @throws ProtocolError (or any exception) if it is not acceptable:
        /// reading stops and `on_bad_message` follows.
        virtual void on_frame(const Frame& frame, Attachments& attachments) = 0;
        /// The start of a large value answer, next in order, of which `frame.unread` bytes have
        /// not arrived: where its result can take them straight into its own storage, that
        /// storage (exactly `frame.unread` bytes), filled as they come and followed by
        /// `on_answer_received`; else an empty span, and the frame comes whole to `on_frame`.
        /// @throws as `on_frame`.
        virtual std::span<char> on_answer_start(const Frame& frame) = 0;
        /// The rest of the answer `on_answer_start` took is in its storage. @throws as
        /// `on_frame`.
        virtual void on_answer_received() = 0;
        /// After the frames of one read were handled.
        virtual void on_frames_handled() = 0;
        /// The worker sent bytes that are not valid frames.
        virtual void on_bad_message(const std::exception& error) = 0;

    protected:
        ~Listener() = default;
    };

    /// A channel whose socket pair is made here (both ends close-on-exec, large buffers), with
    /// an answer ring of `ring_capacity` bytes. `child_end` receives the worker's end.
    /// @throws std::system_error on failure.
    WorkerChannel(boost::asio::io_context& io, Listener& listener, UniqueFd& child_end,
                  std::size_t ring_capacity = AnswerRing::default_capacity);

    WorkerChannel(const WorkerChannel&) = delete;
    WorkerChannel& operator=(const WorkerChannel&) = delete;

    /// Frames to send: encode into it, then `flush()`.
    FrameOutbox& outbox() noexcept { return outbox_; }
    /// Queues the frame that gives the worker its answer ring (before any call).
    void send_answer_ring();
    /// Writes what the outbox holds, now as far as the socket takes it, the rest when it can.
    void flush();
    /// Starts reading (once).
    void start_reading();
    /// After the worker died: reads and handles what it sent before, without waiting.
    void drain();
    /// No more frames go to the worker: it sees the end of its input and leaves.
    void shut_down_sending();
    /// Stops everything: no listener call after this.
    void close();

private:
    void read_ready();
    /// Hands the listener every answer that can be put in order now, from the ring and the
    /// inbox, and the other frames the inbox holds. @return false if reading must stop (a bad
    /// message or closed meanwhile).
    bool handle_frames();
    /// The part of `handle_frames` that may throw: a worker's bytes that do not add up.
    /// @return false if closed meanwhile.
    bool handle_frames_in_order();
    /// If the socket's next frame is a large answer whose result takes its rest in place,
    /// starts reading it there. @return whether it did.
    bool start_answer_in_place();

    boost::asio::local::stream_protocol::socket socket_;
    Listener* listener_;
    FrameInbox inbox_{Attachments::max_descriptors}; // a worker sends one answer at a time
    FrameOutbox outbox_;
    AnswerRing ring_;
    std::uint64_t answers_ = 0;         // answers handed to the listener
    std::optional<std::uint64_t> held_; // a ring record's number, read ahead of its turn
    std::vector<char> held_frame_;      // its frame, copied out of the ring
    bool waiting_to_write_ = false;     // an async wait for writability is pending
    bool closed_ = false;
};

} // namespace futura::detail
