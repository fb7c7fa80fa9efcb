// The state a Future shares with whoever completes it: phase, result, waiters and callbacks.
#pragma once

#include <futura/detail/deadline.hpp>

#include <boost/intrusive/list.hpp>

#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

namespace futura::detail {

class SharedStateBase;
class ContinuationTarget;

/// Something to run once a state is done. Owned by the state's list while linked; the state
/// then calls exactly one of `fire` (it is done) or `dispose` (the callback was removed).
class DoneCallback : public boost::intrusive::list_base_hook<>
{
public:
    DoneCallback() = default;
    DoneCallback(const DoneCallback&) = delete;
    DoneCallback& operator=(const DoneCallback&) = delete;
    virtual ~DoneCallback() = default;

    virtual void on_done(SharedStateBase& state) noexcept = 0;

    /// The state is done: runs `on_done`, then deletes the callback. A callback that is part of
    /// a larger object (a continuation, a node of `when_all`) overrides this and `dispose` to
    /// manage its own lifetime.
    virtual void fire(SharedStateBase& state) noexcept
    {
        on_done(state);
        delete this;
    }

    /// The callback was removed before it ran: deletes it.
    virtual void dispose() noexcept { delete this; }
};

/// Where the continuations of a state run by default: the executor that produced it, named by
/// a recycled target and the generation it had then (a stale generation means that executor is
/// gone). Null when no executor produced the state (a promise, a ready future, a process pool).
struct Origin
{
    ContinuationTarget* target = nullptr;
    std::uint64_t generation = 0;
};

/// The value-independent part of a future's shared state.
///
/// The state word holds the phase and two flag bits. A phase moves forward only:
/// pending -> running -> completing -> finished, or pending -> cancelled. Whoever moves it to
/// `completing` owns the right to store the result; `finished` is published with release order
/// after the result is stored, so a reader that sees it done (acquire) sees the result.
class SharedStateBase
{
public:
    enum class Phase : std::uint32_t
    {
        pending = 0,
        running = 1,
        completing = 2,
        finished = 3,
        cancelled = 4
    };

    SharedStateBase() noexcept = default;
    SharedStateBase(const SharedStateBase&) = delete;
    SharedStateBase& operator=(const SharedStateBase&) = delete;

    void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept
    {
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            delete this;
        }
    }

    /// The reference of the executor that will produce the result, taken before any other
    /// thread can see the state: it never reads the value, so `unique()` does not count it.
    void add_producer_ref() noexcept
    {
        producers_.fetch_add(1, std::memory_order_relaxed);
        add_ref();
    }
    /// Drops the reference `add_producer_ref` took.
    void release_producer_ref() noexcept
    {
        // Before the count: a reader that sees the count drop sees this too (release below).
        producers_.fetch_sub(1, std::memory_order_relaxed);
        release();
    }

    /// Whether the caller's reference is the only one that may read the value. The executor's
    /// is not counted: it lets go of its task just after completing it, and a waiter woken in
    /// between would otherwise copy a result it could move (400 MB, for a large vector).
    [[nodiscard]] bool unique() const noexcept
    {
        // The count first: producers only ever let go, and do so before the count drops, so
        // a producer letting go meanwhile makes this answer "no" (a copy), never a wrong "yes".
        const auto refs = refs_.load(std::memory_order_acquire);
        return refs - producers_.load(std::memory_order_acquire) == 1;
    }

    [[nodiscard]] Phase phase() const noexcept
    {
        return phase_of(word_.load(std::memory_order_acquire));
    }
    [[nodiscard]] bool done() const noexcept
    {
        return is_done(word_.load(std::memory_order_acquire));
    }

    /// pending -> running. @return false if the state was cancelled (the task must not run).
    /// @throws InvalidStateError if it is already running or done.
    bool set_running_or_notify_cancel();

    /// pending -> running without the checks, for executors. @return false if cancelled.
    bool try_start() noexcept;

    /// pending -> cancelled, waking waiters and running callbacks.
    /// @return true if cancelled (now or before), false if running or finished.
    bool cancel() noexcept;

    /// running -> cancelled, for executors that can stop a running call (a worker process can
    /// be killed). @return false if the state is not running.
    bool cancel_running() noexcept;

