// The worker-process side of ProcessPoolExecutor.
#pragma once

#include <cstddef>
#include <string>

namespace futura::detail {

/// The environment variable that tells a started copy of the program to be a worker, and
/// which file descriptor its channel to the parent is.
inline constexpr const char* worker_channel_variable = "FUTURA_WORKER_CHANNEL";
/// The channel key (32 hex digits), which a spawned worker adopts and removes at start.
inline constexpr const char* worker_key_variable = "FUTURA_WORKER_KEY";
/// The pid of the process that started this worker, which the worker must die with.
inline constexpr const char* worker_parent_variable = "FUTURA_WORKER_PARENT";
/// The pool's share_threshold, for the results a started worker sends back.
inline constexpr const char* worker_share_threshold_variable = "FUTURA_WORKER_SHARE_THRESHOLD";
/// The pool's segment_cache_bytes, for the warm segments a worker keeps for its results.
inline constexpr const char* worker_segment_cache_variable = "FUTURA_WORKER_SEGMENT_CACHE";

/// Whether this program's `main` is wrapped by futura (linked with `-Wl,--wrap=main`), i.e.
/// whether a copy of it started as a worker would run the worker loop instead of `main`.
[[nodiscard]] bool main_is_wrapped() noexcept;

/// Runs the worker loop on the channel `fd` until the parent closes it; never returns.
/// A `forked` worker (a fork of the parent, no exec) leaves with `_exit`: the atexit handlers
/// and static destructors in its memory are the parent's, not its own to run.
/// Results of at least `share_threshold` contiguous bytes go back in shared memory (0: never),
/// written into warm segments it keeps, up to `segment_cache_bytes`.
[[noreturn]] void run_worker(int fd, bool forked, std::size_t share_threshold,
                             std::size_t segment_cache_bytes);

/// Code that the wrapped `main` runs first, after static initialisation, in a process that is
/// not a process-pool worker: another futura library with workers of its own (futura::mpi)
/// registers it during static initialisation, so that a copy of the program started as one of
/// its workers serves there and never reaches `main`. It returns to let `main` run.
using BeforeMainHook = void (*)(int argc, char** argv);

/// Registers `hook` (one at most: a second registration replaces the first).
void set_before_main_hook(BeforeMainHook hook) noexcept;

/// Whether this process records where each exception is thrown, as a process-pool worker does,
/// so that a task's exception carries the stack of its throw (`current_exception_trace`), and
/// a map chunk's failed elements theirs: on while an MPI rank serves its root.
void record_exception_traces(bool on) noexcept;

/// In a catch block: the stack trace of the exception being handled, where it was thrown if
/// that was recorded, else here.
std::string current_exception_trace();

} // namespace futura::detail
