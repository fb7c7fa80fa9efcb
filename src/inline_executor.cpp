// The compiled part of InlineExecutor: runs each task in the thread that submits it.
#include <futura/inline_executor.hpp>

namespace futura {

InlineExecutor::~InlineExecutor() { home_.retire(); }

void InlineExecutor::schedule(detail::TaskPtr task)
{
    // The task may complete a future whose waiter then destroys this executor while we are
    // still counting here: the destructor (home_.retire()) waits for us to be out.
    const auto entry = home_.enter();
    if (shut_down_.load(std::memory_order_acquire)) {
        throw ShutdownError();
    }
    task->continue_on = home_.origin();
    submitted_.add(1);
    counts_.start();
    counts_.finish(task.run());
}

void InlineExecutor::do_shutdown(const ShutdownOptions& /*options*/)
{
    // Nothing is ever pending or running on another thread: only refuse further work.
    shut_down_.store(true, std::memory_order_release);
}

std::size_t InlineExecutor::do_max_workers() const noexcept { return 1; }

ExecutorStats InlineExecutor::do_stats() const
{
    ExecutorStats stats;
    stats.submitted = submitted_.get();
    counts_.add_to(stats);
    stats.workers_alive = 1;
    return stats;
}

} // namespace futura
