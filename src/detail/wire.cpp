// Reading and writing message bytes, bounds-checked, and the descriptors attached to them.
#include <futura/detail/attachments.hpp>
#include <futura/detail/wire.hpp>

#include <algorithm>
#include <atomic>
#include <string>

namespace futura::detail {

namespace {

std::atomic<std::uint64_t> sent_in_place{0};
std::atomic<std::uint64_t> copied_into_message{0};
std::atomic<std::uint64_t> copied_out_of_message{0};
std::atomic<std::uint64_t> received_in_place{0};

/// What a reader reads from its tail at least when it needs more bytes held: small values
/// past the held bytes cost one read per this much, not one per value.
constexpr std::size_t tail_step = std::size_t{64} << 10;

} // namespace

MessageCopyCounters message_copy_counters() noexcept
{
    return {sent_in_place.load(std::memory_order_relaxed),
            copied_into_message.load(std::memory_order_relaxed),
            copied_out_of_message.load(std::memory_order_relaxed),
            received_in_place.load(std::memory_order_relaxed)};
}

void WireWriter::large_bytes_slow(const void* data, std::size_t size)
{
    if (keeper_ == nullptr || attachments_ == nullptr || counting_) {
        if (!counting_) {
            copied_into_message.fetch_add(1, std::memory_order_relaxed);
        }
        bytes(data, size);
        return;
    }
    if (!kept_) {
        kept_ = keeper_->keep(); // one owner for every payload of the message
    }
    attachments_->in_place.push_back(
        InPlaceBytes{buffer_->size(), static_cast<const char*>(data), size, kept_});
    sent_in_place.fetch_add(1, std::memory_order_relaxed);
}

void WireWriter::forget_foreign_descriptors() noexcept
{
    // Someone changed the descriptors without this writer (a worker drops a partly encoded
    // result's): what was known of their sources no longer holds.
    auto& sources = attachments_->sources;
    if (sources.size() != attachments_->descriptors.size()) {
        sources.assign(attachments_->descriptors.size(), -1);
    }
}

std::uint32_t WireWriter::descriptor(int fd)
{
    if (attachments_ != nullptr) {
        forget_foreign_descriptors();
        // The same file once per message: SCM_RIGHTS carries at most 253 descriptors, and
        // 2,000 arguments holding one SharedValue are one file. (A linear search: at most 253.)
        const auto& sources = attachments_->sources;
        for (std::size_t i = 0; i < sources.size(); ++i) {
            if (sources[i] == fd) {
                return static_cast<std::uint32_t>(i);
            }
        }
    }
    const auto index = fresh_descriptor(fd);
    attachments_->sources.back() = fd;
    return index;
}

std::uint32_t WireWriter::fresh_descriptor(int fd)
{
    if (attachments_ == nullptr) {
        throw ProtocolError("futura: this message cannot carry shared memory or files "
                            "(it is not going to another process)");
    }
    forget_foreign_descriptors();
    if (counting_) {
        attachments_->descriptors.emplace_back();
    } else {
        if (attachments_->descriptors.size() >= Attachments::max_descriptors) {
            throw ProtocolError("futura: one task's arguments (or result) hold more than 253 "
                                "different shared arrays, values or files; pass fewer, or group "
                                "them in one array");
        }
        attachments_->descriptors.push_back(UniqueFd::duplicate(fd));
    }
    attachments_->sources.push_back(-1);
    return static_cast<std::uint32_t>(attachments_->descriptors.size() - 1);
}

void count_received_in_place() noexcept
{
    received_in_place.fetch_add(1, std::memory_order_relaxed);
}

void WireReader::large_bytes(void* out, std::size_t size)
{
    if (size >= in_place_threshold) [[unlikely]] {
        (size > held() ? received_in_place : copied_out_of_message)
            .fetch_add(1, std::memory_order_relaxed);
    }
    bytes(out, size);
}

void WireReader::hold(std::size_t size)
{
    if (size > remaining()) {
        fail("the message ends early");
    }
    // What is held and not read yet, then at least a step more (never past the message).
    const auto kept = held();
    const auto more = static_cast<std::size_t>(
        std::min<std::uint64_t>(unread_, std::max<std::uint64_t>(size - kept, tail_step)));
    auto next = std::make_shared_for_overwrite<char[]>(kept + more);
    if (kept != 0) {
        std::memcpy(next.get(), data_.data() + position_, kept);
    }
    tail_->read(next.get() + kept, more);
    unread_ -= more;
    held_ = std::move(next);
    data_ = std::span<const char>(held_.get(), kept + more);
    position_ = 0;
}

void WireReader::bytes_past_held(void* out, std::size_t size)
{
    if (size < tail_step) {
        hold(size); // a small value: read ahead with it
        bytes(out, size);
        return;
    }
    if (size > remaining()) {
        fail("the message ends early");
    }
    // A large payload: what is held, then the rest straight from the tail into `out`.
    const auto kept = held();
    if (kept != 0) {
        std::memcpy(out, data_.data() + position_, kept);
    }
    position_ = data_.size();
    tail_->read(static_cast<char*>(out) + kept, size - kept);
    unread_ -= size - kept;
}

void WireReader::fail(const char* what)
{
    throw ProtocolError(std::string("futura: a message between processes is malformed: ") + what);
}

UniqueFd WireReader::descriptor(std::uint64_t index)
{
    if (attachments_ == nullptr || index >= attachments_->descriptors.size() ||
        !attachments_->descriptors[index]) {
        fail("it names a file descriptor that did not come with it");
    }
    // A copy, not the original: the sender attaches a file once however many handles in the
    // message name it. The originals close with the message.
    return UniqueFd::duplicate(attachments_->descriptors[static_cast<std::size_t>(index)].get());
}

UniqueFd WireReader::take_descriptor(std::uint64_t index)
{
    if (attachments_ == nullptr || index >= attachments_->descriptors.size() ||
        !attachments_->descriptors[index]) {
        fail("it names a file descriptor that did not come with it");
    }
    return std::move(attachments_->descriptors[static_cast<std::size_t>(index)]);
}

void WireReader::keep_alive(std::shared_ptr<const void> owner)
{
    if (attachments_ == nullptr) {
        fail("it holds a view of shared memory, but nothing can keep that memory alive here");
    }
    attachments_->keep_alive.push_back(std::move(owner));
}

} // namespace futura::detail
