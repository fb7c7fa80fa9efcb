// The channel between a pool and a worker: frames and descriptors over a Unix stream socket.
#include <futura/detail/channel.hpp>
#include <futura/detail/protocol.hpp>
#include <futura/detail/wire.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/socket.h>

namespace futura::detail {

namespace {

constexpr std::size_t read_size = 64 * 1024;
constexpr std::size_t max_step = std::size_t{1} << 30;

// Room for the most descriptors one control message may carry.
union ControlBuffer
{
    char bytes[CMSG_SPACE(sizeof(int) * Attachments::max_descriptors)];
    cmsghdr align; // CMSG_* macros need the buffer aligned as a cmsghdr
};

} // namespace

ssize_t receive_some(int socket, ReceiveBuffer& in, ReceivedDescriptors& descriptors,
                     bool nonblocking)
{
    return receive_some(socket, in, descriptors, nonblocking, max_step);
}

ssize_t receive_some(int socket, ReceiveBuffer& in, ReceivedDescriptors& descriptors,
                     bool nonblocking, std::size_t max_bytes)
{
    const auto at = in.size();
    // A large frame in progress is read in one step where the socket allows, into memory
    // reserved for all of it at once (capped: the header is the sender's word).
    const std::size_t missing = missing_frame_bytes(in);
    const std::size_t step = std::max(read_size, std::min({missing, max_step, max_bytes}));
    if (in.capacity() < at + step) {
        // At least doubling: a frame larger than one step grows in a few moves, not one per
        // read (quadratic past 1 GiB), and never past what its header announced.
        in.reserve(std::max(at + step, std::min(at + missing, 2 * in.capacity())));
    }
    in.resize(at + step);
    const auto n =
        receive_into(socket, std::span<char>(in.data() + at, step), descriptors, nonblocking);
    in.resize(at + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
    return n;
}

ssize_t receive_into(int socket, std::span<char> into, ReceivedDescriptors& descriptors,
                     bool nonblocking)
{
    iovec io{into.data(), into.size()};
    ControlBuffer control;
    msghdr message{};
    message.msg_iov = &io;
    message.msg_iovlen = 1;
    message.msg_control = control.bytes;
    message.msg_controllen = sizeof control.bytes;
    ssize_t n = 0;
    do {
        n = ::recvmsg(socket, &message, MSG_CMSG_CLOEXEC | (nonblocking ? MSG_DONTWAIT : 0));
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return n;
    }
    bool foreign = false;
    for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr;
         header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_RIGHTS) {
            const std::size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t i = 0; i < count; ++i) {
                int fd = -1;
                std::memcpy(&fd, CMSG_DATA(header) + i * sizeof(int), sizeof fd);
                descriptors.emplace_back(fd); // owned (and so closed) even if we throw below
            }
        } else {
            foreign = true;
        }
    }
    if ((message.msg_flags & MSG_CTRUNC) != 0 || foreign) {
        throw ProtocolError("futura: file descriptors between processes were lost or "
                            "unexpected control data arrived on the channel");
    }
    return n;
}

ssize_t send_descriptors(int socket, std::span<const char> data,
                         std::span<const UniqueFd> descriptors, bool nonblocking)
{
    const std::size_t count = std::min(descriptors.size(), Attachments::max_descriptors);
    iovec io{const_cast<char*>(data.data()), 1}; // NOLINT: sendmsg does not write through it
    ControlBuffer control{};
    msghdr message{};
    message.msg_iov = &io;
    message.msg_iovlen = 1;
    message.msg_control = control.bytes;
    message.msg_controllen = CMSG_SPACE(sizeof(int) * count);
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int) * count);
    for (std::size_t i = 0; i < count; ++i) {
        const int fd = descriptors[i].get();
        std::memcpy(CMSG_DATA(header) + i * sizeof(int), &fd, sizeof fd);
    }
    ssize_t n = 0;
    do {
        n = ::sendmsg(socket, &message, MSG_NOSIGNAL | (nonblocking ? MSG_DONTWAIT : 0));
    } while (n < 0 && errno == EINTR);
    return n;
}

