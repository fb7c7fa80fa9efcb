// A submitted call and its future's state in one allocation, queued through an intrusive hook.
#pragma once

#include <futura/detail/call_key.hpp>
#include <futura/detail/shared_state.hpp>
#include <futura/detail/task_kind.hpp>

#include <boost/intrusive/list_hook.hpp>

#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace futura::detail {

/// How a task's run ended, for the executors' counters (`ExecutorStats`).
enum class TaskOutcome
{
    completed,
    failed,
    cancelled
};

class RemoteTask;

/// A type-erased unit of work as executors see it. An executor owns one reference to the task's
/// state from `schedule` until it calls exactly one of `run` or `discard`.
class TaskBase : public boost::intrusive::list_base_hook<>
{
public:
    /// The executor whose queue holds the task, if any; written only under that queue's lock,
    /// read under another pool's lock by a worker looking for the task it waits for (atomic for
    /// that: the owner compares it only with itself).
    std::atomic<const void*> queued_in{
        nullptr}; // NOLINT(misc-non-private-member-variables-in-classes)
    /// What the call runs, for executors that learn durations per callable; set by `submit`.
    CallKey call_key = 0; // NOLINT(misc-non-private-member-variables-in-classes)
    /// How many inputs the call handles (a map chunk's size); set by `map`.
    std::size_t call_elements = 1; // NOLINT(misc-non-private-member-variables-in-classes)
    /// Where continuations of the task run by default: set by an executor that runs them itself
    /// (thread pools, `InlineExecutor`) in `schedule`, before the task is shared; constant after.
    Origin continue_on; // NOLINT(misc-non-private-member-variables-in-classes)

    TaskBase() = default;
    TaskBase(const TaskBase&) = delete;
    TaskBase& operator=(const TaskBase&) = delete;

    /// Runs the call unless the future was cancelled, completes the future, drops the executor's
    /// reference. Never throws: the call's exception becomes the future's.
    virtual TaskOutcome run() noexcept = 0;

    /// Completes the future without running the call: with `reason` as its exception, or
    /// cancelled if `reason` is null. Drops the executor's reference.
    virtual void discard(std::exception_ptr reason) noexcept = 0;

    /// The task's hooks for executors that run calls in other processes, if it has them: a task
    /// built where the process transport was included (see detail/task_kind.hpp). Null here.
    [[nodiscard]] virtual RemoteTask* remote() noexcept { return nullptr; }

protected:
    ~TaskBase() = default;
};

/// True in a thread while the task it runs publishes its own result, at the very end of its
/// run: a continuation that this publication dispatches to the thread's own pool may then wait
/// for this thread, which is about to be free, instead of waking another (see
/// ThreadPoolExecutor). False in the task's body, where the thread stays busy.
extern thread_local constinit bool publishing_own_result;

/// Sets `publishing_own_result` for its scope (restoring it: a helping wait nests tasks).
class PublishingOwnResult
{
public:
    PublishingOwnResult() noexcept : outer_(std::exchange(publishing_own_result, true)) {}
    PublishingOwnResult(const PublishingOwnResult&) = delete;
    PublishingOwnResult& operator=(const PublishingOwnResult&) = delete;
    ~PublishingOwnResult() { publishing_own_result = outer_; }

private:
    bool outer_;
};

/// Terminal cancellation (what Asio's `cancellation_type::terminal` asks for): stops the task
/// behind `state` even if it runs, where its executor can (a process pool kills its worker);
/// elsewhere, as `cancel()`. @return whether the state is (now) cancelled or being stopped.
bool terminate(SharedStateBase* state);

/// Unique ownership of the executor's reference to a task: discards it (as cancelled) if dropped.
class TaskPtr
{
public:
    TaskPtr() noexcept = default;
    explicit TaskPtr(TaskBase* task) noexcept : task_(task) {}
    TaskPtr(TaskPtr&& other) noexcept : task_(std::exchange(other.task_, nullptr)) {}
    TaskPtr& operator=(TaskPtr&& other) noexcept
    {
        reset();
        task_ = std::exchange(other.task_, nullptr);
        return *this;
    }
    ~TaskPtr() { reset(); }

    [[nodiscard]] TaskBase* release() noexcept { return std::exchange(task_, nullptr); }
    [[nodiscard]] TaskBase* get() const noexcept { return task_; }
    TaskBase* operator->() const noexcept { return task_; }
    explicit operator bool() const noexcept { return task_ != nullptr; }

    TaskOutcome run() noexcept { return release()->run(); }
    void discard(std::exception_ptr reason) noexcept { release()->discard(std::move(reason)); }

private:
    void reset() noexcept
    {
        if (task_ != nullptr) {
            std::exchange(task_, nullptr)->discard(nullptr);
        }
    }

    TaskBase* task_ = nullptr;
};

/// What `f(args...)` yields when the executor calls it with its stored (decayed) copies.
template <class F, class... Args>
using call_result_t = std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>;

/// The state of a `Future<R>` together with the call that produces it, run in this process.
/// `TravellingTask` (detail/travelling_task.hpp) adds the hooks to run it in another one.
template <class R, class F, class... Args>
class Task : public SharedState<R>, public TaskBase
{
public:
    template <class G, class... A>
    explicit Task(G&& f, A&&... args)
        : call_(std::in_place, std::forward<G>(f), std::forward<A>(args)...)
    {
        this->add_producer_ref(); // the executor's reference; the future holds the first
    }

    TaskOutcome run() noexcept override
    {
        const TaskOutcome outcome = run_call();
        destroy_call();
        this->release_producer_ref();
        return outcome;
    }

    void discard(std::exception_ptr reason) noexcept override
    {
        settle_discarded(std::move(reason));
        destroy_call();
        this->release_producer_ref();
    }

    [[nodiscard]] Origin continuation_origin() const noexcept override { return continue_on; }

protected:
    // The callable and its arguments die as soon as the call is over, not when the last future
    // copy does: a future kept for its result must not keep the captured resources alive.
    void destroy_call() noexcept { call_.reset(); }

    /// What `discard` makes of the future: failed with `reason`, or cancelled without one.
    void settle_discarded(std::exception_ptr reason) noexcept
    {
        if (reason) {
            this->try_set_exception(std::move(reason));
        } else {
            this->cancel();
        }
    }

    [[nodiscard]] const auto& call() const noexcept { return *call_; }

private:
    TaskOutcome run_call() noexcept
    {
        if (!this->try_start()) {
            return TaskOutcome::cancelled;
        }
        try {
            if constexpr (std::is_void_v<R>) {
                std::apply(
                    [](auto& f, auto&... args) { std::invoke(std::move(f), std::move(args)...); },
                    *call_);
                const PublishingOwnResult publishing;
                this->try_claim();
                this->publish();
            } else {
                // Claim only after the call returns: until then cancel() must still see `running`.
                auto&& value = std::apply(
                    [](auto& f, auto&... args) -> decltype(auto) {
                        return std::invoke(std::move(f), std::move(args)...);
                    },
                    *call_);
                const PublishingOwnResult publishing;
                this->try_claim();
                this->emplace_and_publish(std::forward<decltype(value)>(value));
            }
        } catch (...) {
            const PublishingOwnResult publishing;
            this->try_claim();
            this->publish_exception(std::current_exception());
            return TaskOutcome::failed;
        }
        return this->stored_exception() ? TaskOutcome::failed : TaskOutcome::completed;
    }

    std::optional<std::tuple<std::decay_t<F>, std::decay_t<Args>...>> call_;
};

} // namespace futura::detail
