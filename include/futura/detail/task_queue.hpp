// detail::TaskQueue: the queue an executor's pending tasks wait in.
#pragma once

#include <futura/detail/task.hpp>

#include <boost/intrusive/list.hpp>

#include <atomic>
#include <exception>

namespace futura::detail {

/// Tasks linked through `TaskBase`'s own hook, so queueing allocates nothing. A list, not an
/// slist: a thread pool's worker that waits for a queued task takes it from the middle.
using TaskQueue = boost::intrusive::list<TaskBase, boost::intrusive::constant_time_size<true>>;

/// Completes each task of `tasks` without running it: with `reason` as its exception, or
/// cancelled if `reason` is null. Call it without the executor's lock: completing a future runs
/// its callbacks.
inline void discard_all(TaskQueue tasks, const std::exception_ptr& reason) noexcept
{
    tasks.clear_and_dispose([&](TaskBase* task) { task->discard(reason); });
}

/// Takes every task out of `queue` (under the executor's lock), counting them in `counts` (a
/// `TaskCounts`) as ending `outcome` without running; `discard_all` them once the lock is let go.
template <class Counts>
[[nodiscard]] TaskQueue take_all(TaskQueue& queue, Counts& counts, TaskOutcome outcome) noexcept
{
    TaskQueue taken;
    taken.swap(queue);
    for (auto& task : taken) {
        task.queued_in.store(nullptr, std::memory_order_relaxed); // queued nowhere now
    }
    counts.count(outcome, taken.size());
    return taken;
}

} // namespace futura::detail
