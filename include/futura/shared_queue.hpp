// futura::SharedQueue: a bounded queue that processes share without a server (Python's
// Manager().Queue() and multiprocessing.Queue()).
#pragma once

#include <futura/detail/deadline.hpp>
#include <futura/detail/segment_array.hpp>
#include <futura/detail/shared_block.hpp>
#include <futura/errors.hpp>
#include <futura/transferable.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

namespace futura {

/// How to make a `SharedQueue`.
struct SharedQueueOptions
{
    /// The most items it holds; `put` waits while it is full. At least 1.
    std::size_t capacity = 1024;
};

namespace detail {

/// What a blocking queue operation came to.
enum class QueueStatus
{
    done,
    timed_out,
    closed,
};

/// The untyped part of SharedQueue (src/shared_queue.cpp): a ring of `capacity` slots of
/// `slot_size` bytes after a small body, all guarded by the block's lock.
SharedBlock queue_create(std::size_t capacity, std::size_t slot_size, std::uint64_t tag);
QueueStatus queue_put(const SharedBlock& block, const void* item, Deadline deadline);
QueueStatus queue_get(const SharedBlock& block, void* item, Deadline deadline);
void queue_close(const SharedBlock& block);
[[nodiscard]] bool queue_closed(const SharedBlock& block);
[[nodiscard]] std::size_t queue_size(const SharedBlock& block);
[[nodiscard]] std::size_t queue_capacity(const SharedBlock& block) noexcept;
/// @throws ProtocolError if a received block is not a queue of `slot_size`-byte items.
void queue_check(const SharedBlock& block, std::size_t slot_size);
[[noreturn]] void throw_queue_closed(bool putting);
[[noreturn]] void throw_queue_timeout(bool putting, std::size_t capacity);

} // namespace detail

/// A bounded FIFO queue in shared memory (Python's `multiprocessing.Queue(maxsize)` and
/// `Manager().Queue()`, without a feeder thread or a server): passed to a process task it
/// travels as a handle, and producers and consumers in any processes share it.
///
/// - `put` waits while the queue is full, `get` while it is empty; the overloads with a timeout
///   throw `QueueFull` / `QueueEmpty` (both `TimeoutError`s) when it elapses; `try_put` and
///   `try_get` return at once.
/// - `close()` ends the queue for everyone (Python 3.13's `shutdown()`): `put` throws
///   `QueueClosed` from then on; consumers still get the items left, then `get` throws
///   `QueueClosed` and `next()` returns `std::nullopt`, so `while (auto item = q.next())`
///   ends cleanly.
/// - Items are copied in and out (`T` is trivially copyable, like a `SharedArray` element, or
///   a `SharedString<N>`): no pickling.
///
/// Crashes: a process killed while it waits in `get` or `put` leaves the queue as it was. The
/// lock is held only to copy one item; a process killed in that copy leaves the queue
/// *broken*: every later call, in any process, throws `BrokenSharedState` instead of handing
/// out a half-written item.
///
/// Copies refer to the same queue (a handle). Default-constructed: a new queue of 1024 items.
///
/// @par Example
/// @code
/// void produce(futura::SharedQueue<int> q) { for (int i = 0; i < 100; ++i) q.put(i); q.close(); }
///
/// futura::SharedQueue<int> q{{.capacity = 16}};
/// auto f = pool.submit(produce, q);
/// long sum = 0;
/// while (auto item = q.next()) { sum += *item; } // 4950
/// @endcode
///
/// @par Thread safety
/// Distinct objects: safe. Shared objects: safe, across threads and processes.
///
/// @tparam T trivially copyable, without pointers, default-constructible.
template <class T>
class SharedQueue
{
    static_assert(detail::shareable_element<T> && !std::is_const_v<T> &&
                      std::is_default_constructible_v<T>,
                  "futura::SharedQueue<T>: T must be trivially copyable and hold no pointers, "
                  "since another process reads its bytes: use numbers, enums, structs of them, "
                  "or futura::SharedString<N> for text (std::string cannot live in shared "
                  "memory)");

public:
    using value_type = T;

    /// A new, empty queue of 1024 items. @throws as SharedQueue(options).
    SharedQueue() : SharedQueue(SharedQueueOptions{}) {}

    /// A new, empty queue of `options.capacity` items, in shared memory backed up front.
    /// @throws std::invalid_argument if the capacity is 0; std::bad_alloc if shared memory runs
    /// out.
    explicit SharedQueue(SharedQueueOptions options)
        : block_(detail::queue_create(options.capacity, sizeof(T), tag))
    {}

    /// Appends `item`, waiting while the queue is full.
    /// @throws QueueClosed if the queue is closed; BrokenSharedState if it is broken.
    void put(const T& item) const { put_until(item, detail::never); }

