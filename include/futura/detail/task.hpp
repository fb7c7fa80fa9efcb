// A submitted call and its future's state in one allocation, queued through an intrusive hook.
#pragma once

#include <futura/detail/call_key.hpp>
#include <futura/detail/remote_call.hpp>
#include <futura/detail/shared_state.hpp>
#include <futura/detail/wire.hpp>

#include <boost/intrusive/list_hook.hpp>
#include <boost/smart_ptr/intrusive_ptr.hpp>

#include <atomic>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace futura::detail {

/// How a task's run ended, for the executor's counters.
enum class TaskOutcome
{
    succeeded,
    failed,
    cancelled
};

/// Stops a running task for good (terminal cancellation), for executors that can: a process
/// pool kills the worker running it. Reference-counted, so that a task may outlive its pool
/// (the pool detaches it when it goes) without a dangling pointer.
class TaskTerminator
{
public:
    TaskTerminator() = default;
    TaskTerminator(const TaskTerminator&) = delete;
    TaskTerminator& operator=(const TaskTerminator&) = delete;

    /// Cancels `state` if pending, stops it if running. @return false if it was done already.
    virtual bool terminate(SharedStateBase* state) = 0;

    friend void intrusive_ptr_add_ref(TaskTerminator* terminator) noexcept
    {
        terminator->references_.fetch_add(1, std::memory_order_relaxed);
    }
    friend void intrusive_ptr_release(TaskTerminator* terminator) noexcept
    {
        if (terminator->references_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            delete terminator;
        }
    }

protected:
    virtual ~TaskTerminator() = default;

private:
    std::atomic<std::size_t> references_{0};
};

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
    /// Set by an executor that can stop the task while it runs; written before the task is
    /// shared with other threads (in `schedule`), constant after.
    boost::intrusive_ptr<TaskTerminator>
        terminator; // NOLINT(misc-non-private-member-variables-in-classes)
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

    // For executors that run calls in other processes: start, encode, then complete from the
    // worker's answer (or discard).

    /// pending -> running. @return false if the future was cancelled (then `discard` it).
    virtual bool start() noexcept = 0;

    /// Appends the call's wire form. @return false, appending nothing, if it cannot travel.
    virtual bool encode_call(WireWriter& out) const = 0;

    /// Says why the call cannot travel to another process, naming its types.
    [[nodiscard]] virtual std::string not_transferable_message() const = 0;

    /// Completes the future with the value a worker encoded and drops the executor's reference.
    virtual void complete_from(WireReader& result) noexcept = 0;

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

/// The message for a call whose callable `f`, arguments `args` or result `r` cannot travel.
std::string not_transferable_message(const std::type_info& f,
                                     std::initializer_list<const std::type_info*> args,
                                     const std::type_info& r);

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

/// What identifies the code `f` runs, for duration estimates: a function's address, else the
/// callable's type; a wrapper (map's chunks, starmap's tuples) is identified by what it wraps.
template <class F>
CallKey call_key_of(const F& f) noexcept
{
    if constexpr (callable_wrapper<F>) {
        return call_key_of(f.f);
    } else if constexpr (function_pointer<F>) {
        return reinterpret_cast<CallKey>(f); // NOLINT: an identity, never called through
    } else {
        (void)f;
        return reinterpret_cast<CallKey>(&typeid(F)); // NOLINT: an identity
    }
}

/// What `f(args...)` yields when the executor calls it with its stored (decayed) copies.
template <class F, class... Args>
using call_result_t = std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>;

/// The state of a `Future<R>` together with the call that produces it.
template <class R, class F, class... Args>
class Task final : public SharedState<R>, public TaskBase
{
public:
    template <class G, class... A>
    explicit Task(G&& f, A&&... args)
        : call_(std::in_place, std::forward<G>(f), std::forward<A>(args)...)
    {
        this->add_ref(); // the executor's reference; the future holds the first
    }

    TaskOutcome run() noexcept override
    {
        const TaskOutcome outcome = run_call();
        destroy_call();
        this->release();
        return outcome;
    }

    void discard(std::exception_ptr reason) noexcept override
    {
        if (reason) {
            this->try_set_exception(std::move(reason));
        } else {
            this->cancel();
        }
        destroy_call();
        this->release();
    }

    bool start() noexcept override { return this->try_start(); }

    [[nodiscard]] Origin continuation_origin() const noexcept override { return continue_on; }

    bool encode_call(WireWriter& out) const override
    {
        if constexpr (transferable_call<R, F, Args...>) {
            std::apply([&](const F& f, const Args&... args) { Remote::encode(out, f, args...); },
                       *call_);
            return true;
        } else {
            (void)out;
            return false;
        }
    }

    [[nodiscard]] std::string not_transferable_message() const override
    {
        return detail::not_transferable_message(typeid(F), {&typeid(Args)...}, typeid(R));
    }

    void complete_from(WireReader& result) noexcept override
    {
        destroy_call();
        if (!this->try_claim()) {
            // Cancelled while its worker ran it (ProcessPoolExecutor::kill): drop the answer.
        } else if constexpr (transferable_value<R>) {
            if constexpr (std::is_void_v<R>) {
                this->publish();
            } else {
                try {
                    this->emplace_and_publish(Codec<R>::decode(result));
                } catch (...) {
                    this->publish_exception(std::current_exception());
                }
            }
        } else {
            (void)result;
            this->publish_exception(std::make_exception_ptr(
                InvalidStateError("futura: a result that cannot travel came from a worker")));
        }
        this->release();
    }

private:
    template <class... Ts>
    struct RemoteFor
    {
        using type = void;
    };
    template <class... Ts>
    requires transferable_call<R, F, Ts...>
    struct RemoteFor<Ts...>
    {
        using type = RemoteCall<R, F, Ts...>;
    };
    using Remote = typename RemoteFor<std::decay_t<Args>...>::type;

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
        return this->stored_exception() ? TaskOutcome::failed : TaskOutcome::succeeded;
    }

    // The callable and its arguments die as soon as the call is over, not when the last future
    // copy does: a future kept for its result must not keep the captured resources alive.
    void destroy_call() noexcept { call_.reset(); }

    std::optional<std::tuple<std::decay_t<F>, std::decay_t<Args>...>> call_;
};

} // namespace futura::detail
