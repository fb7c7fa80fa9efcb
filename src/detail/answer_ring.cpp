// The ring of answers shared by the pool and one worker (see answer_ring.hpp).
//
// Memory ordering: the worker writes a record, then publishes it with a release store of
// `head`; the parent's acquire load of `head` makes the record's bytes visible. The parent gives
// room back with a release store of `tail` after copying the record out, so the worker never
// overwrites bytes not yet copied. Waking is Dekker's handshake: the parent stores
// `parent_asleep = 1` then loads `head`; the worker stores `head` then loads `parent_asleep`,
// each pair separated by a sequentially consistent fence, so at least one of them sees the
// other's store and no answer is left unseen with the parent asleep.
#include <futura/detail/answer_ring.hpp>
#include <futura/detail/protocol.hpp>
#include <futura/detail/wire.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <sys/mman.h>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace futura::detail {

namespace {

static_assert(sizeof(AnswerRing::Control) <= AnswerRing::data_offset);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "the answer ring is shared between processes: it needs address-free atomics");

constexpr bool valid_capacity(std::size_t capacity) noexcept
{
    return capacity >= AnswerRing::min_capacity && capacity <= AnswerRing::max_capacity &&
           (capacity & (capacity - 1)) == 0;
}

constexpr std::uint64_t padded(std::uint64_t bytes) noexcept
{
    return (bytes + AnswerRing::record_alignment - 1) &
           ~std::uint64_t{AnswerRing::record_alignment - 1};
}

std::shared_ptr<void> map_ring(int fd, std::size_t bytes)
{
    void* at = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (at == MAP_FAILED) {
        throw std::system_error(errno, std::generic_category(), "futura: mmap (answer ring)");
    }
    return {at, [bytes](void* p) { ::munmap(p, bytes); }};
}

/// One 64-bit word of a record header, read once: the worker may change it at any time, so the
/// compiler must not read it again after it was checked.
std::uint64_t load_word(const char* at) noexcept
{
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): a word of shared memory
    return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(const_cast<char*>(at)))
        .load(std::memory_order_relaxed);
}

void store_word(char* at, std::uint64_t value) noexcept
{
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): a word of shared memory
    std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(at))
        .store(value, std::memory_order_relaxed);
}

} // namespace

AnswerRing::AnswerRing(std::shared_ptr<void> mapping, std::size_t capacity, UniqueFd fd)
    : mapping_(std::move(mapping)), capacity_(capacity), fd_(std::move(fd))
{}

AnswerRing::Control& AnswerRing::control() const noexcept
{
    return *static_cast<Control*>(mapping_.get());
}

char* AnswerRing::data() const noexcept { return static_cast<char*>(mapping_.get()) + data_offset; }

