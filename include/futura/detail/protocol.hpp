// The frames exchanged between a ProcessPoolExecutor and its workers over a Unix socket.
#pragma once

#include <futura/detail/channel_key.hpp>
#include <futura/detail/wire.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <typeinfo>

namespace futura::detail {

/// What a frame carries.
enum class FrameKind : std::uint8_t
{
    // parent -> worker
    call = 1,       ///< run a task: payload from TaskBase::encode_call
    initialize = 2, ///< run the pool's initializer: payload as a call's, its result void
    claims = 3,     ///< the worker's CallClaims table: one descriptor; the frame's task id
                    ///< is the worker's number (its `current_worker().index`)
    ring = 4,       ///< the worker's AnswerRing: one descriptor
                    // worker -> parent
    ready = 10,     ///< the worker is up: payload is its pid
                    // An answer's payload starts with the call's run time in nanoseconds (u64).
    value = 11,     ///< the task returned: then the encoded result
    exception = 12, ///< the task threw: then what encode_exception wrote
    initialize_failed = 13, ///< the initializer threw: then what encode_exception wrote
    wake = 14,              ///< no payload: answers wait in the AnswerRing (the parent slept)
};

/// Every frame starts with this header. `header_check` and `check` are MACs (SipHash-2-4 with
/// the channel key, 32 bits each) of the header alone and of the header with the first
/// `checked_prefix` bytes of the payload (where a call names the code to run), the header
/// hashed with both checks zero in both (so it is hashed once for the two): bytes that were
/// corrupted, or written by a process that does not know the key, are refused before anything
/// in them is believed.
struct FrameHeader
{
    static constexpr std::uint32_t expected_magic = 0x46555431; // "FUT1"
    static constexpr std::size_t checked_prefix = 64 * 1024;
    static constexpr std::uint64_t max_payload = std::uint64_t{1} << 40;

    std::uint32_t magic = expected_magic;
    FrameKind kind = FrameKind::call;
    /// How many file descriptors the frame's payload refers to (they travel with SCM_RIGHTS
    /// on the bytes of the same write, so they arrive no later than the frame itself).
    std::uint8_t descriptors = 0;
    std::uint8_t reserved[2] = {};
    std::uint32_t check = 0;
    /// The MAC of the header alone (with both checks zero), verified as soon as the header is
    /// in: a corrupted size field must not make the reader wait for bytes that never come.
    std::uint32_t header_check = 0;
    std::uint64_t task_id = 0;
    std::uint64_t payload_size = 0;
};
static_assert(sizeof(FrameHeader) == 32);

/// Appends a complete frame (header and payload) to `out`.
void append_frame(std::vector<char>& out, FrameKind kind, std::uint64_t task_id,
                  std::span<const char> payload, const ChannelKey& key = channel_key());

/// Starts a frame whose payload the caller then appends to `out`; `finish_frame` fills in the
/// header. Avoids copying large payloads.
std::size_t begin_frame(std::vector<char>& out);
void finish_frame(std::vector<char>& out, std::size_t frame_start, FrameKind kind,
                  std::uint64_t task_id, std::size_t descriptors = 0,
                  const ChannelKey& key = channel_key());

/// As `finish_frame` for a frame whose payload also comprises the large payloads that
/// `attachments.in_place` refers to (a gather write: FrameOutbox writes them between the
/// buffer's bytes): its size and MAC are those of the payload as it goes out. Also counts
/// `attachments.descriptors`.
/// @throws ProtocolError if the payload would be larger than `FrameHeader::max_payload`.
void finish_frame(std::vector<char>& out, std::size_t frame_start, FrameKind kind,
                  std::uint64_t task_id, const Attachments& attachments,
                  const ChannelKey& key = channel_key());

/// A frame found at the start of a buffer.
struct Frame
{
    FrameKind kind;
    std::uint64_t task_id;
    std::size_t descriptors;       ///< how many received descriptors belong to this frame
    std::span<const char> payload; ///< all of it, or its first bytes if `unread` is not 0
    std::size_t size;              ///< header and payload: how far to advance in the buffer
    /// Bytes of the payload still on the channel, after `payload` (see `parse_frame_start`).
    std::uint64_t unread = 0;
};

/// Parses the frame at the start of `bytes`. @return nothing if more bytes are needed.
/// @throws ProtocolError if the bytes cannot be a valid frame (bad magic, kind, size, or a MAC
/// that does not match `key`).
std::optional<Frame> parse_frame(std::span<const char> bytes,
                                 const ChannelKey& key = channel_key());

/// As `parse_frame`, and also returns a frame of which at least `min_unread` payload bytes
/// have not arrived yet, once its header and checked prefix are in `bytes` and authenticated
/// (nothing past the prefix is under a MAC in any case): its `payload` is what `bytes` holds
/// of it, and its `unread` bytes follow on the channel. For a reader that decodes a large frame
/// as it arrives.
std::optional<Frame> parse_frame_start(std::span<const char> bytes, std::uint64_t min_unread,
                                       const ChannelKey& key = channel_key());

/// Encodes the exception `error` (type name, message, stack trace) so the parent can rethrow
/// it: as the same type for the standard exception types and futura's own, otherwise as
/// `RemoteError`.
void encode_exception(WireWriter& out, const std::exception_ptr& error, const std::string& trace);

/// Rebuilds an exception encoded by `encode_exception`.
std::exception_ptr decode_exception(WireReader& in);

/// Saves the state of an exception of the registered type (the caller checked the type).
using ExceptionEncoder = void (*)(const std::exception& error, WireWriter& out);
/// Rebuilds an exception of the registered type from what its encoder wrote.
using ExceptionDecoder = std::exception_ptr (*)(WireReader& in);

/// Makes exceptions of exactly `type` travel as themselves (see futura::register_exception).
/// Registering a type again replaces its codec.
void register_exception_codec(const std::type_info& type, ExceptionEncoder encode,
                              ExceptionDecoder decode);

} // namespace futura::detail
