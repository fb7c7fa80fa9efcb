// Bytes and file descriptors over the Unix stream socket between a pool and a worker.
//
// Descriptors ride on SCM_RIGHTS control messages attached to the leading bytes of a write, so
// they always arrive no later than the frames that refer to them; the receiver queues them in
// arrival order and each frame takes as many as its header says.
#pragma once

#include <futura/detail/attachments.hpp>

#include <cstddef>
#include <deque>
#include <span>
#include <sys/types.h>
#include <vector>

namespace futura::detail {

/// Descriptors received and not yet claimed by a frame, oldest first.
using ReceivedDescriptors = std::deque<UniqueFd>;

/// One read of what is available on `socket`, appended to `in`; descriptors that came with it
/// are appended to `descriptors`.
/// @return the bytes read, 0 at end of input, or -1 with errno set (EAGAIN when `nonblocking`
///         and nothing is there).
/// @throws ProtocolError if descriptors were dropped for lack of room (the sender broke the
///         one-control-message-per-253-descriptors rule) or something other than descriptors
///         came as control data.
ssize_t receive_some(int socket, std::vector<char>& in, ReceivedDescriptors& descriptors,
                     bool nonblocking);

/// Sends the first `count` (at most Attachments::max_descriptors) of `descriptors`, attached to
/// the first byte of `data` (which must not be empty).
/// @return 1 (the byte sent), or -1 with errno set (EAGAIN when `nonblocking` and the socket is
///         full; nothing was sent then).
ssize_t send_descriptors(int socket, std::span<const char> data,
                         std::span<const UniqueFd> descriptors, bool nonblocking);

/// Moves the `count` oldest received descriptors into `to`, for the frame that needs them.
/// @throws ProtocolError if fewer than `count` arrived: the frame names descriptors it lacks.
void claim_descriptors(ReceivedDescriptors& from, std::size_t count, Attachments& to);

} // namespace futura::detail
