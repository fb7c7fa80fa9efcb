// Starting a worker process, by spawn (this program afresh) or fork, with its channel as file
// descriptor 3 and its stderr on a pipe the pool reads.
#pragma once

#include <futura/process_pool_executor.hpp>

#include <cstddef>
#include <string>
#include <sys/types.h>
#include <vector>

namespace futura::detail {

/// The file descriptor a worker finds its channel on.
inline constexpr int worker_channel_fd = 3;

/// The environment of the pool's workers: the parent's, the inner thread limits, the user's
/// variables, and the markers that make a started copy of the program a worker.
std::vector<std::string> worker_environment(const ProcessPoolOptions& options,
                                            std::size_t max_workers);

/// How to start the workers of one pool.
struct WorkerLaunch
{
    StartMethod method = StartMethod::spawn;
    std::vector<std::string> environment; ///< for spawn (a forked worker sets it itself)
    std::string working_directory;        ///< empty: the parent's
    std::size_t share_threshold = 0;
    std::size_t segment_cache_bytes = 0;
};

/// Starts a worker whose channel is `channel` and whose stderr is `err` (both closed in the
/// parent by the caller afterwards). @return its pid. @throws std::system_error on failure.
pid_t launch_worker(const WorkerLaunch& launch, int channel, int err);

} // namespace futura::detail
