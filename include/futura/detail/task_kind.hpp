// Which kind of task `submit`, `map` and `then` build: tasks that run in this process only, or
// tasks that can also travel to a worker process (detail/travelling_task.hpp). The core names
// the choice; only the process transport defines the travelling kind.
#pragma once

#include <cstddef>

namespace futura::detail {

template <class R, class F, class... Args>
class Task;

template <class U, class T, class F>
class ContinuationTask;

/// The chunk budget of tasks that never leave the process: none, for `map` submits one call per
/// input whatever `MapOptions::chunksize` says, as Python's thread pool does (chunks save
/// messages, and these tasks send none).
struct NoChunks
{
    static constexpr bool chunks_map = false;
};

/// Tasks without a wire form: what every submission builds in a translation unit that does not
/// include the process transport (`<futura/process_pool_executor.hpp>`), and what
/// `ThreadPoolExecutor` and `InlineExecutor` always build.
struct LocalTasks
{
    template <class R, class F, class... Args>
    using task = Task<R, F, Args...>;
    template <class U, class T, class F>
    using continuation = ContinuationTask<U, T, F>;
    using chunk_budget = NoChunks;
};

/// The argument through which `tasks_for` finds, by argument-dependent lookup where the template
/// that asks is instantiated, the `task_kind` overloads declared so far: this one, and the
/// process transport's, which takes an `int` and so wins when it is visible.
template <class... F>
struct TaskProbe
{};

template <class Probe>
LocalTasks task_kind(Probe /*probe*/, ...);

/// The task kind a submission of `F` (or `async_submit` of `F...`) builds: `LocalTasks`, or the
/// process transport's `TravellingTasks` when its header has been included before the submission.
/// Part of the template arguments of `submit`, `map` and `then`, so that the two kinds of
/// instantiation are different functions (different symbols), never one function defined two ways.
template <class... F>
using tasks_for = decltype(task_kind(TaskProbe<F...>{}, 0));

} // namespace futura::detail
