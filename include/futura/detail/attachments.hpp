// What travels beside a message's bytes: file descriptors (passed with SCM_RIGHTS, so another
// process gets its own reference to the same memory or file) and objects a decoded value
// borrows from for as long as the message is in use.
#pragma once

#include <futura/detail/unique_fd.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace futura::detail {

/// The attachments of one message.
struct Attachments
{
    /// Linux passes at most 253 descriptors in one sendmsg (SCM_MAX_FD).
    static constexpr std::size_t max_descriptors = 253;

    /// In the order the message's encoders attached them.
    std::vector<UniqueFd> descriptors;
    /// The sender's descriptor each was copied from (-1: made for this message alone), so that
    /// a file already attached is not attached again. Empty on the receiving side.
    std::vector<int> sources;
    /// Owners of memory that decoded values (a std::span into a shared segment) point into.
    std::vector<std::shared_ptr<const void>> keep_alive;
};

} // namespace futura::detail
