// Watches many shared states and hands out their indices in the order they finish.
#pragma once

#include <futura/detail/deadline.hpp>
#include <futura/detail/parker.hpp>
#include <futura/detail/shared_state.hpp>

#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

namespace futura::detail {

/// The engine of `futura::wait` and `futura::as_completed`: one done-callback per watched state
/// pushes its index here and wakes the waiting thread.
class CompletionQueue : public std::enable_shared_from_this<CompletionQueue>
{
public:
    /// Watches `states` (which must outlive `unwatch()`); already-finished ones are queued at
    /// once, in input order.
    static std::shared_ptr<CompletionQueue> watch(std::span<SharedStateBase* const> states);

    /// The index of the next state to finish. @return nothing if the deadline passed first.
    std::optional<std::size_t> pop(Deadline deadline);

    /// Removes the callbacks still registered; call before the states may go away.
    void unwatch() noexcept;

    /// Use `watch`.
    explicit CompletionQueue(std::span<SharedStateBase* const> states);

private:
    class Notify;
    void push(std::size_t index) noexcept;

    std::vector<SharedStateBase*> states_;
    std::vector<DoneCallback*> callbacks_; // one per state; valid only while its state is pending

    std::mutex mutex_; // guards finished_ and waiter_
    std::deque<std::size_t> finished_;
    std::shared_ptr<Parker> waiter_; // the parker of the thread in pop(), if any
};

} // namespace futura::detail
