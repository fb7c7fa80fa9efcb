// futura: the exception hierarchy of the public contract.
#pragma once

#include <exception>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace futura {

/// The base of every error futura raises itself.
///
/// Tasks' own exceptions are not wrapped: `Future::result()` rethrows them as they were thrown.
class Error : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

/// The future was cancelled before its task ran (Python's `CancelledError`).
class CancelledError : public Error
{
public:
    CancelledError();
    using Error::Error;
};

/// A wait gave up because its timeout elapsed, or a task overran its time limit.
class TimeoutError : public Error
{
public:
    TimeoutError();
    using Error::Error;
};

/// An operation is not allowed in the object's current state, e.g. setting the result of a
/// future that is already done, or using a default-constructed `Future`.
class InvalidStateError : public Error
{
public:
    using Error::Error;
};

/// Work was submitted to an executor after `shutdown()` (Python: "cannot schedule new futures
/// after shutdown").
class ShutdownError : public Error
{
public:
    ShutdownError();
    using Error::Error;
};

/// The executor can no longer run work; every pending and later future fails with this.
class BrokenExecutor : public Error
{
public:
    using Error::Error;
};

/// A `ThreadPoolExecutor` is broken, e.g. because its `initializer` threw.
class BrokenThreadPool : public BrokenExecutor
{
public:
    using BrokenExecutor::BrokenExecutor;
};

/// A `ProcessPoolExecutor` is broken, e.g. because a worker could not be started.
class BrokenProcessPool : public BrokenExecutor
{
public:
    using BrokenExecutor::BrokenExecutor;
};

/// The worker process running a task died (signal, `abort`, `exit`, out of memory).
class WorkerCrashed : public BrokenProcessPool
{
public:
    using BrokenProcessPool::BrokenProcessPool;
};

/// A task in another process threw an exception whose type cannot be recreated here.
///
/// Carries the original type name, message and the worker's stack trace.
class RemoteError : public Error
{
public:
    RemoteError(std::string type_name, std::string message, std::string stack_trace);

    /// The demangled type name of the original exception.
    [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }
    /// The original `what()`.
    [[nodiscard]] const std::string& message() const noexcept { return message_; }
    /// Where the worker was when it threw, one frame per line.
    [[nodiscard]] const std::string& stack_trace() const noexcept { return stack_trace_; }

private:
    std::string type_name_;
    std::string message_;
    std::string stack_trace_;
};

/// A message between this process and a worker could not be made or read: truncated,
/// corrupted or hostile bytes from another process, or a call whose arguments (or result) hold
/// more shared arrays, shared values or files than one message can carry (253, Linux's limit on
/// descriptors per message; the same one counts once however many arguments refer to it).
class ProtocolError : public Error
{
public:
    using Error::Error;
};

/// A shared object (`SharedDict`, `SharedQueue`) is unusable: a process died in the middle of
/// changing it, while it held the object's lock and was writing, so its contents cannot be
/// trusted. Every later call on the object, in any process, throws this.
class BrokenSharedState : public Error
{
public:
    using Error::Error;
};

/// Shared memory ran out, or the system refused a segment that large (a `SharedArray`,
/// `SharedValue`, or a large argument shared automatically). A `std::bad_alloc`, so code that
/// handles running out of memory handles this too; `what()` says how much was asked for and why
/// it failed.
class SharedMemoryExhausted : public std::bad_alloc
{
public:
    explicit SharedMemoryExhausted(std::string message) : message_(std::move(message)) {}
    [[nodiscard]] const char* what() const noexcept override { return message_.c_str(); }

private:
    std::string message_;
};

/// The stack trace of a worker process where a task's exception was thrown (Python's
/// `_RemoteTraceback`, the `__cause__` of an exception from a `ProcessPoolExecutor`).
///
/// An exception of a standard or futura type that comes back from a worker is rethrown as its
/// own type, which also derives from `std::nested_exception` holding a `RemoteTraceback`: code
/// that catches the type works as before, and `futura::remote_stack_trace` or
/// `futura::describe` find where it was thrown. (`RemoteError` carries its trace itself.)
class RemoteTraceback : public Error
{
public:
    /// `type_name`: the demangled type of the exception it belongs to; `stack_trace`: one frame
    /// per line.
    RemoteTraceback(std::string type_name, std::string stack_trace);

    /// The demangled type name of the exception thrown in the worker.
    [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }
    /// Where the worker was when it threw, one frame per line.
    [[nodiscard]] const std::string& stack_trace() const noexcept { return stack_trace_; }

private:
    std::string type_name_;
    std::string stack_trace_;
};

/// The worker's stack trace of an exception that came back from a worker process, or none
/// for an exception thrown in this process (or one whose trace was not recorded).
///
/// @par Example
/// @code
/// try {
///     fut.result();
/// } catch (const std::domain_error& e) {
///     if (auto trace = futura::remote_stack_trace(std::current_exception())) {
///         std::cerr << "raised in a worker at:\n" << *trace;
///     }
/// }
/// @endcode
[[nodiscard]] std::optional<std::string> remote_stack_trace(const std::exception_ptr& error);

/// "What happened where" in one string, as Python prints a remote traceback: the exception's
/// type and message, the worker's stack trace if it came from a worker process, and the same
/// for each exception nested inside it (`std::nested_exception`). Null gives "no exception".
///
/// @par Example
/// @code
/// if (auto error = fut.exception()) {
///     std::cerr << futura::describe(error);
/// }
/// @endcode
[[nodiscard]] std::string describe(const std::exception_ptr& error);
/// A `SharedDict` has no room for another entry in the capacity it was made with.
class SharedDictFull : public Error
{
public:
    using Error::Error;
};

/// A `SharedVector` would grow beyond the `max_size` it was made with (std::vector's
/// `length_error`, but named: the limit is the vector's own, not the address space's).
class SharedVectorFull : public Error
{
public:
    using Error::Error;
};

/// A `SharedQueue::put` with a timeout found the queue full until the timeout (Python's
/// `queue.Full`).
class QueueFull : public TimeoutError
{
public:
    using TimeoutError::TimeoutError;
};

/// A `SharedQueue::get` with a timeout found the queue empty until the timeout (Python's
/// `queue.Empty`).
class QueueEmpty : public TimeoutError
{
public:
    using TimeoutError::TimeoutError;
};

/// A `SharedQueue` was closed: a `put` after `close()`, or a `get` once it is closed and empty
/// (Python 3.13's `queue.ShutDown`).
class QueueClosed : public Error
{
public:
    using Error::Error;
};

// ----- futura::mpi ---------------------------------------------------------------------------

/// An `MpiPoolExecutor` or `MpiCommExecutor` is broken: a worker rank runs another build of the
/// program, its initializer threw, or MPI failed.
class BrokenMpiPool : public BrokenExecutor
{
public:
    using BrokenExecutor::BrokenExecutor;
};

} // namespace futura