std::size_t missing_frame_bytes(std::span<const char> in) noexcept
{
    if (in.size() < sizeof(FrameHeader)) {
        return 0;
    }
    try {
        // The header alone: parse_frame checks it (its own checksum included) and says
        // "incomplete" if it announces a payload, without reading any payload.
        if (parse_frame(in.first(sizeof(FrameHeader)))) {
            return 0; // no payload
        }
    } catch (const ProtocolError&) {
        return 0; // the reader will say so when it parses it
    }
    FrameHeader header;
    std::memcpy(&header, in.data(), sizeof header);
    const auto total = sizeof(FrameHeader) + header.payload_size;
    return total > in.size() ? static_cast<std::size_t>(total - in.size()) : 0;
}

void claim_descriptors(ReceivedDescriptors& from, std::size_t count, Attachments& to)
{
    if (from.size() < count) {
        throw ProtocolError("futura: a message refers to file descriptors that did not come "
                            "with it");
    }
    for (std::size_t i = 0; i < count; ++i) {
        to.descriptors.push_back(std::move(from.front()));
        from.pop_front();
    }
}

// ----- FrameInbox ----------------------------------------------------------------------------

ssize_t FrameInbox::receive(int socket, bool nonblocking)
{
    if (!rest_.empty()) {
        // A large frame's rest goes straight where its decoder put the value it belongs to.
        const auto n = receive_into(socket, rest_, descriptors_, nonblocking);
        if (n > 0) {
            rest_ = rest_.subspan(static_cast<std::size_t>(n));
        }
        check_unclaimed();
        return n;
    }
    skip_tail();
    if (consumed_ == bytes_.size()) {
        clear_buffer(bytes_);
    } else if (consumed_ > 0) {
        bytes_.erase(bytes_.begin(), bytes_.begin() + static_cast<std::ptrdiff_t>(consumed_));
    }
    consumed_ = 0;
    // Reading large frames as they are decoded, a step never makes room for more than the
    // start of one: the rest goes straight where its decoder puts it.
    const auto n = receive_some(socket, bytes_, descriptors_, nonblocking,
                                declined_start_ ? max_step : streamed_frame_bytes);
    check_unclaimed();
    return n;
}

void FrameInbox::check_unclaimed() const
{
    if (descriptors_.size() > max_unclaimed_) {
        throw ProtocolError("futura: more file descriptors arrived than the messages on the "
                            "channel can refer to");
    }
}

std::optional<Frame> FrameInbox::next(Attachments& attachments)
{
    const auto bytes = std::span<const char>(bytes_).subspan(consumed_);
    auto frame =
        tail_socket_ < 0 ? parse_frame(bytes) : parse_frame_start(bytes, streamed_frame_bytes);
    if (frame) {
        claim_descriptors(descriptors_, frame->descriptors, attachments);
        consumed_ += frame->size;
        tail_unread_ = frame->unread; // all of the buffer was its if not 0
        declined_start_ = false;
    }
    return frame;
}

std::optional<Frame> FrameInbox::peek_large_start()
{
    if (declined_start_ || receiving_rest_ || tail_socket_ >= 0) {
        return std::nullopt;
    }
    auto frame =
        parse_frame_start(std::span<const char>(bytes_).subspan(consumed_), streamed_frame_bytes);
    if (frame && frame->unread == 0) {
        return std::nullopt; // whole: `next` takes it
    }
    return frame;
}

void FrameInbox::receive_rest_into(std::span<char> rest) noexcept
{
    consumed_ = bytes_.size(); // all of the buffer is the frame's start
    receiving_rest_ = true;
    rest_ = rest;
}

void FrameInbox::read(char* into, std::size_t size)
{
    if (size > tail_unread_) {
        throw ProtocolError("futura: a frame was read past its end");
    }
    while (size > 0) {
        const auto n = receive_into(tail_socket_, std::span<char>(into, size), descriptors_,
                                    /*nonblocking=*/false);
        if (n <= 0) {
            throw ProtocolError(n == 0 ? "futura: the channel closed in the middle of a frame"
                                       : "futura: the channel failed in the middle of a frame");
        }
        check_unclaimed(); // descriptors of later frames may ride on these bytes
        into += n;
        size -= static_cast<std::size_t>(n);
        tail_unread_ -= static_cast<std::uint64_t>(n);
    }
}

void FrameInbox::skip_tail()
{
    if (tail_unread_ == 0) {
        return;
    }
    std::vector<char> scratch(
        static_cast<std::size_t>(std::min<std::uint64_t>(tail_unread_, read_size)));
    while (tail_unread_ > 0) {
        read(scratch.data(),
             static_cast<std::size_t>(std::min<std::uint64_t>(tail_unread_, scratch.size())));
    }
}

