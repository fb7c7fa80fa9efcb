// futura::ThreadPoolExecutor::AsioExecutor: a thread pool as an Asio (standard) executor.
#pragma once

#include <futura/errors.hpp>
#include <futura/thread_pool_executor.hpp>

#include <boost/asio/execution.hpp>
#include <boost/asio/execution_context.hpp>

#include <exception>
#include <memory>
#include <type_traits>
#include <utility>

namespace futura {

namespace detail {

/// Prints an exception that a function run through `ThreadPoolExecutor::AsioExecutor` let
/// escape: there is no future to hold it, and it must not end the worker thread.
void report_posted_exception(std::exception_ptr error) noexcept;

} // namespace detail

/// A `ThreadPoolExecutor` seen as an Asio executor, as `pool.get_executor()` returns it.
///
/// It meets Asio's standard executor requirements: `execute`, equality (same pool, same
/// blocking property), and the queries and requirements Asio asks for, so that `asio::post`,
/// `asio::dispatch`, `asio::defer`, `asio::co_spawn` and `asio::any_io_executor` accept it.
///
/// - `execute(f)` queues `f` on the pool like `submit` (it counts in `stats()`). With
///   `blocking.possibly` (the default, as for `asio::thread_pool`) and when called in one of
///   the pool's own threads, it runs `f` at once instead: `asio::dispatch` relies on that.
///   `asio::post` and `asio::defer` require `blocking.never`, which always queues.
/// - An exception that `f` throws is printed on stderr; there is no future to carry it.
/// - After `shutdown()` (or once the pool is broken), `execute` destroys `f` without running
///   it, as a stopped `asio::thread_pool` does; it does not throw, since Asio calls it from
///   places (timer completions, coroutine resumptions) where an exception would be lost or
///   fatal.
/// - `shutdown({.wait = true})` waits for queued and running functions, not for coroutines
///   suspended on something else: work tracking (`outstanding_work.tracked`) is not supported.
/// - Its execution context (`query(execution::context)`) is an `asio::execution_context` that
///   the pool owns, so I/O objects and timers may be constructed with this executor.
///
/// @par Example
/// @code
/// futura::ThreadPoolExecutor pool;
/// asio::post(pool.get_executor(), [] { heavy(); });
/// asio::co_spawn(pool.get_executor(), coroutine(), asio::detached);
/// @endcode
///
/// @par Thread safety
/// Distinct objects: safe. Shared objects: safe.
class ThreadPoolExecutor::AsioExecutor
{
public:
    explicit AsioExecutor(ThreadPoolExecutor& pool) noexcept : pool_(&pool) {}

    /// The pool functions run on.
    [[nodiscard]] ThreadPoolExecutor& pool() const noexcept { return *pool_; }

    /// Whether the calling thread is one of the pool's workers.
    [[nodiscard]] bool running_in_this_thread() const noexcept
    {
        return pool_->runs_in_this_thread();
    }

    /// Runs `f()` on the pool (see the class description for when it runs at once).
    template <class F>
        requires(std::invocable<std::decay_t<F>&>)
    void execute(F&& f) const
    {
        if (!never_ && pool_->runs_in_this_thread()) {
            std::decay_t<F> local(std::forward<F>(f));
            local();
            return;
        }
        try {
            static_cast<void>(pool_->submit(Posted<std::decay_t<F>>{std::forward<F>(f)}));
        } catch (const ShutdownError&) {
            // Dropped, as documented: the task (and f in it) is destroyed unrun.
        } catch (const BrokenExecutor&) {
            // Likewise: a broken pool runs nothing.
        }
    }

    [[nodiscard]] boost::asio::execution_context&
    query(boost::asio::execution::context_t /*unused*/) const noexcept
    {
        return pool_->asio_context();
    }

    [[nodiscard]] boost::asio::execution::blocking_t
    query(boost::asio::execution::blocking_t /*unused*/) const noexcept
    {
        return never_
                   ? boost::asio::execution::blocking_t(boost::asio::execution::blocking.never)
                   : boost::asio::execution::blocking_t(boost::asio::execution::blocking.possibly);
    }

    static constexpr boost::asio::execution::outstanding_work_t
    query(boost::asio::execution::outstanding_work_t /*unused*/) noexcept
    {
        return boost::asio::execution::outstanding_work.untracked;
    }

    static constexpr boost::asio::execution::relationship_t
    query(boost::asio::execution::relationship_t /*unused*/) noexcept
    {
        return boost::asio::execution::relationship.fork;
    }

    static constexpr std::allocator<void>
    query(boost::asio::execution::allocator_t<void> /*unused*/) noexcept
    {
        return {};
    }

    /// Never runs functions in the calling thread.
    [[nodiscard]] AsioExecutor
    require(boost::asio::execution::blocking_t::never_t /*unused*/) const noexcept
    {
        AsioExecutor copy = *this;
        copy.never_ = true;
        return copy;
    }

    /// Runs functions at once when called in one of the pool's threads.
    [[nodiscard]] AsioExecutor
    require(boost::asio::execution::blocking_t::possibly_t /*unused*/) const noexcept
    {
        AsioExecutor copy = *this;
        copy.never_ = false;
        return copy;
    }

    friend bool operator==(const AsioExecutor& a, const AsioExecutor& b) noexcept = default;

private:
    /// The task a posted function becomes: its exception goes to stderr, not to a future that
    /// nobody reads.
    template <class F>
    struct Posted
    {
        F f;
        void operator()() noexcept
        {
            try {
                f();
            } catch (...) {
                detail::report_posted_exception(std::current_exception());
            }
        }
    };

    ThreadPoolExecutor* pool_;
    // Two words, as Asio's own executors: any_io_executor stores it without allocating.
    bool never_ = false;
};

} // namespace futura
