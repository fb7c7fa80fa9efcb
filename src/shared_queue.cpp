// The compiled part of futura::SharedQueue: the ring and its waits, independent of the element.
#include <futura/shared_queue.hpp>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>

namespace futura::detail {

namespace {

constexpr const char* type_name = "futura::SharedQueue";

// The body of a queue's segment; the ring of slots follows it. The plain fields are guarded by
// the block's lock. Blocking is on two futex words that count puts and gets (a condition
// variable would keep waiter state in shared memory that a killed waiter leaves inconsistent;
// a futex waiter leaves nothing).
struct QueueBody
{
    std::uint64_t capacity = 0;  // slots; fixed at creation
    std::uint64_t slot_size = 0; // bytes; fixed at creation
    std::uint64_t head = 0;      // slot of the oldest item
    std::uint64_t count = 0;     // items held
    std::atomic<std::uint32_t> closed{0};
    std::atomic<std::uint32_t> puts{0};    // bumped by every put and by close: getters sleep on it
    std::atomic<std::uint32_t> gets{0};    // bumped by every get and by close: putters sleep on it
    std::atomic<std::uint32_t> getters{0}; // asleep on `puts` (a killed sleeper: one too many,
    std::atomic<std::uint32_t> putters{0}; // which costs a needless wake-up, nothing else)
};

constexpr std::size_t slots_offset = (sizeof(QueueBody) + 63) / 64 * 64;

QueueBody& body_of(const SharedBlock& block) noexcept
{
    return *std::launder(reinterpret_cast<QueueBody*>(block.body())); // NOLINT: made there
}

std::byte* slot(const SharedBlock& block, const QueueBody& body, std::uint64_t index) noexcept
{
    return block.body() + slots_offset + (index % body.capacity) * body.slot_size;
}

// Sleeps on `word` (a count last seen as `seen`) once the lock is released, counted in
// `sleepers`. The sleeper is counted before the lock is released, so a waker that changes
// `word` under the lock afterwards sees the count and wakes it.
bool sleep_on(StateLock& lock, std::atomic<std::uint32_t>& word, std::uint32_t seen,
              std::atomic<std::uint32_t>& sleepers, Deadline deadline)
{
    sleepers.fetch_add(1);
    lock.unlock();
    const bool in_time = shared_futex_wait(word, seen, deadline);
    sleepers.fetch_sub(1);
    return in_time;
}

void wake_one(std::atomic<std::uint32_t>& word, const std::atomic<std::uint32_t>& sleepers)
{
    if (sleepers.load() != 0) {
        shared_futex_wake(word, 1);
    }
}

} // namespace

SharedBlock queue_create(std::size_t capacity, std::size_t slot_size, std::uint64_t tag)
{
    if (capacity == 0) {
        throw std::invalid_argument("futura::SharedQueue: capacity 0: a queue holds at least one "
                                    "item (give {.capacity = n} with n >= 1)");
    }
    if (capacity > (std::numeric_limits<std::size_t>::max() / 4 - slots_offset) / slot_size) {
        throw SharedMemoryExhausted("futura::SharedQueue: " + std::to_string(capacity) +
                                    " items of " + std::to_string(slot_size) +
                                    " bytes are more than the address space");
    }
    auto block = SharedBlock::create(slots_offset + capacity * slot_size, tag);
    auto* body = ::new (block.body()) QueueBody;
    body->capacity = capacity;
    body->slot_size = slot_size;
    return block;
}

void queue_check(const SharedBlock& block, std::size_t slot_size)
{
    const auto& body = body_of(block);
    if (block.body_size() < slots_offset || body.slot_size != slot_size || body.capacity == 0 ||
        body.capacity > (block.body_size() - slots_offset) / slot_size) {
        WireReader::fail("a shared queue's handle does not match its segment");
    }
}

QueueStatus queue_put(const SharedBlock& block, const void* item, Deadline deadline)
{
    auto& body = body_of(block);
    for (;;) {
        StateLock lock(block.header(), type_name);
        if (body.closed.load(std::memory_order_relaxed) != 0) {
            return QueueStatus::closed;
        }
        if (body.count < body.capacity) {
            {
                const WritingScope writing(block.header(), type_name);
                std::memcpy(slot(block, body, body.head + body.count), item, body.slot_size);
                ++body.count;
            }
            body.puts.fetch_add(1);
            lock.unlock();
            wake_one(body.puts, body.getters);
            return QueueStatus::done;
        }
        if (Clock::now() >= deadline) {
            return QueueStatus::timed_out;
        }
        // Full: sleep until a get (or close) changes `gets`, then look again.
        (void)sleep_on(lock, body.gets, body.gets.load(), body.putters, deadline);
    }
}

QueueStatus queue_get(const SharedBlock& block, void* item, Deadline deadline)
{
    auto& body = body_of(block);
    for (;;) {
        StateLock lock(block.header(), type_name);
        if (body.count > 0) {
            {
                const WritingScope writing(block.header(), type_name);
                std::memcpy(item, slot(block, body, body.head), body.slot_size);
                body.head = (body.head + 1) % body.capacity;
                --body.count;
            }
            body.gets.fetch_add(1);
            lock.unlock();
            wake_one(body.gets, body.putters);
            return QueueStatus::done;
        }
        if (body.closed.load(std::memory_order_relaxed) != 0) {
            return QueueStatus::closed;
        }
        if (Clock::now() >= deadline) {
            return QueueStatus::timed_out;
        }
        (void)sleep_on(lock, body.puts, body.puts.load(), body.getters, deadline);
    }
}

void queue_close(const SharedBlock& block)
{
    auto& body = body_of(block);
    {
        const StateLock lock(block.header(), type_name);
        body.closed.store(1, std::memory_order_relaxed);
        body.puts.fetch_add(1);
        body.gets.fetch_add(1);
    }
    shared_futex_wake(body.puts, INT32_MAX);
    shared_futex_wake(body.gets, INT32_MAX);
}

bool queue_closed(const SharedBlock& block)
{
    return body_of(block).closed.load(std::memory_order_relaxed) != 0;
}

std::size_t queue_size(const SharedBlock& block)
{
    const StateLock lock(block.header(), type_name);
    return static_cast<std::size_t>(body_of(block).count);
}

std::size_t queue_capacity(const SharedBlock& block) noexcept
{
    return static_cast<std::size_t>(body_of(block).capacity);
}

void throw_queue_closed(bool putting)
{
    throw QueueClosed(putting ? "futura::SharedQueue: put on a closed queue (close() was called, "
                                "in this or another process)"
                              : "futura::SharedQueue: the queue is closed and empty: no item "
                                "will come");
}

void throw_queue_timeout(bool putting, std::size_t capacity)
{
    if (putting) {
        throw QueueFull("futura::SharedQueue: still full (" + std::to_string(capacity) +
                        " items) when the timeout of put elapsed");
    }
    throw QueueEmpty("futura::SharedQueue: still empty when the timeout of get elapsed");
}

} // namespace futura::detail
