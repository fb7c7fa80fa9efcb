// futura::async_as_completed: as_completed for Asio programs, one future per async_next.
#pragma once

#include <futura/future.hpp>
#include <futura/wait.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <utility>
#include <vector>

namespace futura {

namespace detail {

/// What `AsyncAsCompleted` shares with the done callbacks of its futures and with its pending
/// `async_next`: the futures done but not handed out yet, and at most one waiter.
template <class T>
class AsyncCompletionQueue : public std::enable_shared_from_this<AsyncCompletionQueue<T>>
{
public:
    using Next = std::optional<Future<T>>;

    /// A pending `async_next`, its handler type erased.
    class Waiter
    {
    public:
        explicit Waiter(std::uint64_t id) noexcept : id_(id) {}
        Waiter(const Waiter&) = delete;
        Waiter& operator=(const Waiter&) = delete;
        virtual ~Waiter() = default;
        /// Posts the handler to its executor with this outcome; called once, with no lock held.
        virtual void complete(boost::system::error_code error, Next next) = 0;
        [[nodiscard]] std::uint64_t id() const noexcept { return id_; }

    private:
        std::uint64_t id_;
    };

    explicit AsyncCompletionQueue(std::size_t count) : undelivered_(count) {}

    /// Called once per distinct future, after construction (callbacks need shared_from_this).
    void watch(const Future<T>& future)
    {
        // One callback per future, holding the queue alive until the future is done: a pending
        // async_next must still complete if its AsyncAsCompleted object is gone.
        future.add_done_callback(
            [self = this->shared_from_this()](Future<T> done) { self->on_done(std::move(done)); });
    }

    /// Hands `waiter` the next done future now (or the end, or an error), or keeps it until a
    /// future is done.
    void next(std::unique_ptr<Waiter> waiter)
    {
        std::unique_lock lock(mutex_);
        if (waiter_) {
            lock.unlock();
            waiter->complete(boost::asio::error::in_progress, std::nullopt);
        } else if (!ready_.empty()) {
            Next next(std::move(ready_.front()));
            ready_.pop_front();
            --undelivered_;
            lock.unlock();
            waiter->complete({}, std::move(next));
        } else if (undelivered_ == 0) {
            lock.unlock();
            waiter->complete({}, std::nullopt);
        } else {
            waiter_ = std::move(waiter);
        }
    }

    /// Cancels the pending waiter `id`, if it is still pending; the future it would have had
    /// stays for the next call.
    void cancel(std::uint64_t id)
    {
        std::unique_ptr<Waiter> waiter;
        {
            const std::lock_guard lock(mutex_);
            if (!waiter_ || waiter_->id() != id) {
                return;
            }
            waiter = std::move(waiter_);
        }
        waiter->complete(boost::asio::error::operation_aborted, std::nullopt);
    }

    [[nodiscard]] std::uint64_t new_id() noexcept
    {
        const std::lock_guard lock(mutex_);
        return ++last_id_;
    }

    [[nodiscard]] std::size_t remaining() const
    {
        const std::lock_guard lock(mutex_);
        return undelivered_;
    }

private:
    void on_done(Future<T> done)
    {
        std::unique_ptr<Waiter> waiter;
        {
            const std::lock_guard lock(mutex_);
            if (!waiter_) {
                ready_.push_back(std::move(done));
                return;
            }
            waiter = std::move(waiter_);
            --undelivered_;
        }
        waiter->complete({}, Next(std::move(done)));
    }

    mutable std::mutex mutex_;       // guards everything below
    std::deque<Future<T>> ready_;    // done, in the order they finished, not handed out yet
    std::size_t undelivered_;        // futures not handed out yet, done or not
    std::unique_ptr<Waiter> waiter_; // the pending async_next, if any
    std::uint64_t last_id_ = 0;      // names waiters, so a late cancellation finds no other one
};

template <class T, class Handler>
class AsyncNextWaiter final : public AsyncCompletionQueue<T>::Waiter
{
public:
    using Next = typename AsyncCompletionQueue<T>::Next;

    AsyncNextWaiter(std::uint64_t id, Handler handler)
        : AsyncCompletionQueue<T>::Waiter(id), handler_(std::move(handler)),
          work_(boost::asio::make_work_guard(boost::asio::get_associated_executor(handler_)))
    {}

