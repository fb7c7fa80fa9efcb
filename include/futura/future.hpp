// futura::Future<T> and futura::Promise<T>.
#pragma once

#include <futura/detail/blocking.hpp>
#include <futura/detail/deadline.hpp>
#include <futura/detail/shared_state.hpp>
#include <futura/detail/state_ref.hpp>
#include <futura/detail/task_kind.hpp>
#include <futura/errors.hpp>

#include <chrono>
#include <compare>
#include <concepts>
#include <cstddef>
#include <exception>
#include <functional>
#include <type_traits>
#include <utility>

namespace futura {

class Executor;

template <class T>
class Future;

/// Options of `Future<T>::then`, for designated initializers:
/// `auto g = f.then(parse, {.executor = &pool, .cancel_antecedent = false});`
struct ThenOptions
{
    /// Where the continuation runs. None (null): where the antecedent ran, i.e. submitted to the
    /// `ThreadPoolExecutor` that ran it, inline for an `InlineExecutor`'s future, and on futura's
    /// shared continuation pool (threads `futura_then_<n>`) for futures that no executor of this
    /// process ran (a `Promise`, `make_ready_future`, a `ProcessPoolExecutor`) or
    /// whose executor is shut down or gone. Given: submitted there (`InlineExecutor` runs it in
    /// the thread that completes the antecedent). It must outlive the antecedent's completion.
    Executor* executor = nullptr;
    /// Cancelling the returned future also cancels the antecedent if it has not started.
    bool cancel_antecedent = true;
};

namespace detail {

template <class F, class T>
concept continuation_takes_value = !std::is_void_v<T> && std::invocable<F, T>;

template <class F, class T>
concept continuation_takes_nothing = std::is_void_v<T> && std::invocable<F>;

template <class F, class T>
concept continuation_takes_future = std::invocable<F, Future<T>>;

/// Whether a `T` can be copied: `std::is_copy_constructible`, looking into containers, whose copy
/// constructors are declared even when their elements cannot be copied.
template <class T>
inline constexpr bool copyable_value = std::is_copy_constructible_v<T>;
template <class T>
    requires requires { typename T::value_type; }
inline constexpr bool copyable_value<T> =
    std::is_copy_constructible_v<T> && copyable_value<typename T::value_type>;

/// A continuation of a `Future<T>`: called with the value (`T&&`; nothing for `void`), or with
/// the whole future.
template <class F, class T>
concept continuation_of = continuation_takes_value<F, T> || continuation_takes_nothing<F, T> ||
    continuation_takes_future<F, T>;

/// What `Future::async_wait` and `Executor::async_submit` pass to find their definitions by
/// argument-dependent lookup: `<futura/asio.hpp>` defines overloads taking `AsioLayer`, which
/// win; the core's take `AsioLayerMissing` and only say what to include.
struct AsioLayerMissing
{};
struct AsioLayer : AsioLayerMissing
{};

template <class... Ts>
inline constexpr bool asio_layer_included = false;

template <class T, class CompletionToken>
void asio_async_wait(AsioLayerMissing /*layer*/, const Future<T>& /*future*/,
                     CompletionToken&& /*token*/)
{
    static_assert(asio_layer_included<T, CompletionToken>,
                  "futura::Future::async_wait and futura::Executor::async_submit are part of "
                  "futura's Asio layer: #include <futura/asio.hpp> (before the code that calls "
                  "them) to use them");
}

/// Prints an exception a done callback let escape, as Python's logging does; never throws.
void report_callback_exception(std::exception_ptr error) noexcept;

template <class T>
Future<T> make_future(StateRef<T> state) noexcept;

template <class T>
SharedState<T>* state_of(const Future<T>& future) noexcept;

} // namespace detail

/// A handle to the result of an asynchronous call, like Python's `concurrent.futures.Future`.
///
/// Copies are cheap and refer to the same result: any copy may wait, query, cancel, add
/// callbacks or read the result, any number of times. A default-constructed future has no
/// result to refer to; every member but `valid()` then throws `InvalidStateError`.
///
/// @par Example
/// @code
/// futura::ThreadPoolExecutor pool;
/// futura::Future<int> f = pool.submit([] { return 6 * 7; });
/// int answer = f.result(); // 42
/// @endcode
///
/// @par Thread safety
/// Distinct objects: safe. Shared objects: safe; every member may be called concurrently on the
/// same future or on copies of it.
template <class T>
class Future
{
public:
    using value_type = T;

