// MPI as futura's MPI executors use it: initialised (and finalised) only if the program does
// not, every call serialised under one lock, the identity of the running build, and the worker
// loop that ranks serving a root run.
#pragma once

#include <cstddef>
#include <mpi.h>
#include <mutex>
#include <optional>
#include <string>

namespace futura::detail::mpi {

/// Tells a worker rank to report another build identity than its own (for the tests of the
/// mismatch check).
inline constexpr const char* pretend_build_variable = "FUTURA_MPI_PRETEND_BUILD_ID";
/// On the command line of a spawned worker (the same executable): serve the parent.
inline constexpr const char* spawned_worker_argument = "--futura-mpi-worker";

/// Initialises MPI unless the program did (asking for MPI_THREAD_MULTIPLE; then MPI is
/// finalised at exit). @throws std::runtime_error if MPI provides less than
/// MPI_THREAD_SERIALIZED (futura calls MPI from its progress threads).
void ensure_initialized();

/// Held around every MPI call futura makes: under MPI_THREAD_SERIALIZED, no two threads may be
/// in MPI at once (and futura's progress threads are several, one per executor).
std::mutex& lock();

/// The thread level MPI provides.
int thread_level();

/// The ELF build id of this process's executable (hex), or its size and path if it has none.
std::string build_identity();

/// This host's name as MPI knows it.
std::string host_name();

/// Sets MPI_ERRORS_RETURN on `comm`: failures become exceptions, not an abort.
void errors_return(MPI_Comm comm);

/// A duplicate of MPI_COMM_WORLD shared with the pre-started worker ranks, if this process is
/// rank 0 of a job started with several ranks (and not an SPMD program). Only one executor at
/// a time may use it: @return nothing if there is none or another executor has it.
std::optional<MPI_Comm> claim_pre_started();
/// Gives it back (the executor said goodbye to every worker).
void release_pre_started();
/// How many pre-started worker ranks there are (0: none).
int pre_started_workers() noexcept;

/// Marks the program as SPMD: every rank runs main (set by futura::MpiSpmdProgram).
void declare_spmd() noexcept;

/// The worker loop over `comm`: serves calls from `root` until it says goodbye (or exit, if
/// `until_exit`). @return whether the root said exit.
bool serve(MPI_Comm comm, int root, bool until_exit);

} // namespace futura::detail::mpi
