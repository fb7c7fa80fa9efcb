// Messages of any size over MPI: consecutive pieces of at most an `int` of bytes each, so that
// a 3 GiB result travels without the receiver having to know its size in advance.
#include <futura/detail/futex.hpp>
#include <futura/detail/mpi_message.hpp>
#include <futura/errors.hpp>

#include <boost/mpi/exception.hpp>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>
#include <thread>

namespace futura::detail::mpi {

std::vector<char> begin_message()
{
    std::vector<char> message;
    message.reserve(256);
    message.resize(header_size);
    return message;
}

void seal(std::vector<char>& message)
{
    const std::uint64_t total = message.size();
    std::memcpy(message.data(), &total, sizeof total);
}

std::vector<std::pair<std::size_t, std::size_t>> pieces(std::size_t total, std::size_t limit)
{
    limit = std::clamp<std::size_t>(limit, header_size, INT_MAX); // the first has the header
    std::vector<std::pair<std::size_t, std::size_t>> result;
    std::size_t at = 0;
    do {
        const std::size_t n = std::min(limit, total - at);
        result.emplace_back(at, n);
        at += n;
    } while (at < total);
    return result;
}

Outgoing send(MPI_Comm comm, int destination, Tag tag, std::vector<char> message,
              std::size_t piece_limit)
{
    Outgoing out;
    auto bytes = std::make_shared<std::vector<char>>(std::move(message));
    const auto parts = pieces(bytes->size(), piece_limit);
    out.requests.reserve(parts.size());
    for (const auto& [offset, size] : parts) {
        MPI_Request request = MPI_REQUEST_NULL;
        // Pieces of one message go in order: MPI does not let a message overtake an earlier
        // one between the same two ranks with the same tag.
        BOOST_MPI_CHECK_RESULT(MPI_Isend, (bytes->data() + offset, static_cast<int>(size), MPI_BYTE,
                                           destination, static_cast<int>(tag), comm, &request));
        out.requests.push_back(request);
    }
    out.bytes = std::move(bytes);
    return out;
}

bool sent(Outgoing& outgoing)
{
    int done = 0;
    BOOST_MPI_CHECK_RESULT(MPI_Testall, (static_cast<int>(outgoing.requests.size()),
                                         outgoing.requests.data(), &done, MPI_STATUSES_IGNORE));
    return done != 0;
}

void send_blocking(MPI_Comm comm, int destination, Tag tag, std::vector<char> message,
                   std::size_t piece_limit)
{
    Outgoing out = send(comm, destination, tag, std::move(message), piece_limit);
    BOOST_MPI_CHECK_RESULT(MPI_Waitall, (static_cast<int>(out.requests.size()), out.requests.data(),
                                         MPI_STATUSES_IGNORE));
}

std::optional<Incoming> try_receive(MPI_Comm comm, int source, std::size_t piece_limit)
{
    int flag = 0;
    MPI_Message handle = MPI_MESSAGE_NULL;
    MPI_Status status{};
    BOOST_MPI_CHECK_RESULT(MPI_Improbe, (source, MPI_ANY_TAG, comm, &flag, &handle, &status));
    if (flag == 0) {
        return std::nullopt;
    }
    int count = 0;
    BOOST_MPI_CHECK_RESULT(MPI_Get_count, (&status, MPI_BYTE, &count));
    Incoming in;
    in.source = status.MPI_SOURCE;
    in.tag = static_cast<Tag>(status.MPI_TAG);
    in.bytes.resize(static_cast<std::size_t>(count));
    BOOST_MPI_CHECK_RESULT(MPI_Mrecv,
                           (in.bytes.data(), count, MPI_BYTE, &handle, MPI_STATUS_IGNORE));
    if (in.bytes.size() < header_size) {
        throw ProtocolError("futura: an MPI message is shorter than its header");
    }
    std::uint64_t total = 0;
    std::memcpy(&total, in.bytes.data(), sizeof total);
    const auto parts = pieces(static_cast<std::size_t>(total), piece_limit);
    if (total < header_size || parts.front().second != in.bytes.size()) {
        throw ProtocolError("futura: an MPI message's size does not match its first piece");
    }
    in.bytes.resize(static_cast<std::size_t>(total));
    for (std::size_t i = 1; i < parts.size(); ++i) {
        const auto [offset, size] = parts[i];
        MPI_Status piece{};
        BOOST_MPI_CHECK_RESULT(MPI_Recv, (in.bytes.data() + offset, static_cast<int>(size),
                                          MPI_BYTE, in.source, status.MPI_TAG, comm, &piece));
        int got = 0;
        BOOST_MPI_CHECK_RESULT(MPI_Get_count, (&piece, MPI_BYTE, &got));
        if (static_cast<std::size_t>(got) != size) {
            throw ProtocolError("futura: a piece of an MPI message has the wrong size");
        }
    }
    return in;
}

void Backoff::pause(bool may_spin)
{
    constexpr auto spin_for = std::chrono::milliseconds(1);
    constexpr auto busy_for = std::chrono::microseconds(20);
    constexpr auto first_sleep = std::chrono::microseconds(20);
    const auto now = std::chrono::steady_clock::now();
    if (!idle_since_) {
        idle_since_ = now;
        sleep_ = first_sleep;
    }
    if (may_spin && now - *idle_since_ < spin_for) {
        // Right after a message the next one is likely a round trip away: a system call per
        // poll (yield) would add its cost to every hop, so the first microseconds only pause.
        if (now - *idle_since_ < busy_for) {
            for (int i = 0; i < 16; ++i) {
                cpu_relax();
            }
            return;
        }
        std::this_thread::yield();
        return;
    }
    std::this_thread::sleep_for(sleep_);
    sleep_ = std::min(sleep_ * 2, longest_sleep_);
}

} // namespace futura::detail::mpi
