// Bytes in and out of a message between the parent and a worker process, bounds-checked.
#pragma once

#include <futura/detail/attachments.hpp>
#include <futura/errors.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace futura::detail {

class SegmentCache;
struct ArgumentSegments;

/// The public `futura::ProtocolError`, by the name futura's own code has always used.
using ProtocolError = futura::ProtocolError;

/// Contiguous payloads of at least this many bytes are written to the channel from where they
/// are (a gather write) rather than copied into the message, where the writer may.
inline constexpr std::size_t in_place_threshold = std::size_t{64} << 10;

/// Vouches for the storage of the values a writer encodes: `keep()` returns an owner that keeps
/// it alive and unchanged for as long as the owner lives, so that large payloads can be written
/// from there after encoding is over (see `WireWriter::large_bytes`).
class PayloadKeeper
{
public:
    [[nodiscard]] virtual std::shared_ptr<const void> keep() const = 0;

protected:
    PayloadKeeper() = default;
    PayloadKeeper(const PayloadKeeper&) = default;
    PayloadKeeper& operator=(const PayloadKeeper&) = default;
    ~PayloadKeeper() = default;
};

/// Debug counters of large payloads (at least `in_place_threshold` bytes) in messages: tests
/// check that no message buffer holds what a gather write can send from where it is.
struct MessageCopyCounters
{
    std::uint64_t sent_in_place = 0;  ///< referenced by a message, written from their storage
    std::uint64_t into_message = 0;   ///< copied into a message buffer
    std::uint64_t out_of_message = 0; ///< copied out of a received message into a value
    /// read from the channel straight into a value's storage (mostly: the bytes that had
    /// already arrived with the frame's start are copied from there)
    std::uint64_t received_in_place = 0;
};
[[nodiscard]] MessageCopyCounters message_copy_counters() noexcept;
/// Counts a large payload read from the channel straight into a value's storage.
void count_received_in_place() noexcept;

/// The bytes of a message that had not arrived when its decoding began. A large frame is
/// decoded as it is read (by a worker, which may block on its parent), so that a large vector's
/// bytes go from the channel straight into the vector's storage, instead of into a buffer
/// holding the whole frame and then into the vector: one copy and one first touch of fresh
/// memory fewer (doc/shared_memory.md, "Every copy").
class MessageTail
{
public:
    /// Reads exactly `size` more bytes of the message into `into`.
    /// @throws ProtocolError if the channel fails or ends first.
    virtual void read(char* into, std::size_t size) = 0;

protected:
    MessageTail() = default;
    MessageTail(const MessageTail&) = default;
    MessageTail& operator=(const MessageTail&) = default;
    ~MessageTail() = default;
};

/// Appends the encoding of values to a byte buffer.
class WireWriter
{
public:
    /// Writes into a buffer of its own.
    WireWriter() noexcept : buffer_(&own_) {}
    /// Appends to `target`, e.g. after a frame header already there.
    explicit WireWriter(std::vector<char>& target) noexcept : buffer_(&target) {}
    WireWriter(const WireWriter&) = delete;
    WireWriter& operator=(const WireWriter&) = delete;
    ~WireWriter() = default;

    void bytes(const void* data, std::size_t size)
    {
        const auto* first = static_cast<const char*>(data);
        buffer_->insert(buffer_->end(), first, first + size);
    }

    template <class T>
        requires(std::is_trivially_copyable_v<T>)
    void raw(const T& value) { bytes(&value, sizeof(T)); }

    void u64(std::uint64_t value) { raw(value); }

    void string(std::string_view text)
    {
        u64(text.size());
        bytes(text.data(), text.size());
    }

    /// `size` bytes at `data` that may be large: written from where they are (recorded in the
    /// attachments' `in_place`, not copied) if the writer has a payload keeper, attachments and
    /// at least `in_place_threshold` bytes; else appended like `bytes`.
    void large_bytes(const void* data, std::size_t size)
    {
        if (size < in_place_threshold) {
            bytes(data, size);
        } else {
            large_bytes_slow(data, size);
        }
    }

    /// Lets `large_bytes` refer to the storage of the values encoded from now on, which
    /// `keeper` vouches for (null: copy everything). The keeper must outlive the encoding.
    void payload_keeper(const PayloadKeeper* keeper) noexcept
    {
        keeper_ = keeper;
        kept_.reset();
    }

