// futura::current_worker: which worker runs the calling code (Python's
// `multiprocessing.current_process()` and `threading.current_thread()` for tasks).
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace futura {

/// A worker of an executor, as a task sees it: for logs and debugging.
struct WorkerInfo
{
    /// The how-manyth worker its executor started, from 0. A worker that replaces a crashed or
    /// retired one gets the next number, as Python's process names do.
    std::size_t index = 0;
    /// The process the worker runs in (`getpid()`): the parent's for a thread pool.
    int pid = 0;
    /// A thread pool's worker: its thread's name, `<thread_name_prefix>_<index>` in full (the
    /// kernel keeps only 15 characters of it). A process pool's: `futura-worker-<index>`.
    std::string name;
};

/// The worker running the calling code: the worker thread of a `ThreadPoolExecutor`, or the
/// worker process of a `ProcessPoolExecutor` (from any thread of that process). `std::nullopt`
/// outside any worker: in the program's own threads, and in tasks an `InlineExecutor` runs in
/// the caller's thread.
///
/// @par Example
/// @code
/// int whoami(int x) { return futura::current_worker()->pid; }
/// @endcode
[[nodiscard]] std::optional<WorkerInfo> current_worker();

namespace detail {
/// Makes `worker` the calling thread's worker until it is called again (null: none). The
/// object must outlive that.
void set_thread_worker(const WorkerInfo* worker) noexcept;
/// Makes `worker` the worker of every thread of this process that has no worker of its own.
void set_process_worker(WorkerInfo worker);
} // namespace detail

} // namespace futura