    /// pending/running -> completing: the caller may now store the result, then `publish()`.
    /// @return false if the state is already completing, finished or cancelled.
    bool try_claim() noexcept;

    /// completing -> finished: wakes waiters and runs callbacks. Only after a successful claim.
    void publish() noexcept;

    /// Stores `error` as the result and publishes. Only after a successful claim.
    void publish_exception(std::exception_ptr error) noexcept;

    /// Claims, stores `error` and publishes. @throws InvalidStateError if already done.
    void set_exception(std::exception_ptr error);

    /// Claims, stores `error` and publishes if not done yet; otherwise does nothing.
    /// @return whether it did.
    bool try_set_exception(std::exception_ptr error) noexcept;

    /// Waits until done or the deadline. In a pool worker, helps the pool meanwhile.
    /// @return whether it is done.
    bool wait(Deadline deadline) noexcept;

    /// Runs `callback->on_done` once done: at once in the caller if already done, otherwise in
    /// the thread that completes the state. Takes ownership of `callback`.
    void add_callback(DoneCallback* callback) noexcept;

    /// Unlinks and deletes `callback` if it has not been taken to run yet.
    /// @return false if it runs (or ran) anyway; then it deletes itself as usual.
    bool remove_callback(DoneCallback* callback) noexcept;

    /// Where continuations of this state run by default; see `Origin`. Only meaningful once done.
    [[nodiscard]] virtual Origin continuation_origin() const noexcept { return {}; }

    /// The stored exception; only meaningful once finished.
    [[nodiscard]] const std::exception_ptr& stored_exception() const noexcept { return error_; }

    /// Rethrows the stored exception, or CancelledError; for use once done.
    void rethrow_if_failed() const;

protected:
    virtual ~SharedStateBase() = default;

    /// Called once by `cancel()` in the thread that cancelled the state, after the phase became
    /// `cancelled` and before the callbacks run: a composed future passes the cancellation on to
    /// its inputs here.
    virtual void on_cancel() noexcept {}

private:
    static constexpr std::uint32_t phase_mask = 7;
    static constexpr std::uint32_t has_waiters = 8;    // someone sleeps on word_: wake it
    static constexpr std::uint32_t has_callbacks = 16; // callbacks_ may be non-empty: run them

    static Phase phase_of(std::uint32_t word) noexcept
    {
        return static_cast<Phase>(word & phase_mask);
    }
    static bool is_done(std::uint32_t word) noexcept
    {
        return (word & phase_mask) >= static_cast<std::uint32_t>(Phase::finished);
    }

    bool wait_without_helping(Deadline deadline) noexcept;
    bool wait_helping(Deadline deadline) noexcept;
    void notify_done(std::uint32_t previous) noexcept;

    std::atomic<std::uint32_t> word_{static_cast<std::uint32_t>(Phase::pending)};
    std::atomic<std::uint32_t> refs_{1};
    std::atomic<std::uint32_t> producers_{0}; // of refs_, those that never read the value
    std::exception_ptr error_;
    std::mutex callbacks_mutex_; // guards callbacks_
    boost::intrusive::list<DoneCallback> callbacks_;
};

/// The shared state of a `Future<T>`: adds the value.
template <class T>
class SharedState : public SharedStateBase
{
public:
    /// Claims, stores and publishes. @return false if already done (nothing stored).
    template <class... Args>
    bool try_set_value(Args&&... args)
    {
        if (!try_claim()) {
            return false;
        }
        emplace_and_publish(std::forward<Args>(args)...);
        return true;
    }

    /// After a successful `try_claim()`: stores the value and publishes it.
    template <class... Args>
    void emplace_and_publish(Args&&... args)
    {
        if constexpr (!std::is_void_v<T>) {
            try {
                value_.emplace(std::forward<Args>(args)...);
            } catch (...) {
                // The value's constructor threw: the exception becomes the result.
                publish_exception(std::current_exception());
                return;
            }
        }
        publish();
    }

    /// The value; only once finished without an exception.
    [[nodiscard]] auto& value() noexcept requires(!std::is_void_v<T>) { return *value_; }

private:
    struct NoValue
    {};
    [[no_unique_address]] std::conditional_t<std::is_void_v<T>, NoValue, std::optional<T>> value_;
};

} // namespace futura::detail
