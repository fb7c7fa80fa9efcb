// How the calling thread blocks in futura's waits, so that a pool worker waiting on a future
// keeps running its pool's queued tasks instead of deadlocking the pool.
#pragma once

#include <futura/detail/deadline.hpp>
#include <futura/detail/parker.hpp>

#include <memory>

namespace futura::detail {

class SharedStateBase;

/// Installed (thread-locally) by a pool worker thread for as long as it runs.
class WaitContext
{
public:
    virtual ~WaitContext() = default;

    /// Runs one queued task of this thread's pool. @return false if none was queued.
    virtual bool run_one_pending_task() = 0;

    /// If the task of `awaited` is queued in this thread's pool, takes it out of the queue and
    /// runs it now. @return whether it did.
    virtual bool run_if_queued(SharedStateBase& awaited) = 0;

    /// Sleeps until `parker()` is unparked (a watched future finished, or new work was queued
    /// for this thread to help with) or the deadline passes. @return false on timeout.
    virtual bool park(Deadline deadline) = 0;

    /// The parker that both the pool and completing futures unpark to wake this thread.
    [[nodiscard]] virtual const std::shared_ptr<Parker>& parker() noexcept = 0;
};

/// The calling thread's context, or null when it is not a pool worker.
[[nodiscard]] WaitContext* current_wait_context() noexcept;

/// Installs `context` for the calling thread (null to remove it).
void set_current_wait_context(WaitContext* context) noexcept;

/// The parker that wakes the calling thread: its worker's when it is a pool worker, otherwise
/// one of its own, kept for the life of the thread.
[[nodiscard]] const std::shared_ptr<Parker>& current_parker();

/// Blocks until `ready()` holds or the deadline passes, helping the calling worker's pool
/// meanwhile. Whoever makes `ready()` true must unpark `current_parker()` afterwards.
/// @return `ready()` at the end.
template <class Ready>
bool block_until(Ready&& ready, Deadline deadline)
{
    WaitContext* context = current_wait_context();
    Parker* parker = context != nullptr ? nullptr : current_parker().get();
    while (!ready()) {
        if (context != nullptr) {
            if (context->run_one_pending_task()) {
                continue;
            }
            if (!context->park(deadline)) {
                return ready();
            }
        } else if (!parker->park(deadline)) {
            return ready();
        }
    }
    return true;
}

} // namespace futura::detail