    /// A future with no state; `valid()` is false.
    Future() noexcept = default;

    /// Whether this future refers to a result (false if default-constructed or moved from).
    [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(state_); }

    /// Waits until done, then returns the value or rethrows the task's exception.
    /// @throws CancelledError if the future was cancelled.
    /// @note Called in a task of a `ThreadPoolExecutor`, the wait runs other queued tasks of that
    /// pool meanwhile, so a task may wait for work it submitted without deadlocking the pool.
    decltype(auto) result() const&
    {
        wait_or_throw(detail::never);
        return value_ref();
    }

    /// As `result()`, but moves the value out when this is the last handle to it (or when `T`
    /// is move-only: calling `result()` on an rvalue future then consumes the value).
    decltype(auto) result() &&
    {
        wait_or_throw(detail::never);
        return take_value();
    }

    /// As `result()`, giving up after `timeout`. @throws TimeoutError if it elapses first.
    template <class Rep, class Period>
    decltype(auto) result(std::chrono::duration<Rep, Period> timeout) const&
    {
        wait_or_throw(detail::deadline_after(timeout));
        return value_ref();
    }

    /// As `result() &&`, giving up after `timeout`. @throws TimeoutError if it elapses first.
    template <class Rep, class Period>
    decltype(auto) result(std::chrono::duration<Rep, Period> timeout) &&
    {
        wait_or_throw(detail::deadline_after(timeout));
        return take_value();
    }

    /// Waits until done, then returns the task's exception, or null if it succeeded.
    /// @throws CancelledError if the future was cancelled.
    [[nodiscard]] std::exception_ptr exception() const { return exception_until(detail::never); }

    /// As `exception()`, giving up after `timeout`. @throws TimeoutError if it elapses first.
    template <class Rep, class Period>
    [[nodiscard]] std::exception_ptr exception(std::chrono::duration<Rep, Period> timeout) const
    {
        return exception_until(detail::deadline_after(timeout));
    }

    /// Cancels the call if it has not started.
    /// @return true if the future is now cancelled (also if it already was); false if the call
    /// is running or done.
    bool cancel() const { return state().cancel(); } // NOLINT(modernize-use-nodiscard)

    /// Whether the future was cancelled. Never blocks.
    [[nodiscard]] bool cancelled() const { return phase() == Phase::cancelled; }

    /// Whether the call is running now (and cannot be cancelled). Never blocks.
    [[nodiscard]] bool running() const
    {
        const Phase now = phase();
        return now == Phase::running || now == Phase::completing;
    }

    /// Whether the future is done: finished with a value or an exception, or cancelled.
    [[nodiscard]] bool done() const { return state().done(); }

    /// Blocks until the future is done.
    void wait() const
    {
        if (!done()) {
            detail::check_may_block(detail::never);
        }
        state().wait(detail::never);
    }

    /// Blocks until the future is done or `timeout` elapses. @return whether it is done.
    template <class Rep, class Period>
    bool
    wait_for(std::chrono::duration<Rep, Period> timeout) const // NOLINT(modernize-use-nodiscard)
    {
        const auto deadline = detail::deadline_after(timeout);
        if (!done()) {
            detail::check_may_block(deadline);
        }
        return state().wait(deadline);
    }

    /// Runs `callback(future)` once this future is done: at once in the calling thread if it
    /// already is, otherwise in the thread that completes it. Callbacks run in the order added.
    /// An exception a callback throws is reported on stderr and otherwise ignored, so it cannot
    /// break the executor.
    template <class F>
        requires(std::invocable<std::decay_t<F>&, Future<T>> || std::invocable<std::decay_t<F>&>)
    void add_done_callback(F&& callback) const
    {
        state().add_callback(new CallbackNode<std::decay_t<F>>(std::forward<F>(callback)));
    }