    void complete(boost::system::error_code error, Next next) override
    {
        // Never inline: this may be the initiating call or the thread that finished a future.
        // The work count is held until post() returns (see AsyncWait::finish in asio.hpp).
        const auto keep_running = work_;
        boost::asio::post(keep_running.get_executor(),
                          [handler = std::move(handler_), work = std::move(work_), error,
                           next = std::move(next)]() mutable {
                              auto slot = boost::asio::get_associated_cancellation_slot(handler);
                              if (slot.is_connected()) {
                                  slot.clear();
                              }
                              std::move(handler)(error, std::move(next));
                          });
    }

private:
    Handler handler_;
    boost::asio::executor_work_guard<boost::asio::associated_executor_t<Handler>> work_;
};

template <class T>
struct InitiateAsyncNext
{
    template <class Handler>
    void operator()(Handler&& handler, const std::shared_ptr<AsyncCompletionQueue<T>>& queue) const
    {
        const std::uint64_t id = queue->new_id();
        auto slot = boost::asio::get_associated_cancellation_slot(handler);
        if (slot.is_connected()) {
            // Any cancellation type: aborting the wait has no effect on the futures.
            slot.assign([weak = std::weak_ptr(queue), id](boost::asio::cancellation_type type) {
                if (type != boost::asio::cancellation_type::none) {
                    if (auto strong = weak.lock()) {
                        strong->cancel(id);
                    }
                }
            });
        }
        queue->next(std::make_unique<AsyncNextWaiter<T, std::decay_t<Handler>>>(
            id, std::forward<Handler>(handler)));
    }
};

} // namespace detail

/// Futures as they finish, one per `async_next`, for Asio programs: the asynchronous form of
/// `futura::as_completed`, as `futura::async_as_completed` returns it.
///
/// Each distinct input future is delivered exactly once; those already done come first, then
/// the others in the order they finish. Each future has one done callback and nothing polls.
///
/// @par Example
/// @code
/// auto completed = futura::async_as_completed(futures);
/// while (auto f = co_await completed.async_next(asio::use_awaitable)) {
///     use(f->result()); // done: never blocks
/// }
/// @endcode
///
/// @par Thread safety
/// Distinct objects: safe. Shared objects: unsafe; one `async_next` at a time.
template <class T>
class AsyncAsCompleted
{
public:
    /// Watches `distinct` (futures without repeats).
    explicit AsyncAsCompleted(const std::vector<Future<T>>& distinct)
        : queue_(std::make_shared<detail::AsyncCompletionQueue<T>>(distinct.size()))
    {
        for (const auto& future : distinct) {
            queue_->watch(future);
        }
    }

    /// Waits without blocking for the next future to finish.
    ///
    /// Completes with `(boost::system::error_code, std::optional<Future<T>>)`: a done future,
    /// or `std::nullopt` once every future was delivered (the end of the iteration). With
    /// `asio::use_awaitable`, `co_await` yields the optional. The handler runs through its
    /// associated executor, never inline in this call.
    ///
    /// Cancelling through the handler's cancellation slot (any cancellation type) completes the
    /// wait with `asio::error::operation_aborted` and nothing else: no future is cancelled, and
    /// the next `async_next` still delivers every future not delivered yet. Calling `async_next`
    /// while another is pending completes the new one with `asio::error::in_progress`.
    template <class CompletionToken>
    auto async_next(CompletionToken&& token)
    {
        return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code,
                                                                 std::optional<Future<T>>)>(
            detail::InitiateAsyncNext<T>{}, token, queue_);
    }

    /// How many futures are still to be delivered (done or not).
    [[nodiscard]] std::size_t remaining() const { return queue_->remaining(); }

private:
    std::shared_ptr<detail::AsyncCompletionQueue<T>> queue_;
};

/// Delivers each distinct future of `futures` as it finishes, through `async_next(token)`: the
/// Asio form of `futura::as_completed`. Futures may come from different executors. An overall
/// timeout is a cancellation: race `async_next` against a timer (awaitable operators `||`).
///
/// @par Example
/// @code
/// auto completed = futura::async_as_completed(futures);
/// while (auto f = co_await completed.async_next(asio::use_awaitable)) {
///     std::cout << f->result() << '\n';
/// }
/// @endcode
template <detail::range_of_futures Range>
[[nodiscard]] AsyncAsCompleted<detail::future_value_t<Range>> async_as_completed(Range&& futures)
{
    using T = detail::future_value_t<Range>;
    return AsyncAsCompleted<T>(detail::distinct_futures<T>(std::forward<Range>(futures)));
}

/// `futura::async_as_completed({f1, f2, f3})`.
template <class T>
[[nodiscard]] AsyncAsCompleted<T> async_as_completed(std::initializer_list<Future<T>> futures)
{
    return futura::async_as_completed(std::span<const Future<T>>(futures.begin(), futures.size()));
}

} // namespace futura
