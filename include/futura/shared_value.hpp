// futura::SharedValue: one value in shared memory, with atomic operations and a lock that work
// across processes (Python's multiprocessing.Value).
#pragma once

#include <futura/detail/segment.hpp>
#include <futura/detail/segment_array.hpp>
#include <futura/detail/shared_block.hpp>
#include <futura/transferable.hpp>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <memory>
#include <new>
#include <pthread.h>
#include <system_error>
#include <type_traits>
#include <utility>

namespace futura {

namespace detail {

/// The layout of a SharedValue's segment. The value is aligned for std::atomic_ref.
template <class T>
struct SharedValueBlock
{
    pthread_mutex_t mutex;
    alignas(std::atomic_ref<T>::required_alignment) T value;
};

} // namespace detail

/// One `T` in shared memory (Python's `multiprocessing.Value`): passed to a process task it
/// travels as a handle, so the worker and this process read and write the same value.
///
/// - `load`, `store`, `exchange` are atomic, through `std::atomic_ref`, when `T` is lock-free
///   atomic (every integer, pointer-free enum, `float`, `double`, and small trivially copyable
///   structs); otherwise they take the lock.
/// - `fetch_add`, `fetch_sub` (arithmetic `T`) and `compare_exchange` need lock-free `T`.
/// - `lock()` returns a guard that holds the value's lock, across processes, for a compound
///   update (Python's `with value.get_lock():`). Atomic operations do not take the lock: update
///   a value either atomically or under the lock, not both at the same time.
///
/// The lock is a robust, process-shared pthread mutex: if a process dies holding it (a crashed
/// or killed worker), the next `lock()` gets it anyway, and its guard's `owner_died()` says the
/// value may be half-updated, for the caller to repair.
///
/// Copies refer to the same value (a handle).
///
/// @par Example
/// @code
/// void count(futura::SharedValue<long> hits, int n)
/// {
///     for (int i = 0; i < n; ++i) {
///         hits.fetch_add(1);
///     }
/// }
///
/// futura::SharedValue<long> hits;
/// pool.submit(count, hits, 1000).result(); // hits.load() == 1000
/// @endcode
///
/// @par Thread safety
/// Distinct objects: safe. Shared objects: safe, across threads and processes.
template <class T>
class SharedValue
{
    static_assert(std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> &&
                      !std::is_member_pointer_v<T> && !std::is_const_v<T> && !std::is_volatile_v<T>,
                  "futura::SharedValue<T>: T must be trivially copyable and hold no pointers, "
                  "since another process reads its bytes: use a number, an enum or a struct of "
                  "them");

    static_assert(detail::holds_no_pointers<T>(),
                  "futura::SharedValue<T>: T holds a pointer or a reference member (looked for "
                  "in its members, recursively): another process cannot follow it; store "
                  "indices or offsets instead");
    using Block = detail::SharedValueBlock<T>;

public:
    /// Whether atomic operations on `T` are lock-free (and so work across processes).
    static constexpr bool is_lock_free = std::atomic_ref<T>::is_always_lock_free;

    /// Holds the lock of a SharedValue; gives access to the value while it lives.
    class Guard
    {
    public:
        Guard(Guard&& other) noexcept
            : segment_(std::move(other.segment_)), block_(std::exchange(other.block_, nullptr)),
              owner_died_(other.owner_died_)
        {}
        Guard& operator=(Guard&&) = delete;
        Guard(const Guard&) = delete;
        Guard& operator=(const Guard&) = delete;
        ~Guard() { unlock(); }

        [[nodiscard]] T& operator*() const noexcept { return block_->value; }
        [[nodiscard]] T* operator->() const noexcept { return &block_->value; }

        /// Whether the lock's previous owner died holding it: the value may be half-updated.
        [[nodiscard]] bool owner_died() const noexcept { return owner_died_; }

        /// Releases the lock before the guard goes (once; later calls do nothing).
        void unlock() noexcept
        {
            if (block_ != nullptr) {
                ::pthread_mutex_unlock(&std::exchange(block_, nullptr)->mutex);
            }
        }

    private:
        friend class SharedValue;
        Guard(std::shared_ptr<detail::Segment> segment, Block* block)
            : segment_(std::move(segment)), block_(block),
              owner_died_(detail::lock_robust_mutex(block->mutex))
        {}
        std::shared_ptr<detail::Segment> segment_; // keeps the mapping while locked
        Block* block_;
        bool owner_died_;
    };