    /// A point of the encoding to go back to (`rewind`): bytes and in-place payloads.
    struct Mark
    {
        std::size_t bytes = 0;
        std::size_t in_place = 0;
    };
    [[nodiscard]] Mark mark() const noexcept
    {
        return {buffer_->size(), attachments_ != nullptr ? attachments_->in_place.size() : 0};
    }
    /// Drops what was encoded after `to`.
    void rewind(const Mark& to)
    {
        buffer_->resize(to.bytes);
        if (attachments_ != nullptr && attachments_->in_place.size() > to.in_place) {
            attachments_->in_place.resize(to.in_place);
        }
    }

    /// Reserves `size` bytes at the end and returns where they start, to be filled in place.
    char* extend(std::size_t size)
    {
        const auto at = buffer_->size();
        buffer_->resize(at + size);
        return buffer_->data() + at;
    }

    [[nodiscard]] std::vector<char>& buffer() noexcept { return *buffer_; }
    [[nodiscard]] std::size_t size() const noexcept { return buffer_->size(); }

    /// Lets the message carry file descriptors (it goes to another process over a Unix socket).
    void attach(Attachments& attachments) noexcept { attachments_ = &attachments; }

    /// Sends a copy of `fd` with the message, once: a descriptor this message already carries
    /// (the same SharedValue in 2,000 tuples of one map chunk) is named again by its index.
    /// `fd` must stay open while the message is encoded (so its number names one file).
    /// @return its index, for `WireReader::descriptor`.
    /// @throws ProtocolError if this message cannot carry descriptors or has too many.
    std::uint32_t descriptor(int fd);

    /// As `descriptor`, for a descriptor made for this message alone (a copy of an argument in
    /// a fresh segment, closed once attached): never shared with another value's.
    std::uint32_t fresh_descriptor(int fd);

    /// Makes this writer only find the descriptors a value would attach, into `attachments`
    /// (their `sources`): nothing is duplicated, no segment is made for a copy, and there is no
    /// limit. Map chunks are cut with it so that no message carries more than the limit.
    void count_descriptors_only(Attachments& attachments) noexcept
    {
        attachments_ = &attachments;
        counting_ = true;
    }
    [[nodiscard]] bool counting_descriptors() const noexcept { return counting_; }

    /// Contiguous data of at least this many bytes should travel in shared memory rather than
    /// in the message (ProcessPoolOptions::share_threshold); 0 means never.
    [[nodiscard]] std::size_t share_threshold() const noexcept { return share_threshold_; }
    void share_threshold(std::size_t bytes) noexcept { share_threshold_ = bytes; }

    /// Keeps `owner` alive until the message has been sent (with its attachments): a worker's
    /// large result is then freed after its answer is on its way, not before.
    void keep_until_sent(std::shared_ptr<const void> owner)
    {
        if (attachments_ != nullptr) {
            attachments_->keep_alive.push_back(std::move(owner));
        }
    }

    /// Where automatic sharing takes warm segments from (null: a fresh one each time), and for
    /// which receiver (a segment is reused only for the process it was first sent to).
    [[nodiscard]] SegmentCache* segment_cache() const noexcept { return segment_cache_; }
    [[nodiscard]] std::uint64_t segment_owner() const noexcept { return segment_owner_; }
    void segment_cache(SegmentCache* cache, std::uint64_t owner) noexcept
    {
        segment_cache_ = cache;
        segment_owner_ = owner;
    }

    /// Set while a task encodes its own arguments, or a worker its call's result (null
    /// otherwise): a large vector among them may then be given up as it is copied into its
    /// segment, which is kept for a re-send (see encode_in_cached_segment).
    [[nodiscard]] ArgumentSegments* argument_segments() const noexcept { return arguments_; }
    void argument_segments(ArgumentSegments* kept) noexcept { arguments_ = kept; }

private:
    void forget_foreign_descriptors() noexcept;
    void large_bytes_slow(const void* data, std::size_t size);

    std::vector<char> own_;
    std::vector<char>* buffer_;
    Attachments* attachments_ = nullptr;
    std::size_t share_threshold_ = 0;
    SegmentCache* segment_cache_ = nullptr;
    std::uint64_t segment_owner_ = 0;
    ArgumentSegments* arguments_ = nullptr;
    const PayloadKeeper* keeper_ = nullptr;
    std::shared_ptr<const void> kept_; // from keeper_, once the message refers to a payload
    bool counting_ = false;
};

