// futura::ProcessPoolExecutor: a pool of worker processes behind the Executor interface.
#pragma once

#include <futura/detail/travelling_task.hpp>
#include <futura/executor.hpp>
#include <futura/initializer.hpp>

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>

namespace futura {

/// How worker processes start (Python's `multiprocessing` start methods).
enum class StartMethod
{
    /// A fresh process running this program (`/proc/self/exe`): it constructs its globals, then
    /// enters the worker loop instead of `main`. Safe in multithreaded parents. The default.
    spawn,
    /// A fork of the parent without exec: faster to start, and the worker inherits the
    /// parent's memory as it was at the fork. Hazardous in a multithreaded parent, as in
    /// Python: only the forking thread exists in the child, so a lock held by another thread at
    /// that moment (in any library) is held forever in the worker.
    fork,
};

/// What a `ProcessPoolExecutor` runs first in each new worker process: a function (or a
/// captureless lambda) returning nothing, which the worker, being this same program, has too.
/// Its parameters take the pool's `initargs`, which travel as task arguments do.
class ProcessInitializer
{
public:
    /// None.
    ProcessInitializer() = default;
    ProcessInitializer(std::nullptr_t) noexcept {} // NOLINT: implicit, for `.initializer = nullptr`

    template <class... Args>
    ProcessInitializer(void (*f)(Args...)) // NOLINT: implicit, for `.initializer = init`
        : function_(reinterpret_cast<const void*>(f)), // NOLINT: sent as an address
          encode_(&encode_call<Args...>), fits_([](const InitArgs& args) {
              return args.get<std::tuple<std::decay_t<Args>...>>() != nullptr;
          }),
          parameters_(&detail::describe_parameters<std::tuple<std::decay_t<Args>...>>)
    {
        static_assert((detail::transferable_value<std::decay_t<Args>> && ...),
                      "futura::ProcessPoolOptions::initializer: a parameter cannot be sent to a "
                      "worker process: initargs must be futura::transferable");
        if (f == nullptr) {
            *this = {};
        }
    }

    template <class F>
        requires(requires(F f) { +f; } && detail::stateless_callable<F>)
    ProcessInitializer(F f) // NOLINT: implicit, for `.initializer = [](int) {...}`
        : ProcessInitializer(+f)
    {}

    [[nodiscard]] explicit operator bool() const noexcept { return function_ != nullptr; }

    /// Throws `std::invalid_argument`, naming `executor`, unless `args` fit the parameters.
    void check(const InitArgs& args, const char* executor = "futura::ProcessPoolExecutor") const
    {
        detail::check_initargs(args, fits_, parameters_, executor);
    }

    /// Writes the call a new worker runs first: the initializer with `args` (which `check`
    /// accepted), encoded as a task's call.
    void encode(detail::WireWriter& out, const InitArgs& args) const
    {
        encode_(out, function_, args);
    }

private:
    template <class... Args>
    static void encode_call(detail::WireWriter& out, const void* function, const InitArgs& args)
    {
        using F = void (*)(Args...);
        using Call = detail::RemoteCall<void, F, std::decay_t<Args>...>;
        // NOLINTNEXTLINE: the address of an F, as the constructor took it
        const auto f = reinterpret_cast<F>(const_cast<void*>(function));
        std::apply([&](const auto&... values) { Call::encode(out, f, values...); },
                   *args.get<std::tuple<std::decay_t<Args>...>>());
    }