    /// Appends `item`, waiting at most `timeout` while the queue is full.
    /// @throws QueueFull if it is still full after `timeout`; as put(item).
    template <class Rep, class Period>
    void put(const T& item, std::chrono::duration<Rep, Period> timeout) const
    {
        put_until(item, detail::deadline_after(timeout));
    }

    /// Appends `item` if there is room. @return false if the queue is full.
    /// @throws as put(item).
    [[nodiscard]] bool try_put(const T& item) const
    {
        return check(detail::queue_put(block_, &item, detail::Clock::now()), true);
    }

    /// Removes and returns the oldest item, waiting while the queue is empty.
    /// @throws QueueClosed once the queue is closed and empty; BrokenSharedState if broken.
    [[nodiscard]] T get() const { return get_until(detail::never); }

    /// As get(), waiting at most `timeout`. @throws QueueEmpty if it is still empty then.
    template <class Rep, class Period>
    [[nodiscard]] T get(std::chrono::duration<Rep, Period> timeout) const
    {
        return get_until(detail::deadline_after(timeout));
    }

    /// Removes and returns the oldest item if there is one, else std::nullopt.
    /// @throws QueueClosed once the queue is closed and empty; BrokenSharedState if broken.
    [[nodiscard]] std::optional<T> try_get() const
    {
        T item;
        if (!check(detail::queue_get(block_, &item, detail::Clock::now()), false)) {
            return std::nullopt;
        }
        return item;
    }

    /// The next item, waiting for one; std::nullopt once the queue is closed and empty: the end
    /// of a consumer's `while (auto item = queue.next())`.
    /// @throws BrokenSharedState if the queue is broken.
    [[nodiscard]] std::optional<T> next() const
    {
        T item;
        if (detail::queue_get(block_, &item, detail::never) == detail::QueueStatus::closed) {
            return std::nullopt;
        }
        return item;
    }

    /// Closes the queue, for every process: puts are refused from now on, and waiting
    /// producers and consumers wake up (consumers still get the items left). Idempotent.
    void close() const { detail::queue_close(block_); }

    /// Whether `close()` was called, in any process.
    [[nodiscard]] bool closed() const { return detail::queue_closed(block_); }

    /// How many items it holds now (out of date as soon as another process puts or gets).
    [[nodiscard]] std::size_t size() const { return detail::queue_size(block_); }
    [[nodiscard]] bool empty() const { return size() == 0; }
    [[nodiscard]] std::size_t capacity() const noexcept { return detail::queue_capacity(block_); }

    /// Whether `a` and `b` are the same queue.
    friend bool operator==(const SharedQueue& a, const SharedQueue& b) noexcept
    {
        return a.block_.same_as(b.block_);
    }

private:
    friend struct detail::Codec<SharedQueue>;
    static constexpr std::uint64_t tag =
        detail::shared_tag(detail::SharedKind::queue, detail::shared_layout(sizeof(T), alignof(T)));

    struct Received
    {};
    explicit SharedQueue(Received) noexcept {}

    static bool check(detail::QueueStatus status, bool putting)
    {
        if (status == detail::QueueStatus::closed) {
            detail::throw_queue_closed(putting);
        }
        return status == detail::QueueStatus::done;
    }

    void put_until(const T& item, detail::Deadline deadline) const
    {
        if (!check(detail::queue_put(block_, &item, deadline), true)) {
            detail::throw_queue_timeout(true, capacity());
        }
    }

    T get_until(detail::Deadline deadline) const
    {
        T item;
        if (!check(detail::queue_get(block_, &item, deadline), false)) {
            detail::throw_queue_timeout(false, capacity());
        }
        return item;
    }

    detail::SharedBlock block_;
};

namespace detail {

/// A SharedQueue travels as a handle to its segment.
template <class T>
struct Codec<SharedQueue<T>>
{
    static constexpr bool supported = true;
    static void encode(WireWriter& out, const SharedQueue<T>& queue) { queue.block_.encode(out); }
    static SharedQueue<T> decode(WireReader& in)
    {
        SharedQueue<T> queue(typename SharedQueue<T>::Received{});
        queue.block_ = SharedBlock::decode(in, SharedQueue<T>::tag);
        queue_check(queue.block_, sizeof(T));
        return queue;
    }
    template <class Archive>
    static void serialize(Archive& archive, SharedQueue<T>& queue)
    {
        queue.block_.serialize(archive, SharedQueue<T>::tag);
        if constexpr (!Archive::is_saving::value) {
            queue_check(queue.block_, sizeof(T));
        }
    }
};

} // namespace detail

} // namespace futura

namespace boost::serialization {

/// A SharedQueue inside a user type sent to or from a worker travels as a handle.
template <class Archive, class T>
void serialize(Archive& archive, futura::SharedQueue<T>& queue, unsigned /*version*/)
{
    futura::detail::Codec<futura::SharedQueue<T>>::serialize(archive, queue);
}

} // namespace boost::serialization
