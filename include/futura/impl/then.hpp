// Future<T>::then and co_await: continuation tasks. Included at the end of <futura/future.hpp>.
#pragma once

#include <futura/detail/continuation.hpp>
#include <futura/detail/task.hpp>
#include <futura/detail/task_kind.hpp>
#include <futura/future.hpp>

#include <coroutine>
#include <exception>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

namespace futura::detail {

/// What a continuation `F` of a `Future<T>` is called with.
enum class ContinuationInput
{
    value,
    nothing,
    future
};

template <class F, class T>
inline constexpr ContinuationInput continuation_input =
    continuation_takes_value<F, T>     ? ContinuationInput::value
    : continuation_takes_nothing<F, T> ? ContinuationInput::nothing
                                       : ContinuationInput::future;

template <class F, class T, ContinuationInput = continuation_input<F, T>>
struct ContinuationCall
{
    using type = std::invoke_result_t<F, T>;
};
template <class F, class T>
struct ContinuationCall<F, T, ContinuationInput::nothing>
{
    using type = std::invoke_result_t<F>;
};
template <class F, class T>
struct ContinuationCall<F, T, ContinuationInput::future>
{
    using type = std::invoke_result_t<F, Future<T>>;
};

/// What the continuation returns, as it returns it.
template <class F, class T>
using continuation_call_t = typename ContinuationCall<F, T>::type;

template <class R>
struct Flattened
{
    using type = std::remove_cvref_t<R>;
    static constexpr bool flattens = false;
};
template <class V>
struct Flattened<Future<V>>
{
    using type = V;
    static constexpr bool flattens = true;
};

/// The value type of the future `then` returns: a returned `Future<V>` is flattened to `V`.
template <class F, class T>
using then_result_t = typename Flattened<std::remove_cvref_t<continuation_call_t<F, T>>>::type;

/// The value of a done state, moved out if `state` is its only handle (or `T` cannot be copied),
/// copied otherwise: other handles may still read it.
template <class T>
T take_value(SharedState<T>& state)
{
    if constexpr (copyable_value<T>) {
        if (!state.unique()) {
            return state.value();
        }
    }
    return std::move(state.value());
}

/// Completes `target`, which is running, with the result of `source`, which is done.
template <class U>
void complete_running_from(SharedState<U>& target, SharedState<U>& source) noexcept
{
    if (source.phase() == SharedStateBase::Phase::cancelled) {
        target.cancel_running();
        return;
    }
    if (!target.try_claim()) {
        return; // stopped meanwhile (a process pool's kill)
    }
    if (source.stored_exception()) {
        target.publish_exception(source.stored_exception());
    } else if constexpr (std::is_void_v<U>) {
        target.publish();
    } else {
        try {
            target.emplace_and_publish(take_value(source));
        } catch (...) {
            target.publish_exception(std::current_exception());
        }
    }
}

/// Completes a flattened continuation's state (running) once the future its call returned is
/// done. Through the trampoline: a recursion of futures returning futures may be long.
template <class U, class Target>
class Forward final : public DoneCallback, public Deferred
{
public:
    /// Adopts one reference to `target`.
    explicit Forward(Target* target) noexcept : target_(target) {}

    void on_done(SharedStateBase& /*source*/) noexcept override {}

    void fire(SharedStateBase& source) noexcept override
    {
        source.add_ref(); // the trampoline may run us after the source's completion returned
        source_ = StateRef<U>(&static_cast<SharedState<U>&>(source));
        resume_soon(*this);
    }

    void resume() noexcept override
    {
        // The result came from the inner future: its continuations go where the inner's would.
        target_->adopt_origin(source_->continuation_origin());
        complete_running_from(*target_, *source_.get());
        target_->release();
        delete this;
    }

private:
    ~Forward() override = default;

