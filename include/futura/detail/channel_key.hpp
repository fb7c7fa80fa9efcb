// The secret that authenticates the frames between a pool and its workers, so that bytes
// written to a worker's channel by anyone else (a process that got hold of the socket) are
// refused before anything in them is believed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace futura::detail {

/// A 128-bit key for SipHash-2-4.
struct ChannelKey
{
    std::uint64_t k0 = 0;
    std::uint64_t k1 = 0;
};

/// This process's key: random (getrandom), made on first use; a worker's is its parent's.
const ChannelKey& channel_key();

/// A worker takes its parent's key, before it reads any frame.
void adopt_channel_key(const ChannelKey& key) noexcept;

/// The key as text (32 hex digits), for a spawned worker's environment; and back.
std::string key_text(const ChannelKey& key);
std::optional<ChannelKey> key_from_text(std::string_view text) noexcept;

/// SipHash-2-4 (Aumasson and Bernstein): a keyed hash made to authenticate short messages.
/// Neither Boost 1.81 nor the standard library has a keyed hash, hence this one. Bytes are
/// taken in as they come, in any number of pieces.
class SipHash
{
public:
    explicit SipHash(const ChannelKey& key) noexcept;
    void update(std::span<const std::byte> bytes) noexcept;
    [[nodiscard]] std::uint64_t finish() noexcept;

private:
    void compress(std::uint64_t block) noexcept;

    std::uint64_t v0_, v1_, v2_, v3_;
    std::uint64_t tail_ = 0; // bytes not yet making a block, little-endian
    std::size_t tail_bytes_ = 0;
    std::uint64_t total_bytes_ = 0;
};

} // namespace futura::detail