    /// Asio: waits without blocking, completing with `(std::exception_ptr, T)` (or
    /// `(std::exception_ptr)` for `Future<void>`) with any completion token: a callback,
    /// `asio::use_awaitable` (`co_await` yields the value or throws), `asio::deferred`,
    /// `asio::use_future`. The handler runs through its associated executor, never inline in
    /// this call. Cancelling through the handler's cancellation slot completes the wait with
    /// `boost::system::system_error(asio::error::operation_aborted)` and cancels the task if it
    /// has not started. Part of futura's Asio layer: include `<futura/asio.hpp>` to use it
    /// (without it, the compiler says so).
    template <class CompletionToken>
    auto async_wait(CompletionToken&& token) const
    {
        // Found by argument-dependent lookup: the Asio layer's definition if it is included,
        // else the core's, which fails with a message that says what to include.
        return asio_async_wait(detail::AsioLayer{}, *this, std::forward<CompletionToken>(token));
    }

    /// Runs `continuation` once this future is done and returns the future of its result.
    ///
    /// `continuation` takes the value (`T&&`; nothing for `Future<void>`) or the whole
    /// `Future<T>` (to see exceptions and cancellation); the value is preferred when both work.
    /// A value-taking continuation is skipped when this future fails (the result fails with the
    /// same exception) or is cancelled (the result is cancelled). An exception the continuation
    /// throws fails the result. A continuation returning `Future<U>` gives a `Future<U>` that
    /// finishes with that inner future (flattened).
    ///
    /// Where it runs is `options.executor`'s choice, by default where this future ran: see
    /// `ThenOptions`. It never runs inside `then` unless the executor is an `InlineExecutor` (or
    /// this future's executor is one). Cancelling the result before the continuation starts
    /// cancels it, and, with `options.cancel_antecedent`, this future if it has not started. The
    /// result does not keep this future alive once the continuation has started, so a chain of
    /// any length holds only its unfinished links; and continuations that complete one another
    /// inline run in bounded stack.
    ///
    /// @par Example
    /// @code
    /// futura::Future<std::size_t> n = pool.submit(download, url)
    ///                                     .then([](std::string page) { return page.size(); });
    /// @endcode
    ///
    /// @par Thread safety
    /// Distinct objects: safe. Shared objects: safe; any number of threads may add
    /// continuations to the same future, also while it completes.
    /// @throws InvalidStateError if this future has no state.
    /// Defined in `<futura/impl/then.hpp>`. `Tasks`: whether the continuation can travel to a
    /// worker process (as for `Executor::submit`); leave it to its default.
    template <class F, class Tasks = detail::tasks_for<std::decay_t<F>>>
        requires(detail::continuation_of<std::decay_t<F>, T>)
    [[nodiscard]] auto then(F&& continuation, ThenOptions options = {}) const;

    /// `co_await future` in any C++20 coroutine: suspends until done, then yields the value or
    /// throws (`CancelledError` if cancelled). The coroutine resumes where a `then` continuation
    /// would run (see `ThenOptions`); `futura::resume_on(future, executor)` picks the executor.
    /// Defined in `<futura/impl/then.hpp>`.
    auto operator co_await() const;

    /// Futures are equal when they refer to the same result.
    friend bool operator==(const Future& a, const Future& b) noexcept = default;
    friend std::strong_ordering operator<=>(const Future& a, const Future& b) noexcept
    {
        return std::compare_three_way{}(a.state_.get(), b.state_.get());
    }

private:
    using Phase = detail::SharedStateBase::Phase;

    template <class U>
    friend Future<U> detail::make_future(detail::StateRef<U> state) noexcept;
    template <class U>
    friend detail::SharedState<U>* detail::state_of(const Future<U>& future) noexcept;

    explicit Future(detail::StateRef<T> state) noexcept : state_(std::move(state)) {}

    template <class F>
    class CallbackNode final : public detail::DoneCallback
    {
    public:
        template <class G>
        explicit CallbackNode(G&& callback) : callback_(std::forward<G>(callback))
        {}

        void on_done(detail::SharedStateBase& state) noexcept override
        {
            try {
                if constexpr (std::invocable<F&, Future<T>>) {
                    auto& typed = static_cast<detail::SharedState<T>&>(state);
                    typed.add_ref();
                    callback_(Future<T>(detail::StateRef<T>(&typed)));
                } else {
                    callback_();
                }
            } catch (...) {
                detail::report_callback_exception(std::current_exception());
            }
        }

    private:
        F callback_;
    };

    detail::SharedState<T>& state() const
    {
        if (!state_) {
            throw_no_state();
        }
        return *state_.get();
    }

    [[noreturn]] static void throw_no_state()
    {
        throw InvalidStateError("futura::Future: this future has no result to refer to (it was "
                                "default-constructed or moved from); use one returned by submit");
    }

