// futura::MpiPoolExecutor and futura::MpiCommExecutor: the Executor on MPI ranks (target
// futura::mpi), as mpi4py.futures offers MPIPoolExecutor and MPICommExecutor.
#pragma once

#include <futura/detail/mpi_node_local.hpp>
#include <futura/detail/travelling_task.hpp>
#include <futura/executor.hpp>
#include <futura/initializer.hpp>
#include <futura/process_pool_executor.hpp>

#include <cstddef>
#include <memory>
#include <mpi.h>
#include <optional>
#include <ranges>
#include <type_traits>
#include <utility>

namespace futura {

namespace detail::mpi {
class RootExecutor;
} // namespace detail::mpi

/// Where an `MpiPoolExecutor`'s workers come from.
enum class MpiWorkers
{
    /// Pre-started ranks if this is rank 0 of a job started with several (`mpiexec -n N`),
    /// else spawned.
    automatic,
    /// `MPI_Comm_spawn` of this same executable, which serves as a worker and never runs `main`.
    spawned,
    /// Ranks 1..N-1 of `MPI_COMM_WORLD`, which served as workers instead of running `main`.
    pre_started,
};

/// Options of `MpiPoolExecutor`, for designated initializers.
struct MpiPoolOptions
{
    /// The most workers. Spawned: none means `FUTURA_MPI_MAX_WORKERS` from the environment,
    /// else the MPI universe size minus the world size, else 1. Pre-started: none (or more than
    /// there are) means every pre-started rank. Must be positive if given.
    std::optional<int> max_workers = std::nullopt;
    /// Runs first on each worker, with `initargs` (a function or captureless lambda, as for
    /// the process pool). If it throws, the pool is broken: pending and later work fails with
    /// `BrokenMpiPool`.
    ProcessInitializer initializer = {};
    /// The initializer's arguments (Python's `initargs`): `.initargs = std::tuple{path, 3}`.
    /// They travel by value to every worker; node-local handles are refused
    /// (`std::invalid_argument`), as are arguments that do not fit the initializer's parameters.
    InitArgs initargs = {};
    MpiWorkers workers = MpiWorkers::automatic;
};

namespace detail::mpi {

/// Arguments and results that can go to another host.
template <class... T>
inline constexpr bool cross_host = !(node_local<T> || ...);

} // namespace detail::mpi

/// Runs calls on MPI ranks, like mpi4py's `MPIPoolExecutor`: the same `Executor` as
/// `ProcessPoolExecutor` (change one line), with workers on every node of a cluster.
///
/// Every rank runs this same program: functions travel as in the process pool (function
/// pointers, captureless lambdas, serializable function objects; no registration). Before the
/// first task, each worker's build identity (the executable's ELF build id) is compared with
/// the root's: a mismatch breaks the pool with an error naming the host and rank.
///
/// Node-local values (`SharedArray`, `MappedArray`, `SharedValue`, shared containers, mutable
/// spans) cannot go to another host: a compile-time error through `MpiPoolExecutor`, a
/// `std::invalid_argument` in the future through `Executor&`.
///
/// @par Example
/// @code
/// int square(int x) { return x * x; }
/// futura::MpiPoolExecutor pool; // was: futura::ProcessPoolExecutor pool;
/// int r = pool.submit(square, 7).result(); // 49, computed on another rank
/// @endcode
///
/// @par Thread safety
/// Distinct objects: safe. Shared objects: safe.
///
/// @note Unlike a process pool, a crashed rank usually ends the whole MPI job (Open MPI aborts
/// it); there is no `kill` and no `task_timeout`. See doc/mpi.md.
class MpiPoolExecutor final : public Executor
{
public:
    /// Starts (or claims) the workers. @throws std::invalid_argument on bad options
    /// (`max_workers <= 0`, `initargs` that do not fit the initializer or refer to this node's
    /// memory), std::runtime_error if MPI cannot provide what is needed,
    /// boost::mpi::exception if spawning fails.
    explicit MpiPoolExecutor(MpiPoolOptions options = {});

    /// `shutdown({.wait = true})`.
    ~MpiPoolExecutor() override;

    MpiPoolExecutor(const MpiPoolExecutor&) = delete;
    MpiPoolExecutor& operator=(const MpiPoolExecutor&) = delete;
    MpiPoolExecutor(MpiPoolExecutor&&) = delete;
    MpiPoolExecutor& operator=(MpiPoolExecutor&&) = delete;

    /// As `Executor::submit`, checking at compile time that the call can go to another host.
    template <class F, class... Args>
        requires std::invocable<std::decay_t<F>, std::decay_t<Args>...>
    [[nodiscard]] auto submit(F&& f, Args&&... args)
    {
        using R = detail::submit_result_t<F, detail::submitted_t<F, Args, Args...>...>;
        static_assert(
            detail::transferable_callable<std::decay_t<F>>,
            "futura::MpiPoolExecutor::submit: the callable cannot be sent to another rank: use "
            "a function pointer, a captureless lambda, or a function object with a "
            "Boost.Serialization serialize()");
        static_assert(detail::arguments_travel<F, Args...>,
                      "futura::MpiPoolExecutor::submit: an argument cannot be sent to another "
                      "rank: arguments must be futura::transferable");
        static_assert(detail::mpi::cross_host<std::decay_t<Args>...>,
                      "futura::MpiPoolExecutor::submit: an argument refers to memory or files of "
                      "this node (SharedArray, MappedArray, SharedValue, a shared container or a "
                      "mutable std::span), which other hosts cannot reach: pass the data by "
                      "value (a std::vector)");
        static_assert(detail::transferable_value<R> && detail::transferable_result<R> &&
                          detail::mpi::cross_host<R>,
                      "futura::MpiPoolExecutor::submit: the result cannot be sent back from "
                      "another host: it must be futura::transferable and not node-local");
        return Executor::submit(std::forward<F>(f), std::forward<Args>(args)...);
    }

