// futura::InlineExecutor: runs each call at once, in the submitting thread.
#pragma once

#include <futura/detail/continuation.hpp>
#include <futura/detail/task_counts.hpp>
#include <futura/executor.hpp>

#include <atomic>

namespace futura {

/// Runs each submitted call immediately in the calling thread, behind the `Executor`
/// interface (joblib's `n_jobs=1`): the future `submit` returns is already done.
///
/// For debugging (a debugger's stack shows the submitter and the task together) and for
/// deterministic tests of code written against `Executor&`.
///
/// @par Thread safety
/// Distinct objects: safe. Shared objects: safe.
class InlineExecutor final : public Executor
{
public:
    InlineExecutor() = default;
    ~InlineExecutor() override;

    InlineExecutor(const InlineExecutor&) = delete;
    InlineExecutor& operator=(const InlineExecutor&) = delete;
    InlineExecutor(InlineExecutor&&) = delete;
    InlineExecutor& operator=(InlineExecutor&&) = delete;

private:
    void schedule(detail::TaskPtr task) override;
    void do_shutdown(const ShutdownOptions& options) override;
    [[nodiscard]] std::size_t do_max_workers() const noexcept override;
    [[nodiscard]] ExecutorStats do_stats() const override;

    // No mutex: nothing waits in a queue here, so a shutdown need not see a task either
    // refused or queued (the other executors' detail::Admission), only refuse later ones.
    std::atomic<bool> shut_down_{false};
    detail::SharedCount submitted_;
    detail::TaskCounts<detail::SharedCount> counts_;
    // Continuations of futures of this executor run inline too, by default, while it lives.
    detail::ContinuationHome home_{*this};
};

} // namespace futura
