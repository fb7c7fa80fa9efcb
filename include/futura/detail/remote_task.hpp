// The hooks of a task that executors running calls in other processes use (the process pool;
// any executor that sends calls over a wire): start, encode, complete from the answer, stop.
// Only those executors include this; the core's tasks reach it through `TaskBase::remote()`.
#pragma once

#include <futura/detail/shared_state.hpp>

#include <boost/smart_ptr/intrusive_ptr.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <typeinfo>

namespace futura::detail {

class WireReader;
class WireWriter;

/// Stops a running task for good (terminal cancellation), for executors that can: a process
/// pool kills the worker running it. Reference-counted, so that a task may outlive its pool
/// (the pool detaches it when it goes) without a dangling pointer.
class TaskTerminator
{
public:
    TaskTerminator() = default;
    TaskTerminator(const TaskTerminator&) = delete;
    TaskTerminator& operator=(const TaskTerminator&) = delete;

    /// Cancels `state` if pending, stops it if running. @return false if it was done already.
    virtual bool terminate(SharedStateBase* state) = 0;

    friend void intrusive_ptr_add_ref(TaskTerminator* terminator) noexcept
    {
        terminator->references_.fetch_add(1, std::memory_order_relaxed);
    }
    friend void intrusive_ptr_release(TaskTerminator* terminator) noexcept
    {
        if (terminator->references_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            delete terminator;
        }
    }

protected:
    virtual ~TaskTerminator() = default;

private:
    std::atomic<std::size_t> references_{0};
};

/// A task as an executor that runs calls in other processes sees it, beside its `TaskBase`:
/// start, encode, then complete from the worker's answer (or `TaskBase::discard`).
class RemoteTask
{
public:
    /// Set by an executor that can stop the task while it runs; written before the task is
    /// shared with other threads (in `schedule`), constant after.
    boost::intrusive_ptr<TaskTerminator>
        terminator; // NOLINT(misc-non-private-member-variables-in-classes)

    RemoteTask() = default;
    RemoteTask(const RemoteTask&) = delete;
    RemoteTask& operator=(const RemoteTask&) = delete;

    /// pending -> running. @return false if the future was cancelled (then `discard` it).
    virtual bool start() noexcept = 0;

    /// Appends the call's wire form. @return false, appending nothing, if it cannot travel.
    virtual bool encode_call(WireWriter& out) const = 0;

    /// Says why the call cannot travel to another process, naming its types.
    [[nodiscard]] virtual std::string not_transferable_message() const = 0;

    /// Completes the future with the value a worker encoded and drops the executor's reference.
    virtual void complete_from(WireReader& result) noexcept = 0;

    /// The start of a large answer, whose last `unread` bytes have not arrived (after the run
    /// time, `held` holds the rest of what came): where the result can take those bytes
    /// straight into its own storage (a vector of plain values that they end exactly), it makes
    /// the result, copies what `held` has of it and returns the storage still to fill (`unread`
    /// bytes), for `complete_from_received` once filled. Otherwise (any other result type, or
    /// bytes that do not add up: `complete_from` then decodes the whole frame and says what is
    /// wrong) it returns an empty span and keeps nothing.
    virtual std::span<char> receive_result_into(WireReader& held, std::uint64_t unread) noexcept
    {
        (void)held;
        (void)unread;
        return {};
    }

    /// Completes the future with the result `receive_result_into` made, once filled, and drops
    /// the executor's reference. Called only after `receive_result_into` returned storage.
    virtual void complete_from_received() noexcept {}

protected:
    ~RemoteTask() = default;
};

/// The message for a call whose callable `f`, arguments `args` or result `r` cannot travel.
std::string not_transferable_message(const std::type_info& f,
                                     std::initializer_list<const std::type_info*> args,
                                     const std::type_info& r);

/// The message for a task without a wire form (`TaskBase::remote()` is null) given to an
/// executor that runs calls in other processes: it was submitted through `Executor&` where the
/// process transport was not included. `executor` names the executor.
std::string untravelled_message(const char* executor);

} // namespace futura::detail