/// Reads values back from bytes; every read is checked against what is left.
/// @throws ProtocolError on any overrun, so hostile bytes never read out of bounds.
///
/// A message may be read while it arrives: the reader then holds its first bytes (`data`) and
/// pulls the other `tail_size` from `tail` as it needs them. Views it returns (`take`,
/// `string`) stay valid until its next read. A copy of such a reader shares its tail: only
/// one of them may read past the bytes held.
class WireReader
{
public:
    explicit WireReader(std::span<const char> data) noexcept : data_(data) {}
    WireReader(std::span<const char> data, MessageTail& tail, std::uint64_t tail_size) noexcept
        : data_(data), tail_(&tail), unread_(tail_size)
    {}

    void bytes(void* out, std::size_t size)
    {
        if (size > held()) [[unlikely]] {
            bytes_past_held(out, size);
        } else if (size != 0) { // an empty vector's data() may be null: no memcpy from or to it
            std::memcpy(out, data_.data() + position_, size);
            position_ += size;
        }
    }

    /// As `bytes`, for what may be a large payload (a vector's elements): where the message is
    /// read as it arrives, what has not arrived yet is read straight into `out`.
    void large_bytes(void* out, std::size_t size);

    /// A bool, checked: any byte but 0 or 1 is a malformed message, never undefined behaviour.
    bool boolean()
    {
        const auto byte = raw<std::uint8_t>();
        if (byte > 1) {
            fail("a boolean field is neither 0 nor 1");
        }
        return byte == 1;
    }

    template <class T>
        requires(
            std::conjunction_v<std::is_trivially_copyable<T>, std::is_default_constructible<T>>)
    T raw()
    {
        T value;
        bytes(&value, sizeof(T));
        return value;
    }

    std::uint64_t u64() { return raw<std::uint64_t>(); }

    /// A count of elements of `element_size` bytes each that must all still be in the message.
    std::size_t count(std::size_t element_size)
    {
        const auto n = u64();
        if (element_size != 0 && n > remaining() / element_size) {
            fail("a length field is larger than the rest of the message");
        }
        return static_cast<std::size_t>(n);
    }

    std::string_view string()
    {
        const auto n = count(1);
        const auto view = take(n);
        return {view.data(), view.size()};
    }

    /// The next `size` bytes, consumed.
    std::span<const char> take(std::size_t size)
    {
        if (size > held()) [[unlikely]] {
            hold(size);
        }
        const auto view = data_.subspan(position_, size);
        position_ += size;
        return view;
    }

    /// What is left of the message, including what has not arrived yet.
    [[nodiscard]] std::size_t remaining() const noexcept
    {
        return data_.size() - position_ + static_cast<std::size_t>(unread_);
    }

    [[noreturn]] static void fail(const char* what);

    /// The descriptors that came with the message, and where decoded values park their owners.
    void attach(Attachments& attachments) noexcept { attachments_ = &attachments; }

    /// A descriptor of its own for the one the sender attached at `index` (a copy: several
    /// handles in one message may name the same index).
    /// @throws ProtocolError if there is none there (never sent).
    UniqueFd descriptor(std::uint64_t index);

    /// The descriptor the sender attached at `index` itself, taken out of the message: for a
    /// value that alone refers to it (a copy in a fresh segment), so that the memory can go as
    /// soon as the value is done with it rather than when the message goes.
    /// @throws ProtocolError if there is none there (never sent, or taken already).
    UniqueFd take_descriptor(std::uint64_t index);

    /// Keeps `owner` alive for as long as the message is in use (e.g. until the call that
    /// decoded a span into shared memory returns). Without attachments (in-process decoding),
    /// @throws ProtocolError: nothing could keep the memory alive.
    void keep_alive(std::shared_ptr<const void> owner);

private:
    /// The bytes held, not yet read.
    [[nodiscard]] std::size_t held() const noexcept { return data_.size() - position_; }
    /// Makes the next `size` bytes held, reading them from the tail.
    /// @throws ProtocolError if the message is shorter.
    void hold(std::size_t size);
    void bytes_past_held(void* out, std::size_t size);

    std::span<const char> data_;
    std::size_t position_ = 0;
    Attachments* attachments_ = nullptr;
    MessageTail* tail_ = nullptr;
    std::uint64_t unread_ = 0;     // bytes of the message still in the tail
    std::shared_ptr<char[]> held_; // what data_ views once bytes were read from the tail
};

} // namespace futura::detail