    /// As `Executor::map`, checking at compile time that the calls can go to another host.
    template <class F, std::ranges::input_range Range>
        requires(detail::mappable<F, Range>)
    [[nodiscard]] auto map(F&& f, Range&& inputs, MapOptions options = {})
    {
        using Input = std::remove_cvref_t<std::ranges::range_value_t<Range>>;
        static_assert(detail::transferable_callable<std::decay_t<F>>,
                      "futura::MpiPoolExecutor::map: the callable cannot be sent to another "
                      "rank: use a function pointer, a captureless lambda, or a function object "
                      "with a Boost.Serialization serialize()");
        static_assert(detail::transferable_value<Input> && detail::mpi::cross_host<Input>,
                      "futura::MpiPoolExecutor::map: the inputs cannot be sent to another host: "
                      "they must be futura::transferable and not node-local");
        return Executor::map(std::forward<F>(f), std::forward<Range>(inputs), options);
    }

    using Executor::starmap;

    /// Whether the workers are pre-started ranks (else spawned).
    [[nodiscard]] bool pre_started() const noexcept;

private:
    void schedule(detail::TaskPtr task) override;
    void do_shutdown(const ShutdownOptions& options) override;
    [[nodiscard]] std::size_t do_max_workers() const noexcept override;
    [[nodiscard]] std::size_t do_share_threshold() const noexcept override;
    [[nodiscard]] ExecutorStats do_stats() const override;
    [[nodiscard]] std::size_t do_auto_chunksize(std::optional<std::size_t> total,
                                                detail::CallKey key) const override;

    std::unique_ptr<detail::mpi::RootExecutor> impl_;
    bool pre_started_ = false;
};

/// Options of `MpiCommExecutor`.
struct MpiCommOptions
{
    /// Runs first on each worker rank, with `initargs`; if it throws, the executor is broken.
    ProcessInitializer initializer = {};
    /// The initializer's arguments, as `MpiPoolOptions::initargs`.
    InitArgs initargs = {};
};

/// The collective form, like mpi4py's `MPICommExecutor`, for SPMD programs that use MPI
/// themselves: every rank of `comm` constructs one; on `root` it is an executor whose workers
/// are the other ranks, which serve inside their constructor until the root's executor is
/// shut down, then go on with the program.
///
/// @par Example
/// @code
/// futura::MpiSpmdProgram spmd; // at namespace scope: every rank runs main
/// int main() {
///     futura::MpiCommExecutor executor(MPI_COMM_WORLD, 0);
///     if (executor.is_root()) {
///         auto f = executor.submit(square, 7);
///     }
/// }
/// @endcode
///
/// @par Thread safety
/// Distinct objects: safe. Shared objects: safe (on the root).
class MpiCommExecutor final : public Executor
{
public:
    /// Collective over `comm` (which it duplicates). @throws std::invalid_argument if `root`
    /// is not a rank of `comm`, or on bad `initargs` (on the root; the others are not asked).
    explicit MpiCommExecutor(MPI_Comm comm = MPI_COMM_WORLD, int root = 0,
                             MpiCommOptions options = {});
    ~MpiCommExecutor() override;

    MpiCommExecutor(const MpiCommExecutor&) = delete;
    MpiCommExecutor& operator=(const MpiCommExecutor&) = delete;
    MpiCommExecutor(MpiCommExecutor&&) = delete;
    MpiCommExecutor& operator=(MpiCommExecutor&&) = delete;

    /// Whether this rank is the root (the others served in the constructor; on them, `submit`
    /// throws `ShutdownError`).
    [[nodiscard]] bool is_root() const noexcept { return impl_ != nullptr; }

private:
    void schedule(detail::TaskPtr task) override;
    void do_shutdown(const ShutdownOptions& options) override;
    [[nodiscard]] std::size_t do_max_workers() const noexcept override;
    [[nodiscard]] ExecutorStats do_stats() const override;
    [[nodiscard]] std::size_t do_auto_chunksize(std::optional<std::size_t> total,
                                                detail::CallKey key) const override;

    std::unique_ptr<detail::mpi::RootExecutor> impl_;
    MPI_Comm comm_ = MPI_COMM_NULL;
};

/// Declares, at namespace scope, a program whose every rank runs `main` (an SPMD program that
/// uses `MpiCommExecutor`): without it, ranks 1..N-1 of `mpiexec -n N` serve as
/// `MpiPoolExecutor` workers and never run `main`.
/// @code
/// const futura::MpiSpmdProgram spmd;
/// @endcode
struct MpiSpmdProgram
{
    MpiSpmdProgram() noexcept;
};

} // namespace futura
