// Continuation targets, the shared continuation pool, and the trampoline.
#include <futura/detail/continuation.hpp>
#include <futura/executor.hpp>
#include <futura/thread_pool_executor.hpp>

#include <mutex>
#include <thread>
#include <utility>

namespace futura::detail {

void schedule_on(Executor& executor, TaskPtr task) { executor.schedule(std::move(task)); }

// ---------------------------------------------------------------------------------------------
// Targets

namespace {

std::mutex free_targets_mutex;              // guards free_targets
ContinuationTarget* free_targets = nullptr; // retired targets, linked by next_free_

// The continuation task that dispatch_continuation is handing to an executor in this thread:
// if the executor refuses it, its TaskPtr discards it in this thread before the exception
// reaches us, and the task's discard asks continuation_refused whether to keep still.
thread_local const TaskBase* handing_over = nullptr;
thread_local bool refused = false;
thread_local int dispatching = 0; // nesting depth of dispatch_continuation in this thread

/// Schedules `task` on `executor`. @return the executor's exception if it refused the task, which
/// is then back in `task`; null if the executor took it (or discarded it itself).
std::exception_ptr hand_over(Executor& executor, TaskPtr& task) noexcept
{
    // Saved and restored: the executor may run the task inline, and it may dispatch others.
    const TaskBase* const outer = std::exchange(handing_over, task.get());
    const bool outer_refused = std::exchange(refused, false);
    TaskBase* raw = task.release();
    std::exception_ptr error;
    try {
        schedule_on(executor, TaskPtr(raw));
    } catch (...) {
        if (refused) {
            task = TaskPtr(raw); // refused before it was taken: ours again
            error = std::current_exception();
        }
    }
    handing_over = outer;
    refused = outer_refused;
    return error;
}

} // namespace

ContinuationTarget& ContinuationTarget::acquire(Executor& executor)
{
    ContinuationTarget* target = nullptr;
    {
        const std::lock_guard lock(free_targets_mutex);
        if (free_targets != nullptr) {
            target = std::exchange(free_targets, free_targets->next_free_);
        }
    }
    if (target == nullptr) {
        target = new ContinuationTarget(); // never freed: a stale Origin may point here forever
    } else {
        target->generation_.fetch_add(1, std::memory_order_relaxed); // even -> odd: in use
    }
    target->executor_ = &executor;
    return *target;
}

Origin ContinuationTarget::origin() noexcept
{
    return {this, generation_.load(std::memory_order_relaxed)};
}

bool ContinuationTarget::try_schedule(std::uint64_t generation, TaskPtr& task) noexcept
{
    // Announce ourselves before checking the generation; retire() bumps the generation before
    // counting users. With both sequentially consistent, either we see the bump, or retire()
    // sees us and waits until we are out: the executor cannot be destroyed under us.
    users_.fetch_add(1, std::memory_order_seq_cst);
    bool scheduled = false;
    if (generation_.load(std::memory_order_seq_cst) == generation) {
        scheduled = hand_over(*executor_, task) == nullptr;
    }
    users_.fetch_sub(1, std::memory_order_release);
    return scheduled;
}

void ContinuationTarget::retire() noexcept
{
    generation_.fetch_add(1, std::memory_order_seq_cst); // odd -> even: stale from now on
    while (users_.load(std::memory_order_acquire) != 0) {
        std::this_thread::yield(); // a try_schedule is inside the executor's schedule: short
    }
    executor_ = nullptr;
    const std::lock_guard lock(free_targets_mutex);
    next_free_ = std::exchange(free_targets, this);
}

ContinuationHome::ContinuationHome(Executor& executor)
    : target_(&ContinuationTarget::acquire(executor)), origin_(target_->origin())
{}

void ContinuationHome::retire() noexcept
{
    if (target_ != nullptr) {
        std::exchange(target_, nullptr)->retire();
    }
}

thread_local constinit bool publishing_own_result = false;

bool continuation_refused(const TaskBase* task) noexcept
{
    if (task != nullptr && task == handing_over) {
        refused = true;
        return true;
    }
    return false;
}

// ---------------------------------------------------------------------------------------------
// The shared continuation pool

namespace {

struct SharedContinuationPool
{
    ThreadPoolExecutor pool{{.thread_name_prefix = "futura_then"}};
    // Declared after the pool: retired first at exit, so that nothing is handed to the pool
    // while its destructor drains it.
    ContinuationHome home{pool};
};

} // namespace

Origin continuation_pool_origin()
{
    // The pool is built on first use and destroyed at exit; the origin, a plain value, stays
    // readable after that, and is stale then, so late continuations run inline instead.
    static const Origin origin = [] {
        static SharedContinuationPool shared;
        return shared.home.origin();
    }();
    return origin;
}

namespace {

void dispatch_to(TaskPtr task, Executor* chosen, Origin origin) noexcept
{
    if (chosen != nullptr) {
        if (auto error = hand_over(*chosen, task)) {
            // The executor the user chose refuses work (shut down, broken): the continuation
            // fails with its reason, as a submit there would have.
            task.discard(std::move(error));
        }
        return;
    }
    if (origin.target != nullptr && origin.target->try_schedule(origin.generation, task)) {
        return;
    }
    const Origin fallback = continuation_pool_origin();
    if (fallback.target->try_schedule(fallback.generation, task)) {
        return;
    }
    task.run(); // at exit, after the shared pool is gone: run it here
}

} // namespace

bool dispatching_continuation() noexcept { return dispatching != 0; }

void dispatch_continuation(TaskPtr task, Executor* chosen, Origin origin) noexcept
{
    ++dispatching;
    dispatch_to(std::move(task), chosen, origin);
    --dispatching;
}

// ---------------------------------------------------------------------------------------------
// The trampoline

namespace {

// How many resumes may nest in one thread before further ones are queued. Each level is a few
// frames (a completion, its callbacks, a continuation's call); this keeps it well under 100 KiB.
constexpr int max_nesting = 16;

} // namespace

class Trampoline
{
public:
    static void resume_soon(Deferred& item) noexcept
    {
        if (depth_ >= max_nesting) {
            item.next_deferred_ = nullptr;
            (tail_ != nullptr ? tail_->next_deferred_ : head_) = &item;
            tail_ = &item;
            return;
        }
        ++depth_;
        item.resume();
        if (depth_ == 1) {
            run_queued(); // the outermost resume: run what deeper ones queued
        }
        --depth_;
    }

    static bool run_queued() noexcept
    {
        bool ran = false;
        while (head_ != nullptr) {
            Deferred* item = head_;
            head_ = item->next_deferred_;
            if (head_ == nullptr) {
                tail_ = nullptr;
            }
            ran = true;
            // Nested resumes count from here again: the queue is run in a shallow frame.
            const int saved = std::exchange(depth_, 1);
            item->resume();
            depth_ = saved;
        }
        return ran;
    }

private:
    static thread_local int depth_;
    static thread_local Deferred* head_;
    static thread_local Deferred* tail_;
};

thread_local int Trampoline::depth_ = 0;
thread_local Deferred* Trampoline::head_ = nullptr;
thread_local Deferred* Trampoline::tail_ = nullptr;

void resume_soon(Deferred& item) noexcept { Trampoline::resume_soon(item); }

bool run_deferred_continuations() noexcept { return Trampoline::run_queued(); }

} // namespace futura::detail