    const void* function_ = nullptr;
    void (*encode_)(detail::WireWriter&, const void*, const InitArgs&) = nullptr;
    bool (*fits_)(const InitArgs&) = nullptr;
    std::string (*parameters_)() = nullptr;
};

/// Options of `ProcessPoolExecutor`, for designated initializers:
/// `futura::ProcessPoolExecutor pool{{.max_workers = 4, .task_timeout = 10s}};`
struct ProcessPoolOptions
{
    /// The most worker processes; none means `available_cpus()`. Must be positive if given.
    std::optional<int> max_workers = std::nullopt;
    /// A worker exits and is replaced after running this many tasks (none: never), to contain
    /// leaks in the code it runs. Must be positive if given.
    std::optional<std::size_t> max_tasks_per_child = std::nullopt;
    /// Runs first in each new worker process, with `initargs`. If it throws (or the worker dies
    /// in it), the pool is broken: pending and later work fails with `BrokenProcessPool`.
    ProcessInitializer initializer = {};
    /// The initializer's arguments (Python's `initargs`): `.initargs = std::tuple{counter, 3}`;
    /// their types must be the initializer's parameters (after decay; a string literal is a
    /// `std::string`), else the constructor throws `std::invalid_argument`.
    InitArgs initargs = {};
    StartMethod start_method = StartMethod::spawn;
    /// Contiguous data of trivially copyable values (a `std::vector` or `std::span` argument or
    /// result) of at least this many bytes travels in shared memory instead of through the
    /// channel (joblib's `max_nbytes`). 0: never.
    std::size_t share_threshold = std::size_t{1} << 20;
    /// Bytes of shared memory segments whose pages are already backed that the pool, and each
    /// worker, keeps for automatic sharing to write the next large vector into (a repeated
    /// transfer then writes into warm pages instead of faulting in fresh ones). Given back once
    /// unused for a second; a vector larger than this travels in a fresh segment. 0: none.
    std::size_t segment_cache_bytes = std::size_t{256} << 20;
    /// A task running longer than this has its worker killed and fails with `TimeoutError`; the
    /// worker is replaced. None: no limit.
    std::optional<std::chrono::duration<double>> task_timeout = std::nullopt;
    /// Variables set in the workers' environment (on top of the parent's).
    std::map<std::string, std::string> environment = {};
    /// The workers' working directory; empty: the parent's.
    std::string working_directory = {};
    /// Threads that OpenMP/BLAS-style libraries may use in each worker (sets `OMP_NUM_THREADS`,
    /// `OPENBLAS_NUM_THREADS`, `MKL_NUM_THREADS` unless the environment sets them): none means
    /// `max(1, available_cpus() / max_workers)`, so workers do not oversubscribe the CPUs
    /// (joblib's `inner_max_num_threads`). 0 leaves the variables alone.
    std::optional<std::size_t> inner_max_num_threads = std::nullopt;
};

/// Runs calls in worker processes, like Python's `concurrent.futures.ProcessPoolExecutor`.
///
/// Workers run this same program (no registration, no separate worker binary) and are started on
/// demand, one per submission while none is idle, up to `max_workers`. A task may crash its
/// worker (signal, `abort`, `exit`, out of memory): only that task's future fails, with
/// `WorkerCrashed`, and the worker is replaced. Workers exit when the parent does, however it
/// ends.
///
/// What may be submitted: function pointers, captureless lambdas and serializable function
/// objects, with `transferable` arguments and results (see transferable.hpp). Through
/// `ProcessPoolExecutor` itself, anything else is a compile-time error; through `Executor&`, it
/// fails the future with `std::invalid_argument`.
///
/// @par Example
/// @code
/// int square(int x) { return x * x; }
/// futura::ProcessPoolExecutor pool;
/// auto f = pool.submit(square, 7); // runs in a worker process
/// int r = f.result();              // 49
/// @endcode
///
/// @par Thread safety
/// Distinct objects: safe. Shared objects: safe.
///
/// @note The program must be linked with `-Wl,--wrap=main` (the CMake target `futura::futura`
/// and the b2 target add it), so that a worker never runs `main`; otherwise the pool breaks when
/// it would start its first worker (`BrokenProcessPool` saying so). A pool may live at
/// namespace scope.
class ProcessPoolExecutor final : public Executor
{
public:
    /// Starts no worker yet. @throws std::invalid_argument on bad options (a `task_timeout` that
    /// is NaN or not positive; an infinite or huge one means no limit).
    explicit ProcessPoolExecutor(ProcessPoolOptions options = {});

    /// `shutdown({.wait = true})`.
    ~ProcessPoolExecutor() override;

    ProcessPoolExecutor(const ProcessPoolExecutor&) = delete;
    ProcessPoolExecutor& operator=(const ProcessPoolExecutor&) = delete;
    ProcessPoolExecutor(ProcessPoolExecutor&&) = delete;
    ProcessPoolExecutor& operator=(ProcessPoolExecutor&&) = delete;

