// The root side of futura's MPI executors: a progress thread that sends calls to worker ranks
// where the process pool's scheduler says, and completes futures from their answers.
#pragma once

#include <futura/detail/task.hpp>
#include <futura/executor.hpp>

#include <cstddef>
#include <memory>
#include <mpi.h>
#include <optional>
#include <string>
#include <vector>

namespace futura::detail::mpi {

/// What the root's communicator is, and what to do with it at the end.
enum class Ownership
{
    pre_started, ///< the process-wide duplicate of MPI_COMM_WORLD: say goodbye, give it back
    spawned,     ///< merged from a spawn: tell the workers to exit, free and disconnect
    collective,  ///< MpiCommExecutor's duplicate: say goodbye; the executor frees it
};

struct RootSetup
{
    const char* executor_name = "MpiPoolExecutor"; ///< for messages
    MPI_Comm comm = MPI_COMM_NULL;
    MPI_Comm intercomm = MPI_COMM_NULL; ///< the spawn's, disconnected at the end
    int root = 0;
    std::vector<int> worker_ranks;
    Ownership ownership = Ownership::pre_started;
    /// The initializer's call with its arguments, as a task's call is encoded (none: empty).
    std::vector<char> initializer_call;
};

class RootExecutor
{
public:
    explicit RootExecutor(RootSetup setup);
    /// Shuts down, waits, and lets the communicator go.
    ~RootExecutor();
    RootExecutor(const RootExecutor&) = delete;
    RootExecutor& operator=(const RootExecutor&) = delete;

    void schedule(TaskPtr task);
    void shutdown(const ShutdownOptions& options);
    [[nodiscard]] std::size_t max_workers() const noexcept;
    [[nodiscard]] ExecutorStats stats() const;
    [[nodiscard]] std::size_t auto_chunksize(std::optional<std::size_t> total, CallKey key) const;

    class Impl;

private:
    std::unique_ptr<Impl> impl_;
};

} // namespace futura::detail::mpi