// ----- FrameOutbox ---------------------------------------------------------------------------

void FrameOutbox::add_descriptors(std::vector<UniqueFd>& descriptors)
{
    for (auto& descriptor : descriptors) {
        descriptors_.push_back(std::move(descriptor));
    }
    descriptors.clear();
}

void FrameOutbox::add_attachments(Attachments& attachments)
{
    add_descriptors(attachments.descriptors);
    for (auto& piece : attachments.in_place) {
        in_place_.push_back(std::move(piece));
    }
    attachments.in_place.clear();
}

std::size_t FrameOutbox::gather(iovec* parts, std::size_t max) const noexcept
{
    std::size_t filled = 0;
    std::size_t at = sent_;
    std::size_t piece = piece_;
    std::size_t piece_sent = piece_sent_;
    while (filled < max) {
        if (piece < in_place_.size() && in_place_[piece].at == at) {
            const auto& next = in_place_[piece];
            // NOLINTNEXTLINE: sendmsg does not write through it
            parts[filled++] = {const_cast<char*>(next.data + piece_sent), next.size - piece_sent};
            ++piece;
            piece_sent = 0;
            continue;
        }
        const std::size_t end = piece < in_place_.size() ? in_place_[piece].at : bytes_.size();
        if (at == end) {
            break; // all of it
        }
        parts[filled++] = {const_cast<char*>(bytes_.data() + at), end - at}; // NOLINT: as above
        at = end;
    }
    return filled;
}

void FrameOutbox::advance(std::size_t count) noexcept
{
    while (count > 0) {
        if (piece_ < in_place_.size() && in_place_[piece_].at == sent_) {
            auto& piece = in_place_[piece_];
            const auto taken = std::min(count, piece.size - piece_sent_);
            piece_sent_ += taken;
            count -= taken;
            if (piece_sent_ == piece.size) {
                piece.owner.reset(); // written: its storage may go
                ++piece_;
                piece_sent_ = 0;
            }
            continue;
        }
        const std::size_t end = piece_ < in_place_.size() ? in_place_[piece_].at : bytes_.size();
        const auto taken = std::min(count, end - sent_);
        if (taken == 0) {
            return; // more than was there: cannot happen (the kernel wrote what it was given)
        }
        sent_ += taken;
        count -= taken;
    }
}

FrameOutbox::Progress FrameOutbox::write(int socket, bool nonblocking)
{
    const int flags = MSG_NOSIGNAL | (nonblocking ? MSG_DONTWAIT : 0);
    // Each batch of descriptors rides on one byte: a frame that names descriptors has a
    // 32-byte header, so there are always more unsent bytes than batches.
    std::size_t batch_start = 0;
    while (batch_start < descriptors_.size()) {
        const std::span<const UniqueFd> batch =
            std::span<const UniqueFd>(descriptors_).subspan(batch_start);
        iovec first{};
        (void)gather(&first, 1);
        if (send_descriptors(
                socket,
                std::span<const char>(static_cast<const char*>(first.iov_base), first.iov_len),
                batch, nonblocking) < 0) {
            descriptors_.erase(descriptors_.begin(),
                               descriptors_.begin() + static_cast<std::ptrdiff_t>(batch_start));
            return errno == EAGAIN ? Progress::blocked : Progress::failed;
        }
        batch_start += std::min(batch.size(), Attachments::max_descriptors);
        advance(1);
    }
    descriptors_.clear(); // the other end holds its own references now
    // Enough parts for a call with many large arguments in one write; the rest in the next.
    constexpr std::size_t max_parts = 64;
    iovec parts[max_parts];
    for (;;) {
        const auto count = gather(parts, max_parts);
        if (count == 0) {
            break;
        }
        msghdr message{};
        message.msg_iov = parts;
        message.msg_iovlen = count;
        const auto n = ::sendmsg(socket, &message, flags);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno == EAGAIN ? Progress::blocked : Progress::failed;
        }
        advance(static_cast<std::size_t>(n));
    }
    clear_buffer(bytes_);
    sent_ = 0;
    in_place_.clear();
    piece_ = 0;
    piece_sent_ = 0;
    return Progress::done;
}

} // namespace futura::detail