    /// As `Executor::submit`, checking at compile time that the call can travel to a worker.
    template <class F, class... Args>
        requires(std::invocable<std::decay_t<F>, std::decay_t<Args>...>)
    [[nodiscard]] auto submit(F&& f, Args&&... args)
    {
        // The arguments as submit stores them: a string literal for a std::string parameter
        // is a std::string.
        using R = detail::submit_result_t<F, detail::submitted_t<F, Args, Args...>...>;
        static_assert(
            detail::transferable_callable<std::decay_t<F>>,
            "futura::ProcessPoolExecutor::submit: the callable cannot be sent to a worker "
            "process: use a function pointer, a captureless lambda, or a function object "
            "with a Boost.Serialization serialize()");
        static_assert(detail::arguments_travel<F, Args...>,
                      "futura::ProcessPoolExecutor::submit: an argument cannot be sent to a worker "
                      "process (its position and type are named just above): arguments must be "
                      "futura::transferable (trivially copyable data without pointers, "
                      "std::string, standard containers of such values, or classes with a "
                      "Boost.Serialization serialize())");
        static_assert(detail::transferable_value<R> && detail::transferable_result<R>,
                      "futura::ProcessPoolExecutor::submit: the result cannot be sent back from a "
                      "worker process: it must be futura::transferable, and not a view (return a "
                      "std::vector or a futura::SharedArray, not a std::span)");
        return submit_as<detail::TravellingTasks>(std::forward<F>(f), std::forward<Args>(args)...);
    }

    /// As `Executor::map`, checking at compile time that the calls can travel to a worker.
    template <class F, std::ranges::input_range Range>
        requires(detail::mappable<F, Range>)
    [[nodiscard]] auto map(F&& f, Range&& inputs, MapOptions options = {})
    {
        static_assert(detail::transferable_callable<std::decay_t<F>>,
                      "futura::ProcessPoolExecutor::map: the callable cannot be sent to a worker "
                      "process: use a function pointer, a captureless lambda, or a function object "
                      "with a Boost.Serialization serialize()");
        static_assert(
            detail::transferable_value<std::remove_cvref_t<std::ranges::range_value_t<Range>>>,
            "futura::ProcessPoolExecutor::map: the inputs cannot be sent to a worker process: "
            "they must be futura::transferable");
        return map_as<detail::TravellingTasks>(std::forward<F>(f), std::forward<Range>(inputs),
                                               options);
    }

    /// As `Executor::starmap`.
    template <class F, std::ranges::input_range Range>
        requires(std::copy_constructible<std::decay_t<F>>)
    [[nodiscard]] auto starmap(F&& f, Range&& inputs, MapOptions options = {})
    {
        return Executor::starmap<F, Range, detail::TravellingTasks>(
            std::forward<F>(f), std::forward<Range>(inputs), options);
    }

    /// Sends SIGTERM to every worker and shuts the pool down without waiting (Python 3.14's
    /// `terminate_workers`): running tasks fail with `WorkerCrashed`, pending ones are cancelled.
    void terminate_workers();

    /// As `terminate_workers`, with SIGKILL (Python 3.14's `kill_workers`).
    void kill_workers();

    /// Stops the task of `future` even if it is running: a pending task is cancelled; a running
    /// one has its worker killed (and replaced) and its future fails with `CancelledError`.
    /// @return false if the future was already done.
    template <class T>
    bool kill(const Future<T>& future) // NOLINT(modernize-use-nodiscard)
    {
        return kill_task(detail::state_of(future));
    }

    class Impl;

private:
    void schedule(detail::TaskPtr task) override;
    void do_shutdown(const ShutdownOptions& options) override;
    [[nodiscard]] std::size_t do_max_workers() const noexcept override;
    [[nodiscard]] std::size_t do_share_threshold() const noexcept override;
    [[nodiscard]] ExecutorStats do_stats() const override;
    [[nodiscard]] std::size_t do_auto_chunksize(std::optional<std::size_t> total,
                                                detail::CallKey key) const override;
    bool kill_task(detail::SharedStateBase* state);

    std::unique_ptr<Impl> impl_;
};

} // namespace futura
