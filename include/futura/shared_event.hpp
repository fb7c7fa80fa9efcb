// futura::SharedEvent: a flag that processes set, clear and wait for without a server (Python's
// Manager().Event() and multiprocessing.Event()).
#pragma once

#include <futura/detail/deadline.hpp>
#include <futura/detail/shared_block.hpp>
#include <futura/transferable.hpp>

#include <chrono>

namespace futura {

/// A flag in shared memory that processes wait for (Python's `multiprocessing.Event`): `set()`
/// wakes every waiter, in every process; `clear()` resets it. Passed to a process task it
/// travels as a handle.
///
/// A waiter that is killed while it waits leaves nothing behind (waiting takes no lock), so the
/// event stays usable whatever happens to the processes using it.
///
/// Copies refer to the same event (a handle). A default-constructed `SharedEvent` is a new,
/// unset event.
///
/// @par Example
/// @code
/// void worker(futura::SharedEvent go) { go.wait(); /* ... */ }
///
/// futura::SharedEvent go;
/// auto f = pool.submit(worker, go);
/// go.set(); // the worker starts
/// @endcode
///
/// @par Thread safety
/// Distinct objects: safe. Shared objects: safe, across threads and processes.
class SharedEvent
{
public:
    /// A new, unset event in shared memory. @throws std::bad_alloc if shared memory runs out.
    SharedEvent();

    /// Sets the flag and wakes every waiter.
    void set() const noexcept;

    /// Resets the flag: later waits block until the next `set()`.
    void clear() const noexcept;

    /// Whether the flag is set.
    [[nodiscard]] bool is_set() const noexcept;

    /// Waits until the flag is set (returns at once if it is). @return true.
    bool wait() const noexcept;

    /// Waits until the flag is set, at most `timeout`. @return whether it is set (false: the
    /// timeout elapsed first), as Python's `Event.wait(timeout)`.
    template <class Rep, class Period>
    [[nodiscard]] bool wait(std::chrono::duration<Rep, Period> timeout) const noexcept
    {
        return wait_until(detail::deadline_after(timeout));
    }

private:
    friend struct detail::Codec<SharedEvent>;
    struct Received
    {};
    explicit SharedEvent(Received) noexcept {}

    bool wait_until(detail::Deadline deadline) const noexcept;

    detail::SharedBlock block_;
};

namespace detail {

inline constexpr std::uint64_t shared_event_tag = shared_tag(SharedKind::event, 0);

/// A SharedEvent travels as a handle to its segment.
template <>
struct Codec<SharedEvent>
{
    static constexpr bool supported = true;
    static void encode(WireWriter& out, const SharedEvent& event) { event.block_.encode(out); }
    static SharedEvent decode(WireReader& in)
    {
        SharedEvent event(SharedEvent::Received{});
        event.block_ = SharedBlock::decode(in, shared_event_tag);
        return event;
    }
    template <class Archive>
    static void serialize(Archive& archive, SharedEvent& event)
    {
        event.block_.serialize(archive, shared_event_tag);
    }
};

} // namespace detail

} // namespace futura

namespace boost::serialization {

/// A SharedEvent inside a user type sent to or from a worker travels as a handle.
template <class Archive>
void serialize(Archive& archive, futura::SharedEvent& event, unsigned /*version*/)
{
    futura::detail::Codec<futura::SharedEvent>::serialize(archive, event);
}

} // namespace boost::serialization