    Target* target_;
    StateRef<U> source_;
};

/// Makes `target` (running) finish with `inner`, now or once it is done.
template <class U, class Target>
void forward_into(Target& target, const Future<U>& inner) noexcept
{
    SharedState<U>* source = state_of(inner);
    if (source == nullptr) {
        if (target.try_claim()) {
            target.publish_exception(std::make_exception_ptr(InvalidStateError(
                "futura::Future::then: the continuation returned a future with no state")));
        }
        return;
    }
    target.add_ref();
    source->add_callback(new Forward<U, Target>(&target));
}

/// The state of the future `then` returns, together with the continuation: one allocation per
/// `then`. It is, in turn, the callback on the antecedent, the item the trampoline resumes to
/// dispatch the continuation, and the task an executor runs.
///
/// References: the returned future's; the antecedent's callback list's (handed to `resume`,
/// then to the executor); the executor's while scheduled. The reference to the antecedent is
/// dropped by whoever ends this state: `run` (it took this state out of pending), the thread
/// that cancelled it (`on_cancel`), or the one that failed it for the antecedent.
template <class U, class T, class F>
class ContinuationTask : public SharedState<U>,
                         public TaskBase,
                         public DoneCallback,
                         public Deferred
{
public:
    using Call = continuation_call_t<F, T>;
    static constexpr ContinuationInput input = continuation_input<F, T>;
    static constexpr bool flattens = Flattened<std::remove_cvref_t<Call>>::flattens;

    template <class G>
    ContinuationTask(G&& continuation, StateRef<T> antecedent, ThenOptions options)
        : call_(std::in_place, std::forward<G>(continuation)), antecedent_(std::move(antecedent)),
          executor_(options.executor), cancel_antecedent_(options.cancel_antecedent),
          propagate_cancel_(*this)
    {}

    // ----- on the antecedent: it is done ----------------------------------------------------

    void on_done(SharedStateBase& /*antecedent*/) noexcept override {}

    /// In the thread that completed the antecedent (or called `then` on a done one), which keeps
    /// it alive for this call only: decide here, act in `resume`.
    void fire(SharedStateBase& antecedent) noexcept override
    {
        if (this->done()) {
            next_ = Next::release; // cancelled: on_cancel saw to the antecedent
        } else if (input != ContinuationInput::future &&
                   antecedent.phase() == SharedStateBase::Phase::cancelled) {
            next_ = Next::cancel;
        } else if (input != ContinuationInput::future && antecedent.stored_exception()) {
            next_ = Next::fail;
            error_ = antecedent.stored_exception();
        } else {
            next_ = Next::dispatch;
            origin_ = antecedent.continuation_origin();
        }
        resume_soon(static_cast<Deferred&>(*this)); // takes over the callback's reference
    }

    /// Removed from the antecedent's callbacks (this state was cancelled first).
    void dispose() noexcept override { this->release(); }

    void resume() noexcept override
    {
        switch (next_) {
        case Next::release:
            break;
        case Next::cancel:
            this->cancel(); // on_cancel drops the antecedent
            break;
        case Next::fail:
            if (this->try_claim()) {
                antecedent_ = {};
                call_.reset();
                this->publish_exception(std::move(error_));
            }
            break;
        case Next::dispatch:
            // The callback's reference becomes the executor's.
            dispatch_continuation(TaskPtr(this), executor_, origin_);
            return;
        }
        this->release();
    }

    // ----- as a task ------------------------------------------------------------------------

    TaskOutcome run() noexcept override
    {
        if (!this->try_start()) {
            this->release(); // cancelled while queued
            return TaskOutcome::cancelled;
        }
        TaskOutcome outcome = TaskOutcome::completed;
        try {
            if constexpr (flattens) {
                auto inner = invoke();
                call_.reset();
                forward_into(*this, inner);
            } else if constexpr (std::is_void_v<U>) {
                invoke();
                call_.reset();
                const PublishingOwnResult publishing;
                this->try_claim();
                this->publish();
            } else {
                auto&& value = invoke();
                call_.reset();
                const PublishingOwnResult publishing;
                this->try_claim();
                this->emplace_and_publish(std::forward<decltype(value)>(value));
            }
        } catch (...) {
            antecedent_ = {};
            call_.reset();
            const PublishingOwnResult publishing;
            if (this->try_claim()) {
                this->publish_exception(std::current_exception());
            }
            outcome = TaskOutcome::failed;
        }
        this->release();
        return outcome;
    }

    void discard(std::exception_ptr reason) noexcept override
    {
        if (!reason && continuation_refused(this)) {
            return; // an executor refused it in dispatch_continuation, which keeps it
        }
        if (!reason) {
            this->cancel(); // on_cancel drops the antecedent
        } else if (this->try_claim()) {
            antecedent_ = {};
            call_.reset();
            this->publish_exception(std::move(reason));
        }
        this->release();
    }

    [[nodiscard]] Origin continuation_origin() const noexcept override
    {
        return flattens ? inner_origin_ : continue_on;
    }

    /// For a flattened result: where the inner future's continuations would go. Before the
    /// result is published; read once it is done.
    void adopt_origin(Origin origin) noexcept { inner_origin_ = origin; }

protected:
    // For `TravellingContinuation`, which sends the call to a worker process instead of running
    // it here.
    [[nodiscard]] const F& callable() const noexcept { return *call_; }
    [[nodiscard]] SharedState<T>& antecedent() const noexcept { return *antecedent_.get(); }
    void drop_call() noexcept
    {
        antecedent_ = {};
        call_.reset();
    }

    void on_cancel() noexcept override
    {
        // Cancelling the antecedent may cancel its own antecedent, and so on up a chain: through
        // the trampoline, so that a long chain does not recurse.
        this->add_ref();
        resume_soon(propagate_cancel_);
    }

private:
    enum class Next
    {
        release,
        cancel,
        fail,
        dispatch
    };

    class PropagateCancel final : public Deferred
    {
    public:
        explicit PropagateCancel(ContinuationTask& owner) noexcept : owner_(owner) {}
        void resume() noexcept override { owner_.propagate_cancel(); }

    private:
        ContinuationTask& owner_;
    };

    void propagate_cancel() noexcept
    {
        if (auto antecedent = std::move(antecedent_)) {
            antecedent->remove_callback(this); // if still there: dispose drops its reference
            if (cancel_antecedent_) {
                antecedent->cancel();
            }
        }
        this->release(); // on_cancel's
    }

    /// Calls the continuation; this state is running, so the antecedent is ours to drop.
    Call invoke()
    {
        auto antecedent = std::move(antecedent_);
        if constexpr (input == ContinuationInput::value) {
            return std::invoke(std::move(*call_), take_value(*antecedent.get()));
        } else if constexpr (input == ContinuationInput::nothing) {
            antecedent = {};
            return std::invoke(std::move(*call_));
        } else {
            return std::invoke(std::move(*call_), make_future(std::move(antecedent)));
        }
    }

    std::optional<F> call_;
    StateRef<T> antecedent_;
    Executor* executor_;
    bool cancel_antecedent_;
    PropagateCancel propagate_cancel_;
    // Written by fire, read by resume, in the same thread.
    Next next_ = Next::release;
    std::exception_ptr error_;
    Origin origin_;
    Origin inner_origin_;
};

/// What `co_await future` awaits: resumes the coroutine through a `then` continuation.
template <class T>
class FutureAwaiter
{
public:
    /// `always_suspend`: resume through the executor even if the future is done already.
    FutureAwaiter(Future<T> future, Executor* executor, bool always_suspend) noexcept
        : future_(std::move(future)), executor_(executor), always_suspend_(always_suspend)
    {}

