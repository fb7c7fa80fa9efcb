// detail::TaskCounts: how many of an executor's tasks run now and how each ended (the running,
// completed, failed and cancelled of ExecutorStats), with the counters that keep them.
#pragma once

#include <futura/detail/task.hpp>
#include <futura/executor.hpp>

#include <atomic>
#include <cstddef>

namespace futura::detail {

/// A count kept under its executor's mutex.
class LockedCount
{
public:
    void add(std::size_t n) noexcept { value_ += n; }
    void subtract(std::size_t n) noexcept { value_ -= n; }
    [[nodiscard]] std::size_t get() const noexcept { return value_; }

private:
    std::size_t value_ = 0;
};

/// A count that only one thread changes (a worker's own), read by any: a relaxed load and store,
/// so the task path pays for no locked instruction.
class OwnCount
{
public:
    void add(std::size_t n) noexcept
    {
        value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    void subtract(std::size_t n) noexcept
    {
        value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
    }
    [[nodiscard]] std::size_t get() const noexcept
    {
        return value_.load(std::memory_order_relaxed);
    }

private:
    std::atomic<std::size_t> value_{0};
};

/// A count that any thread may change without a lock. Relaxed: a statistic, ordering nothing.
class SharedCount
{
public:
    void add(std::size_t n) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
    void subtract(std::size_t n) noexcept { value_.fetch_sub(n, std::memory_order_relaxed); }
    [[nodiscard]] std::size_t get() const noexcept
    {
        return value_.load(std::memory_order_relaxed);
    }

private:
    std::atomic<std::size_t> value_{0};
};

/// How many of an executor's tasks run now, and how many ended each way. `Count` says who may
/// change them: `LockedCount` (under the executor's mutex), `OwnCount` (one thread: a worker's
/// own counts, summed by `stats()`) or `SharedCount` (any thread, no lock).
template <class Count>
class TaskCounts
{
public:
    /// A task starts running.
    void start() noexcept { running_.add(1); }

    /// A task that `start` counted ended so.
    void finish(TaskOutcome outcome) noexcept
    {
        running_.subtract(1);
        count(outcome);
    }

    /// `n` tasks ended so without running: cancelled before they started, failed because the
    /// executor broke or could not send them.
    void count(TaskOutcome outcome, std::size_t n = 1) noexcept
    {
        switch (outcome) {
        case TaskOutcome::completed:
            completed_.add(n);
            break;
        case TaskOutcome::failed:
            failed_.add(n);
            break;
        case TaskOutcome::cancelled:
            cancelled_.add(n);
            break;
        }
    }

    /// Adds these counts to the `running`, `completed`, `failed` and `cancelled` of `stats`
    /// (adds, for an executor that keeps counts in several places).
    void add_to(ExecutorStats& stats) const noexcept
    {
        stats.running += running_.get();
        stats.completed += completed_.get();
        stats.failed += failed_.get();
        stats.cancelled += cancelled_.get();
    }

private:
    Count running_;
    Count completed_;
    Count failed_;
    Count cancelled_;
};

} // namespace futura::detail
