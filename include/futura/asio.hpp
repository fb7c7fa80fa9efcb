// Asio glue: await futures with completion tokens, submit from an event loop, iterate futures
// as they finish (async_as_completed), and run Asio work on a thread pool (get_executor).
#pragma once

#include <futura/async_as_completed.hpp>
#include <futura/detail/task.hpp>
#include <futura/executor.hpp>
#include <futura/future.hpp>
#include <futura/thread_pool_asio.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/system_error.hpp>

#include <atomic>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace futura {

namespace detail {

/// The completion signature of `Future<T>::async_wait`.
template <class T>
using wait_signature =
    std::conditional_t<std::is_void_v<T>, void(std::exception_ptr), void(std::exception_ptr, T)>;

/// One `async_wait` in flight: completed once, either by the future finishing (on whichever
/// thread finishes it) or by cancellation (on the thread that emits the signal).
template <class T, class Handler>
class AsyncWait : public std::enable_shared_from_this<AsyncWait<T, Handler>>
{
public:
    AsyncWait(Future<T> future, Handler handler)
        : future_(std::move(future)), handler_(std::move(handler)),
          work_(boost::asio::make_work_guard(boost::asio::get_associated_executor(handler_)))
    {}

    void start()
    {
        if (future_.done()) {
            // Common when awaiting a batch of futures: no slot to watch, no callback to add.
            finish(nullptr);
            return;
        }
        auto slot = boost::asio::get_associated_cancellation_slot(handler_);
        if (slot.is_connected()) {
            slot.assign([weak = this->weak_from_this()](boost::asio::cancellation_type type) {
                if (type != boost::asio::cancellation_type::none) {
                    if (auto self = weak.lock()) {
                        self->cancel(type);
                    }
                }
            });
        }
        future_.add_done_callback([self = this->shared_from_this()] { self->finish(nullptr); });
    }

private:
    void cancel(boost::asio::cancellation_type type)
    {
        // Complete first: cancelling the future runs its callbacks, ours among them.
        finish(std::make_exception_ptr(
            boost::system::system_error(boost::asio::error::operation_aborted)));
        if ((type & boost::asio::cancellation_type::terminal) !=
            boost::asio::cancellation_type::none) {
            // Terminal: nothing may be left of the operation. A process pool stops a running
            // task by killing its worker; elsewhere only a task not started yet is cancelled.
            detail::terminate(detail::state_of(future_));
        } else {
            future_.cancel(); // only stops the task if it has not started, as Python's cancel()
        }
    }

    void finish(std::exception_ptr aborted)
    {
        if (completed_.exchange(true, std::memory_order_acq_rel)) {
            return;
        }
        // Never run the handler here: this may be the initiating call (the future was done
        // already) or a pool thread. Post to the handler's own executor.
        // This thread holds its own count of outstanding work until post() has returned:
        // otherwise the handler could run, release the last count, and let the loop's owner
        // destroy the io_context while post() is still signalling it.
        const auto keep_running = work_;
        boost::asio::post(keep_running.get_executor(),
                          [self = this->shared_from_this(), aborted]() mutable {
                              self->deliver(std::move(aborted));
                          });
    }

    void deliver(std::exception_ptr aborted)
    {
        auto slot = boost::asio::get_associated_cancellation_slot(handler_);
        if (slot.is_connected()) {
            slot.clear();
        }
        auto handler = std::move(handler_);
        work_.reset();
        if constexpr (std::is_void_v<T>) {
            std::exception_ptr error = aborted;
            if (!error) {
                try {
                    future_.result(); // rethrows the task's exception, or CancelledError
                } catch (...) {
                    error = std::current_exception();
                }
            }
            std::move(handler)(error);
        } else {
            std::exception_ptr error = aborted;
            std::optional<T> value;
            if (!error) {
                try {
                    value.emplace(std::move(future_).result());
                } catch (...) {
                    error = std::current_exception();
                }
            }
            std::move(handler)(error, value ? std::move(*value) : T{});
        }
    }

    Future<T> future_;
    Handler handler_;
    boost::asio::executor_work_guard<boost::asio::associated_executor_t<Handler>> work_;
    std::atomic<bool> completed_{false};
};

template <class T>
struct InitiateAsyncWait
{
    template <class Handler>
    void operator()(Handler&& handler, Future<T> future) const
    {
        auto op = std::make_shared<AsyncWait<T, std::decay_t<Handler>>>(
            std::move(future), std::forward<Handler>(handler));
        op->start();
    }
};

/// `Future<T>::async_wait`, found by argument-dependent lookup (see `AsioLayer`).
template <class T, class CompletionToken>
auto asio_async_wait(AsioLayer /*layer*/, const Future<T>& future, CompletionToken&& token)
{
    static_assert(std::is_void_v<T> || std::is_default_constructible_v<T>,
                  "futura::Future::async_wait completes with (exception_ptr, T): T must be "
                  "default-constructible, for the error case");
    return boost::asio::async_initiate<CompletionToken, wait_signature<T>>(InitiateAsyncWait<T>{},
                                                                           token, future);
}

} // namespace detail

} // namespace futura
