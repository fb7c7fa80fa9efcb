// What travels beside a message's bytes: file descriptors (passed with SCM_RIGHTS, so another
// process gets its own reference to the same memory or file), objects a decoded value borrows
// from for as long as the message is in use, and large payloads written from where they are.
#pragma once

#include <futura/detail/unique_fd.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace futura::detail {

/// Bytes of a message that stay where they are (a large vector's storage) and are written to
/// the channel from there, between the message's own bytes (a gather write): the message buffer
/// never holds them. `owner` keeps them alive and unchanged until they are written.
struct InPlaceBytes
{
    std::size_t at = 0;                ///< they go before the byte at this offset of the buffer
    const char* data = nullptr;        ///< never null
    std::size_t size = 0;              ///< never 0
    std::shared_ptr<const void> owner; ///< never null: what keeps `data` alive
};

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
    /// Large payloads the message refers to instead of holding (sending side only), in the
    /// order of their offsets.
    std::vector<InPlaceBytes> in_place;
};

} // namespace futura::detail