    /// A value-initialised `T` (0 for numbers) in new shared memory.
    /// @throws std::bad_alloc if shared memory runs out.
    SharedValue() : SharedValue(T{}) {}

    /// `initial` in new shared memory. @throws as SharedValue().
    explicit SharedValue(const T& initial) : segment_(detail::Segment::create(sizeof(Block)))
    {
        block_ = ::new (segment_->data()) Block;
        detail::init_robust_mutex(block_->mutex);
        block_->value = initial;
    }

    [[nodiscard]] T load() const
    {
        if constexpr (is_lock_free) {
            return std::atomic_ref<T>(block_->value).load();
        } else {
            return *lock();
        }
    }

    void store(const T& value) const
    {
        if constexpr (is_lock_free) {
            std::atomic_ref<T>(block_->value).store(value);
        } else {
            *lock() = value;
        }
    }

    /// Stores `value` and returns the value before.
    T exchange(const T& value) const
    {
        if constexpr (is_lock_free) {
            return std::atomic_ref<T>(block_->value).exchange(value);
        } else {
            auto guard = lock();
            return std::exchange(*guard, value);
        }
    }

    /// If the value equals `expected` (bytewise), replaces it with `desired` and returns true;
    /// else loads it into `expected` and returns false.
    bool compare_exchange(T& expected, const T& desired) const requires is_lock_free
    {
        return std::atomic_ref<T>(block_->value).compare_exchange_strong(expected, desired);
    }

    /// Adds atomically; returns the value before.
    T fetch_add(T delta) const requires is_lock_free &&
        (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>)
    {
        return std::atomic_ref<T>(block_->value).fetch_add(delta);
    }

    /// Subtracts atomically; returns the value before.
    T fetch_sub(T delta) const requires is_lock_free &&
        (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>)
    {
        return std::atomic_ref<T>(block_->value).fetch_sub(delta);
    }

    /// Takes the value's lock (waiting for it, across processes) for a compound update.
    /// @throws std::system_error if the lock cannot be taken (EDEADLK: this thread holds it).
    [[nodiscard]] Guard lock() const { return Guard(segment_, block_); }

private:
    friend struct detail::Codec<SharedValue>;
    struct Received
    {};
    explicit SharedValue(Received) noexcept {}

    void encode(detail::WireWriter& out) const
    {
        detail::encode_segment_view(out, *segment_, block_, sizeof(Block));
    }

    void adopt(detail::SegmentView view)
    {
        if (view.bytes != sizeof(Block)) {
            detail::WireReader::fail("a shared value's segment has the wrong size");
        }
        detail::check_size_sealed(*view.segment);
        block_ = std::launder(reinterpret_cast<Block*>(view.data)); // NOLINT: the sender's Block
        segment_ = std::move(view.segment);
    }

    std::shared_ptr<detail::Segment> segment_;
    Block* block_ = nullptr;
};

namespace detail {

/// A SharedValue travels as a handle to its segment.
template <class T>
struct Codec<SharedValue<T>>
{
    static constexpr bool supported = true;
    static void encode(WireWriter& out, const SharedValue<T>& value) { value.encode(out); }
    static SharedValue<T> decode(WireReader& in)
    {
        SharedValue<T> value(typename SharedValue<T>::Received{});
        value.adopt(decode_segment_view(in, alignof(SharedValueBlock<T>), true));
        return value;
    }
    template <class Archive>
    static void serialize(Archive& archive, SharedValue<T>& value)
    {
        serialize_segment_handle(
            archive,
            [&](WireWriter& out) {
                return attach_segment(out, *value.segment_, value.block_,
                                      sizeof(SharedValueBlock<T>));
            },
            [&](WireReader& in, const SegmentHandle& handle) {
                value.adopt(open_segment(in, handle, alignof(SharedValueBlock<T>), true));
            });
    }
};

} // namespace detail

} // namespace futura

namespace boost::serialization {

/// A SharedValue inside a user type sent to or from a worker travels as a handle (see
/// SharedArray's).
template <class Archive, class T>
void serialize(Archive& archive, futura::SharedValue<T>& value, unsigned /*version*/)
{
    futura::detail::Codec<futura::SharedValue<T>>::serialize(archive, value);
}

} // namespace boost::serialization
