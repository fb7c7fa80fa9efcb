// The compiled part of futura::SharedEvent: set, clear and wait on a flag in shared memory.
#include <futura/shared_event.hpp>

#include <atomic>
#include <cstdint>
#include <new>

namespace futura {

namespace {

// The body of an event's segment. No lock: the flag is the futex word, so that a waiter holds
// nothing a crash could leave held.
struct EventBody
{
    std::atomic<std::uint32_t> flag{0};
    // How many threads may be asleep on `flag`, so that set() makes no system call when nobody
    // waits. A waiter killed while asleep leaves it one too high: set() then wakes for nothing,
    // which costs a system call and nothing else.
    std::atomic<std::uint32_t> waiters{0};
};

EventBody& body_of(const detail::SharedBlock& block) noexcept
{
    return *std::launder(reinterpret_cast<EventBody*>(block.body())); // NOLINT: made there
}

} // namespace

SharedEvent::SharedEvent()
    : block_(detail::SharedBlock::create(sizeof(EventBody), detail::shared_event_tag))
{
    ::new (block_.body()) EventBody;
}

void SharedEvent::set() const noexcept
{
    auto& body = body_of(block_);
    // Sequentially consistent, with the waiter's increment and load: either it sees the flag,
    // or this sees it counted (and the futex wakes it, or its wait sees the flag changed).
    body.flag.store(1);
    if (body.waiters.load() != 0) {
        detail::shared_futex_wake(body.flag, INT32_MAX);
    }
}

void SharedEvent::clear() const noexcept { body_of(block_).flag.store(0); }

bool SharedEvent::is_set() const noexcept { return body_of(block_).flag.load() != 0; }

bool SharedEvent::wait() const noexcept { return wait_until(detail::never); }

bool SharedEvent::wait_until(detail::Deadline deadline) const noexcept
{
    auto& body = body_of(block_);
    while (body.flag.load() == 0) {
        body.waiters.fetch_add(1);
        bool in_time = true;
        if (body.flag.load() == 0) {
            in_time = detail::shared_futex_wait(body.flag, 0, deadline);
        }
        body.waiters.fetch_sub(1);
        if (!in_time) {
            return body.flag.load() != 0;
        }
    }
    return true;
}

} // namespace futura
