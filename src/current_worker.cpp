// Which worker runs the calling code: a thread pool's thread records itself per thread; a worker
// process records itself once for all its threads (a task's own threads included).
#include <futura/current_worker.hpp>

#include <optional>
#include <utility>

namespace futura {

namespace {

thread_local const WorkerInfo* thread_worker = nullptr;

// Written once, by the worker loop before it runs any task; read by tasks afterwards (the frame
// that carries the first call orders the two).
std::optional<WorkerInfo> process_worker;

} // namespace

std::optional<WorkerInfo> current_worker()
{
    if (thread_worker != nullptr) {
        return *thread_worker;
    }
    return process_worker;
}

namespace detail {

void set_thread_worker(const WorkerInfo* worker) noexcept { thread_worker = worker; }

void set_process_worker(WorkerInfo worker) { process_worker = std::move(worker); }

} // namespace detail

} // namespace futura
