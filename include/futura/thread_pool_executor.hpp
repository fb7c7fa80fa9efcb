// futura::ThreadPoolExecutor: a pool of threads behind the Executor interface.
#pragma once

#include <futura/detail/continuation.hpp>
#include <futura/executor.hpp>
#include <futura/initializer.hpp>

#include <concepts>
#include <functional>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>

namespace boost::asio {
class execution_context;
} // namespace boost::asio

namespace futura {

/// Options of `ThreadPoolExecutor`, for designated initializers:
/// `futura::ThreadPoolExecutor pool{{.max_workers = 4}};`
struct ThreadPoolOptions
{
    /// The most threads the pool starts; none means `available_cpus()`.
    /// Must be positive if given: 0 or less is `std::invalid_argument`.
    std::optional<int> max_workers = std::nullopt;
    /// Worker threads are named `<prefix>_<n>` (as seen by `top -H` and debuggers; Linux keeps
    /// 15 characters). Empty: `futura`.
    std::string thread_name_prefix = {};
    /// Runs first in each new worker thread, with `initargs` if it takes parameters. If it
    /// throws, the pool is broken: pending and later work fails with `BrokenThreadPool`.
    Initializer initializer = {};
    /// The initializer's arguments (Python's `initargs`): `.initargs = std::tuple{"db", 3}`;
    /// their types must be the initializer's parameters (after decay; a string literal is a
    /// `std::string`), else the constructor throws `std::invalid_argument`.
    InitArgs initargs = {};
};

/// Runs calls on a pool of threads, like Python's `concurrent.futures.ThreadPoolExecutor`.
///
/// Threads start on demand, one per submission while none is idle, up to `max_workers`.
/// Any callable may be submitted, including capturing lambdas and move-only arguments and
/// results; tasks may submit further tasks to the same pool.
///
/// A task that waits for a future (`result`, `wait`, `futura::wait`, `as_completed`) cannot
/// deadlock the pool: if the awaited task is still queued here, the waiting thread takes it out
/// of the queue and runs it itself; otherwise the thread blocks, and meanwhile it does not count
/// against `max_workers`, so queued work gets another thread. A task may therefore wait for
/// work it submitted to its own pool, even with one worker. (Only a true cycle, a task waiting
/// for itself, never finishes.)
///
/// @par Example
/// @code
/// futura::ThreadPoolExecutor pool{{.max_workers = 4}};
/// auto f = pool.submit([](int x) { return x * x; }, 7);
/// std::cout << f.result() << '\n'; // 49
/// @endcode
///
/// @par Thread safety
/// Distinct objects: safe. Shared objects: safe.
///
/// @note The destructor waits for all submitted work, like leaving Python's `with` block
/// (unlike `boost::asio::thread_pool`, which drops queued work). It must not run in one of the
/// pool's own tasks.
class ThreadPoolExecutor final : public Executor
{
public:
    /// Starts no thread yet. @throws std::invalid_argument if `max_workers <= 0`.
    explicit ThreadPoolExecutor(ThreadPoolOptions options = {});

    /// `shutdown({.wait = true})`.
    ~ThreadPoolExecutor() override;

    ThreadPoolExecutor(const ThreadPoolExecutor&) = delete;
    ThreadPoolExecutor& operator=(const ThreadPoolExecutor&) = delete;
    ThreadPoolExecutor(ThreadPoolExecutor&&) = delete;
    ThreadPoolExecutor& operator=(ThreadPoolExecutor&&) = delete;

    /// As `Executor::submit`. A thread pool's tasks never leave the process, so they are built
    /// without a wire form whatever the translation unit includes.
    template <class F, class... Args>
        requires(std::invocable<std::decay_t<F>, std::decay_t<Args>...>)
    [[nodiscard]] auto submit(F&& f, Args&&... args)
    {
        return submit_as<detail::LocalTasks>(std::forward<F>(f), std::forward<Args>(args)...);
    }

    /// As `Executor::map`.
    template <class F, std::ranges::input_range Range>
        requires(detail::mappable<F, Range>)
    [[nodiscard]] auto map(F&& f, Range&& inputs, MapOptions options = {})
    {
        return map_as<detail::LocalTasks>(std::forward<F>(f), std::forward<Range>(inputs), options);
    }

    /// As `Executor::starmap`.
    template <class F, std::ranges::input_range Range>
        requires(std::copy_constructible<std::decay_t<F>>)
    [[nodiscard]] auto starmap(F&& f, Range&& inputs, MapOptions options = {})
    {
        return Executor::starmap<F, Range, detail::LocalTasks>(
            std::forward<F>(f), std::forward<Range>(inputs), options);
    }

    /// The pool as an Asio executor (`asio::post`, `dispatch`, `defer`, `co_spawn`); defined in
    /// `<futura/thread_pool_asio.hpp>` (included by `<futura/asio.hpp>`).
    class AsioExecutor;
    using executor_type = AsioExecutor;

    /// An Asio executor that runs functions on this pool, so that `asio::post(pool.get_executor(),
    /// f)` and `asio::co_spawn(pool.get_executor(), ...)` work. Include `<futura/asio.hpp>` to use
    /// it. The executor refers to the pool: it must not be used after the pool is destroyed.
    [[nodiscard]] AsioExecutor get_executor() noexcept;

    class Impl;

private:
    [[nodiscard]] boost::asio::execution_context& asio_context() noexcept;
    // The pool's Asio services (timers, sockets of I/O objects built on get_executor()): made
    // on first use by `make` (src/thread_pool_asio.cpp, the only part of the pool that knows
    // Asio) and destroyed by `destroy` once the workers are joined.
    [[nodiscard]] void* asio_services(void* (*make)(), void (*destroy)(void*) noexcept);
    [[nodiscard]] bool runs_in_this_thread() const noexcept;

    void schedule(detail::TaskPtr task) override;
    void do_shutdown(const ShutdownOptions& options) override;
    [[nodiscard]] std::size_t do_max_workers() const noexcept override;
    [[nodiscard]] ExecutorStats do_stats() const override;

    std::unique_ptr<Impl> impl_;
    // Where continuations of this pool's futures go by default: here, while the pool lives.
    detail::ContinuationHome home_{*this};
};

} // namespace futura
