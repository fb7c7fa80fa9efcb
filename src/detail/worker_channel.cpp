// The parent's end of a worker's channel (see worker_channel.hpp).
#include <futura/detail/wire.hpp>
#include <futura/detail/worker_channel.hpp>

#include <boost/asio/socket_base.hpp>

#include <cerrno>
#include <sys/socket.h>
#include <system_error>

namespace futura::detail {

namespace {

/// The socket buffers of a channel, each way: large arguments and results cross in fewer,
/// larger steps (the kernel caps it at net.core.wmem_max/rmem_max; a failure only leaves the
/// default).
constexpr int channel_buffer_bytes = 4 * 1024 * 1024;

/// The frames that answer a call (or the initializer): the ones the worker numbers.
bool is_answer(FrameKind kind) noexcept
{
    return kind == FrameKind::value || kind == FrameKind::exception ||
           kind == FrameKind::initialize_failed;
}

} // namespace

WorkerChannel::WorkerChannel(boost::asio::io_context& io, Listener& listener, UniqueFd& child_end,
                             std::size_t ring_capacity)
    : socket_(io), listener_(&listener), ring_(AnswerRing::create(ring_capacity))
{
    int ends[2];
    // Close-on-exec from birth: a program the parent (or a task) starts must not inherit a
    // channel; the worker's end is made inheritable only as fd 3 of its own exec.
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) {
        throw std::system_error(errno, std::generic_category(), "socketpair");
    }
    UniqueFd ours(ends[0]);
    child_end.reset(ends[1]);
    for (const int fd : {ours.get(), child_end.get()}) {
        (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &channel_buffer_bytes,
                           sizeof channel_buffer_bytes);
        (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &channel_buffer_bytes,
                           sizeof channel_buffer_bytes);
    }
    socket_.assign(boost::asio::local::stream_protocol(), ours.release());
    socket_.non_blocking(true);
}

void WorkerChannel::send_answer_ring()
{
    auto& out = outbox_.bytes();
    const auto start = begin_frame(out);
    Attachments attachments;
    WireWriter frame(out);
    frame.attach(attachments);
    (void)frame.descriptor(ring_.fd());
    finish_frame(out, start, FrameKind::ring, 0, attachments.descriptors.size());
    outbox_.add_descriptors(attachments.descriptors);
}

void WorkerChannel::flush()
{
    if (closed_ || waiting_to_write_ || outbox_.empty()) {
        return;
    }
    if (outbox_.write(socket_.native_handle(), /*nonblocking=*/true) !=
        FrameOutbox::Progress::blocked) {
        return; // written, or the worker is dying (its exit watch cleans up)
    }
    waiting_to_write_ = true;
    socket_.async_wait(boost::asio::socket_base::wait_write,
                       [self = shared_from_this()](const boost::system::error_code& ec) {
                           self->waiting_to_write_ = false;
                           if (!ec) {
                               self->flush();
                           }
                       });
}

void WorkerChannel::start_reading()
{
    // Waits for readability, then reads with recvmsg: descriptors come as control data, which
    // Asio's reads would drop.
    socket_.async_wait(boost::asio::socket_base::wait_read,
                       [self = shared_from_this()](const boost::system::error_code& ec) {
                           if (!ec && !self->closed_) {
                               self->read_ready();
                           }
                       });
}

void WorkerChannel::read_ready()
{
    ssize_t n = 0;
    try {
        n = inbox_.receive(socket_.native_handle(), /*nonblocking=*/true);
    } catch (const std::exception& e) {
        listener_->on_bad_message(e);
        return;
    }
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
        return; // the worker is gone: its exit watch takes over
    }
    if (!handle_frames()) {
        return;
    }
    start_reading();
    // From here the worker wakes us through the socket; answers it wrote to the ring before it
    // could see that are read now.
    while (!ring_.try_sleep()) {
        if (!handle_frames()) {
            return;
        }
    }
    listener_->on_frames_handled();
}

bool WorkerChannel::handle_frames()
{
    try {
        return handle_frames_in_order();
    } catch (const std::exception& e) {
        listener_->on_bad_message(e);
        return false;
    }
}

bool WorkerChannel::handle_frames_in_order()
{
    for (;;) {
        if (!held_) {
            held_ = ring_.read(held_frame_);
        }
        if (held_ && *held_ < answers_) {
            throw ProtocolError("futura: a worker's answer ring repeats an answer");
        }
        if (held_ && *held_ == answers_) {
            held_.reset();
            const auto frame = parse_frame(held_frame_);
            if (!frame || frame->size != held_frame_.size() || frame->descriptors != 0 ||
                !is_answer(frame->kind)) {
                throw ProtocolError("futura: a worker's answer ring holds something else than "
                                    "one answer");
            }
            ++answers_;
            Attachments none;
            listener_->on_frame(*frame, none);
            if (closed_) {
                return false;
            }
            continue;
        }
        // The next answer, if any, is the socket's: a frame, or the rest of a large answer
        // being read into its result.
        Attachments attachments;
        std::optional<Frame> frame;
        for (;;) {
            if (inbox_.receiving_rest()) {
                if (inbox_.rest_received()) {
                    break;
                }
            } else if ((frame = inbox_.next(attachments))) {
                break;
            } else if (start_answer_in_place()) {
                continue;
            }
            if (!held_) {
                return true; // more bytes to come
            }
            // The ring's record waits for an answer the worker sent before publishing it: its
            // send had returned, so all of its bytes are in the socket by now, and a read that
            // finds none means the worker lies.
            if (inbox_.receive(socket_.native_handle(), /*nonblocking=*/true) <= 0) {
                throw ProtocolError("futura: a worker's answer ring skips an answer that never "
                                    "came on its channel");
            }
        }
        if (!frame) {
            inbox_.end_receiving_rest();
            ++answers_;
            listener_->on_answer_received();
            if (closed_) {
                return false;
            }
            continue;
        }
        if (frame->kind == FrameKind::wake) {
            continue; // it woke us: the ring is read above
        }
        if (is_answer(frame->kind)) {
            ++answers_;
        }
        listener_->on_frame(*frame, attachments);
        if (closed_) {
            return false;
        }
    }
}

bool WorkerChannel::start_answer_in_place()
{
    const auto start = inbox_.peek_large_start();
    if (!start) {
        return false;
    }
    std::span<char> rest;
    if (start->kind == FrameKind::value && start->descriptors == 0) {
        rest = listener_->on_answer_start(*start);
    }
    if (rest.empty()) {
        inbox_.keep_buffering();
        return false;
    }
    if (rest.size() != start->unread) {
        throw ProtocolError("futura: a large answer's result does not fit its frame");
    }
    inbox_.receive_rest_into(rest);
    return true;
}

void WorkerChannel::drain()
{
    if (closed_) {
        return;
    }
    try {
        while (inbox_.receive(socket_.native_handle(), /*nonblocking=*/true) > 0) {
            if (!handle_frames()) {
                return;
            }
        }
    } catch (const std::exception& e) {
        listener_->on_bad_message(e);
        return;
    }
    handle_frames();
}

void WorkerChannel::shut_down_sending()
{
    boost::system::error_code ignored;
    socket_.shutdown(boost::asio::socket_base::shutdown_send, ignored);
}

void WorkerChannel::close()
{
    closed_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored);
}

} // namespace futura::detail