    Phase phase() const { return state().phase(); }

    void wait_or_throw(detail::Deadline deadline) const
    {
        auto& s = state();
        if (!s.done()) {
            detail::check_may_block(deadline);
        }
        if (!s.wait(deadline)) {
            throw TimeoutError();
        }
        s.rethrow_if_failed();
    }

    std::exception_ptr exception_until(detail::Deadline deadline) const
    {
        auto& s = state();
        if (!s.done()) {
            detail::check_may_block(deadline);
        }
        if (!s.wait(deadline)) {
            throw TimeoutError();
        }
        if (s.phase() == Phase::cancelled) {
            throw CancelledError();
        }
        return s.stored_exception();
    }

    decltype(auto) value_ref() const
    {
        if constexpr (!std::is_void_v<T>) {
            return static_cast<const T&>(state_->value());
        }
    }

    T take_value()
    {
        if constexpr (!std::is_void_v<T>) {
            if constexpr (detail::copyable_value<T>) {
                if (!state_->unique()) {
                    return state_->value(); // others may read it too: copy
                }
            }
            return std::move(state_->value());
        }
    }

    detail::StateRef<T> state_;
};

/// The producer side of a `Future<T>`, for writing executors of your own.
///
/// Mirrors the methods Python's executors call on a future: `set_running_or_notify_cancel`,
/// `set_result`, `set_exception`. Destroying a promise whose future is not done yet fails the
/// future with `BrokenExecutor`, so no waiter hangs.
///
/// @par Thread safety
/// Distinct objects: safe. Shared objects: unsafe.
template <class T>
class Promise
{
public:
    Promise() : state_(new detail::SharedState<T>()) {}
    Promise(Promise&&) noexcept = default;
    Promise& operator=(Promise&& other) noexcept
    {
        abandon();
        state_ = std::move(other.state_);
        return *this;
    }
    Promise(const Promise&) = delete;
    Promise& operator=(const Promise&) = delete;
    ~Promise() { abandon(); }

    /// A future for this promise's result; may be called any number of times.
    [[nodiscard]] Future<T> get_future() const { return detail::make_future(checked()); }

    /// Marks the future running unless it was cancelled. @return false if it was cancelled
    /// (the work must then not run). @throws InvalidStateError if already running or done.
    bool set_running_or_notify_cancel() { return checked()->set_running_or_notify_cancel(); }

    /// Completes the future with a value (no argument for `Promise<void>`).
    /// @throws InvalidStateError if the future is already done or cancelled.
    template <class... Args>
        requires(std::is_void_v<T> ? sizeof...(Args) == 0 : std::constructible_from<T, Args...>)
    void set_result(Args&&... args)
    {
        if (!checked()->try_set_value(std::forward<Args>(args)...)) {
            throw InvalidStateError("futura::Promise::set_result: the future is already done "
                                    "(finished or cancelled); a result can be set only once");
        }
    }

    /// Completes the future with an exception.
    /// @throws InvalidStateError if the future is already done or cancelled.
    void set_exception(std::exception_ptr error) { checked()->set_exception(std::move(error)); }

private:
    const detail::StateRef<T>& checked() const
    {
        if (!state_) {
            throw InvalidStateError("futura::Promise: this promise was moved from");
        }
        return state_;
    }

    void abandon() noexcept
    {
        if (state_ && !state_->done()) {
            state_->try_set_exception(std::make_exception_ptr(
                BrokenExecutor("futura::Promise destroyed before setting a result: whoever was to "
                               "complete this future gave up on it")));
        }
    }

    detail::StateRef<T> state_;
};

namespace detail {

template <class T>
Future<T> make_future(StateRef<T> state) noexcept
{
    return Future<T>(std::move(state));
}

template <class T>
SharedState<T>* state_of(const Future<T>& future) noexcept
{
    return future.state_.get();
}

} // namespace detail

} // namespace futura

#include <futura/impl/then.hpp>

/// Futures hash by identity, so they can key a `std::unordered_map` (Python's
/// `{executor.submit(f, x): x for x in xs}` idiom).
template <class T>
struct std::hash<futura::Future<T>>
{
    std::size_t operator()(const futura::Future<T>& future) const noexcept
    {
        return std::hash<const void*>{}(futura::detail::state_of(future));
    }
};