    [[nodiscard]] bool await_ready() const { return !always_suspend_ && future_.done(); }

    void await_suspend(std::coroutine_handle<> coroutine) const
    {
        // Nothing of this awaiter may be touched once `then` has returned (or even inside it):
        // the coroutine may already run again, on another thread, and destroy it.
        // A resumption never travels: local tasks, wherever this is instantiated.
        auto resume = [coroutine](const Future<T>& /*done*/) { coroutine.resume(); };
        (void)future_.template then<decltype(resume), LocalTasks>(
            std::move(resume), {.executor = executor_, .cancel_antecedent = false});
    }

    T await_resume()
    {
        if constexpr (std::is_void_v<T>) {
            future_.result();
        } else {
            return std::move(future_).result();
        }
    }

private:
    Future<T> future_;
    Executor* executor_;
    bool always_suspend_;
};

} // namespace futura::detail

namespace futura {

template <class T>
template <class F, class Tasks>
    requires(detail::continuation_of<std::decay_t<F>, T>)
auto Future<T>::then(F&& continuation, ThenOptions options) const
{
    using G = std::decay_t<F>;
    using U = detail::then_result_t<G, T>;
    auto& antecedent = state();
    antecedent.add_ref();
    auto* task = new typename Tasks::template continuation<U, T, G>(
        std::forward<F>(continuation), detail::StateRef<T>(&antecedent), options);
    auto result = detail::make_future(detail::StateRef<U>(task)); // adopts the first reference
    task->add_ref();                                              // the callback's
    antecedent.add_callback(static_cast<detail::DoneCallback*>(task));
    return result;
}

template <class T>
auto Future<T>::operator co_await() const
{
    state(); // InvalidStateError now rather than in the coroutine's resumption
    return detail::FutureAwaiter<T>(*this, nullptr, false);
}

} // namespace futura
