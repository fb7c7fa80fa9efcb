// The messages between an MPI executor's root and its worker ranks: byte buffers that may
// exceed what one MPI message can count (an `int` of bytes), sent as consecutive pieces.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mpi.h>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace futura::detail::mpi {

/// What a message is; its MPI tag.
enum class Tag : int
{
    // root -> worker
    hello = 1,      ///< a pool starts using the worker: answer `ready`
    initialize = 2, ///< run the pool's initializer: an encoded `void(*)()`
    call = 3,       ///< run a task: its id, then TaskBase::encode_call's bytes
    goodbye = 4,    ///< the pool is done with the worker (a pre-started one waits for the next)
    exit = 5,       ///< leave the worker loop
    revoke = 6,     ///< give back calls not started: a count, then their ids
                    // worker -> root
    ready = 10,     ///< host name, pid, build identity
    value = 11,     ///< id, run time in nanoseconds, the encoded result
    exception = 12, ///< id, run time, what encode_exception wrote
    initialize_failed = 13, ///< what encode_exception wrote
    revoked = 14,           ///< the answer to `revoke`: the count, then each id and whether
                            ///< it was given back (1) or had started (0), as u64s
};

/// Every message starts with its total size in bytes (this header included), so that the
/// receiver of the first piece knows how many follow.
inline constexpr std::size_t header_size = sizeof(std::uint64_t);

/// The most bytes one MPI message carries: MPI counts are `int`.
inline constexpr std::size_t default_piece_limit = std::size_t{1} << 30;

/// A message's bytes, header first (filled in by `seal`).
std::vector<char> begin_message();
/// Writes the total size into the header.
void seal(std::vector<char>& message);

/// Where each piece of a message of `total` bytes starts and how long it is, at most `limit`
/// bytes each (at least one piece, even for an empty message).
std::vector<std::pair<std::size_t, std::size_t>> pieces(std::size_t total, std::size_t limit);

/// A message on its way out: its bytes stay alive until every piece has gone.
struct Outgoing
{
    std::shared_ptr<const std::vector<char>> bytes;
    std::vector<MPI_Request> requests;
};

/// Starts sending a sealed `message` to `destination` (nonblocking, pieces in order).
/// @throws boost::mpi::exception if MPI refuses.
Outgoing send(MPI_Comm comm, int destination, Tag tag, std::vector<char> message,
              std::size_t piece_limit = default_piece_limit);

/// Whether every piece of `outgoing` has gone (then it may be dropped).
bool sent(Outgoing& outgoing);

/// Sends and waits until sent.
void send_blocking(MPI_Comm comm, int destination, Tag tag, std::vector<char> message,
                   std::size_t piece_limit = default_piece_limit);

/// A received message: who sent it, what it is, its bytes after the header.
struct Incoming
{
    int source = 0;
    Tag tag = Tag::hello;
    std::vector<char> bytes; ///< the whole message, header included
    [[nodiscard]] std::size_t body_offset() const noexcept { return header_size; }
};

/// Receives the next message from `source` (MPI_ANY_SOURCE: anyone) if one has arrived; waits
/// for its later pieces, which the sender sends right after the first.
/// @throws ProtocolError if its header does not match its size; boost::mpi::exception.
std::optional<Incoming> try_receive(MPI_Comm comm, int source,
                                    std::size_t piece_limit = default_piece_limit);

/// Polls without burning a core when nothing happens for a while: yields for a millisecond
/// after the last activity (an answer to a short call comes within that), then sleeps for
/// intervals doubling from 20 us up to `longest_sleep`.
class Backoff
{
public:
    explicit Backoff(std::chrono::microseconds longest_sleep) noexcept
        : longest_sleep_(longest_sleep)
    {}
    void reset() noexcept { idle_since_.reset(); }
    /// Waits a little: yields while the last activity is recent and `may_spin`, else sleeps.
    void pause(bool may_spin = true);

private:
    std::chrono::microseconds longest_sleep_;
    std::chrono::microseconds sleep_{0};
    std::optional<std::chrono::steady_clock::time_point> idle_since_;
};

} // namespace futura::detail::mpi