AnswerRing AnswerRing::create(std::size_t capacity)
{
    if (!valid_capacity(capacity)) {
        throw std::invalid_argument("futura: an answer ring's capacity must be a power of two "
                                    "between 256 bytes and 16 MiB");
    }
    // Sealed against shrinking: a worker holding the descriptor cannot truncate it under the
    // parent, whose next read would fault (SIGBUS).
    UniqueFd fd(::memfd_create("futura-answers", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    const auto bytes = data_offset + capacity;
    if (!fd || ::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0 ||
        ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
        throw std::system_error(errno, std::generic_category(),
                                "futura: memfd_create (answer ring)");
    }
    auto mapping = map_ring(fd.get(), bytes);
    AnswerRing ring(std::move(mapping), capacity, std::move(fd));
    // Zero-filled: nothing published; the parent starts asleep (it reads when the socket wakes
    // it), so the worker's first answer wakes it.
    ring.control().parent_asleep.store(1, std::memory_order_relaxed);
    return ring;
}

AnswerRing AnswerRing::open(UniqueFd fd)
{
    struct stat status
    {};
    if (!fd || ::fstat(fd.get(), &status) != 0 || !S_ISREG(status.st_mode) ||
        status.st_size < static_cast<off_t>(data_offset) ||
        !valid_capacity(static_cast<std::size_t>(status.st_size) - data_offset)) {
        throw ProtocolError("futura: the answer ring a worker was sent is not one");
    }
    const auto bytes = static_cast<std::size_t>(status.st_size);
    try {
        // Mapped, the descriptor is closed (when `fd` goes): a worker holds no descriptor but
        // its channel.
        return AnswerRing(map_ring(fd.get(), bytes), bytes - data_offset, UniqueFd());
    } catch (const std::system_error&) { // read-only, or sealed against writes
        throw ProtocolError("futura: the answer ring a worker was sent cannot be written");
    }
}

// ----- worker --------------------------------------------------------------------------------

bool AnswerRing::take_wake_duty() noexcept
{
    // After a write, the fence orders the store of `head` before the load below (Dekker).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    auto& asleep = control().parent_asleep;
    // A plain load first: while the parent is awake, the line stays shared, not bounced.
    return asleep.load(std::memory_order_seq_cst) != 0 &&
           asleep.exchange(0, std::memory_order_seq_cst) != 0;
}

bool AnswerRing::try_write(std::span<const char> frame, std::uint64_t sequence) noexcept
{
    if (frame.size() > max_frame) {
        return false;
    }
    const std::uint64_t length = sizeof(Record) + padded(frame.size());
    const std::uint64_t taken = control().tail.load(std::memory_order_acquire);
    if (taken > position_ || length > capacity_ - (position_ - taken)) {
        return false; // full (or the parent's index makes no sense: the socket is safe)
    }
    const auto mask = capacity_ - 1;
    char* const base = data();
    const auto at = static_cast<std::size_t>(position_ & mask);
    store_word(base + at, sequence);
    store_word(base + at + sizeof(std::uint64_t), frame.size());
    const auto from = (at + sizeof(Record)) & mask;
    const auto first = std::min(frame.size(), capacity_ - from);
    if (!frame.empty()) { // memcpy's pointers must not be null, even for no bytes
        std::memcpy(base + from, frame.data(), first);
        std::memcpy(base, frame.data() + first, frame.size() - first);
    }
    position_ += length;
    control().head.store(position_, std::memory_order_release);
    return true;
}

// ----- parent --------------------------------------------------------------------------------

std::optional<std::uint64_t> AnswerRing::read(std::vector<char>& frame)
{
    const std::uint64_t head = control().head.load(std::memory_order_acquire);
    const std::uint64_t available = head - position_; // unsigned: a head behind us is huge
    if (available == 0) {
        return std::nullopt;
    }
    if (available > capacity_ || available % record_alignment != 0 || available < sizeof(Record)) {
        throw ProtocolError("futura: a worker's answer ring has an invalid write position");
    }
    const auto mask = capacity_ - 1;
    const char* const base = data();
    const auto at = static_cast<std::size_t>(position_ & mask);
    const std::uint64_t sequence = load_word(base + at);
    const std::uint64_t size = load_word(base + at + sizeof(std::uint64_t));
    if (size < sizeof(FrameHeader) || size > max_frame ||
        sizeof(Record) + padded(size) > available) {
        throw ProtocolError("futura: a worker's answer ring holds a record of an invalid size");
    }
    // Copied out before anything in it is believed: the worker could change it afterwards.
    frame.resize(static_cast<std::size_t>(size));
    const auto from = (at + sizeof(Record)) & mask;
    const auto first = std::min(frame.size(), capacity_ - from);
    std::memcpy(frame.data(), base + from, first);
    std::memcpy(frame.data() + first, base, frame.size() - first);
    position_ += sizeof(Record) + padded(size);
    control().tail.store(position_, std::memory_order_release);
    return sequence;
}

bool AnswerRing::try_sleep() noexcept
{
    auto& control_words = control();
    control_words.parent_asleep.store(1, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (control_words.head.load(std::memory_order_seq_cst) == position_) {
        return true;
    }
    // Answers came meanwhile: stay awake to read them, and spare the worker a wake.
    control_words.parent_asleep.store(0, std::memory_order_relaxed);
    return false;
}

} // namespace futura::detail
