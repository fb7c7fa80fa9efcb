// Where continuations run: the targets executors leave in their tasks' states, the shared
// continuation pool, and the per-thread trampoline that keeps long chains of continuations that
// run inline from growing the stack.
#pragma once

#include <futura/detail/shared_state.hpp>
#include <futura/detail/task.hpp>

#include <atomic>
#include <cstdint>
#include <exception>

namespace futura {
class Executor;
} // namespace futura

namespace futura::detail {

/// Takes the executor's reference to `task`, as `Executor::submit` does (the executor's private
/// seam). @throws what the executor's `schedule` throws; the task is then discarded.
void schedule_on(Executor& executor, TaskPtr task);

/// A weak, generation-checked way back to an executor, so that a task's state can say where its
/// continuations run without keeping the executor alive or counting references per task.
///
/// Targets are never freed: a retired one is recycled for the next executor with a higher
/// generation, so an `Origin` kept in a state that outlives its executor names a stale generation
/// and `try_schedule` refuses it.
class ContinuationTarget
{
public:
    /// A target for `executor`: a retired one recycled, or a new one.
    static ContinuationTarget& acquire(Executor& executor);

    ContinuationTarget(const ContinuationTarget&) = delete;
    ContinuationTarget& operator=(const ContinuationTarget&) = delete;

    /// The origin that names this target's current executor.
    [[nodiscard]] Origin origin() noexcept;

    /// Schedules `task` on the executor if `generation` is current and the executor accepts the
    /// task. @return false, leaving `task` with the caller, otherwise.
    bool try_schedule(std::uint64_t generation, TaskPtr& task) noexcept;

    /// The executor is going: origins of the current generation go stale, and this waits for
    /// calls of `try_schedule` already in it (and `enter`ed ones). Then recycles the target.
    void retire() noexcept;

    /// Counts the caller as inside the executor until `leave`: `retire` waits for it.
    void enter() noexcept { users_.fetch_add(1, std::memory_order_seq_cst); }
    void leave() noexcept { users_.fetch_sub(1, std::memory_order_release); }

private:
    ContinuationTarget() = default;
    ~ContinuationTarget() = default;

    Executor* executor_ = nullptr;             // the current generation's executor
    std::atomic<std::uint64_t> generation_{1}; // odd: in use; even: retired
    std::atomic<std::uint32_t> users_{0};      // try_schedule calls in progress
    ContinuationTarget* next_free_ = nullptr;  // guarded by the free list's mutex
};

/// An executor's own target, held for the executor's life: its tasks' `continue_on`.
class ContinuationHome
{
public:
    explicit ContinuationHome(Executor& executor);
    ContinuationHome(const ContinuationHome&) = delete;
    ContinuationHome& operator=(const ContinuationHome&) = delete;
    ~ContinuationHome() { retire(); }

    [[nodiscard]] Origin origin() const noexcept { return origin_; }

    /// Keeps `retire` (so the executor's destructor) waiting while a call that arrived unbeknown
    /// to the user, a continuation handed to the executor from another thread, is inside it.
    class Entry
    {
    public:
        explicit Entry(ContinuationTarget* target) noexcept : target_(target) { target_->enter(); }
        Entry(const Entry&) = delete;
        Entry& operator=(const Entry&) = delete;
        ~Entry() { target_->leave(); }

    private:
        ContinuationTarget* target_;
    };
    [[nodiscard]] Entry enter() const noexcept { return Entry(origin_.target); }

    /// Continuations no longer go to this executor; idempotent. Call it first in the executor's
    /// destructor, before anything of the executor is torn down.
    void retire() noexcept;

private:
    ContinuationTarget* target_;
    Origin origin_;
};

/// The origin of futura's shared continuation pool: a `ThreadPoolExecutor` (threads named
/// `futura_then_<n>`) started on first use, for continuations of futures that no executor of
/// this process runs (promises, process pools) and of executors that are gone.
[[nodiscard]] Origin continuation_pool_origin();

/// Schedules continuation `task`: on `chosen` if given (if it refuses, the task fails with its
/// exception), otherwise where `origin` says, falling back to the shared continuation pool when
/// that executor is gone or refuses, and to running inline when that pool is gone too (at exit).
/// The task must be a continuation (`continuation_discard` in its `discard`).
void dispatch_continuation(TaskPtr task, Executor* chosen, Origin origin) noexcept;

/// Whether the calling thread is inside `dispatch_continuation` (an executor's `schedule` may
/// treat a continuation differently from a submission).
[[nodiscard]] bool dispatching_continuation() noexcept;

/// For a continuation task's `discard(nullptr)`: true if the discard is an executor refusing the
/// task inside `dispatch_continuation`, which then keeps the task to schedule it elsewhere (the
/// `discard` must then do nothing).
bool continuation_refused(const TaskBase* task) noexcept;

/// Work that a completion starts and that may run inline: a continuation to dispatch, a result
/// to forward into a flattened future.
class Deferred
{
public:
    Deferred() = default;
    Deferred(const Deferred&) = delete;
    Deferred& operator=(const Deferred&) = delete;

    virtual void resume() noexcept = 0;

protected:
    virtual ~Deferred() = default;

private:
    friend class Trampoline;
    Deferred* next_deferred_ = nullptr;
};

/// Runs `item.resume()` now, or, if this thread is already deep in nested resumes (a chain of
/// continuations completing one another inline), queues it for the outermost resume of this
/// thread to run once the stack has unwound. A chain of any length thus runs in bounded stack,
/// and still before the call that completed its head returns.
void resume_soon(Deferred& item) noexcept;

/// Runs what `resume_soon` queued in this thread, for a thread about to block (the awaited state
/// may depend on it). @return whether it ran anything.
bool run_deferred_continuations() noexcept;

} // namespace futura::detail
