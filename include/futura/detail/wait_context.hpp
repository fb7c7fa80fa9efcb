// How the calling thread blocks in futura's waits, so that a pool worker waiting on a future
// keeps running its pool's queued tasks instead of deadlocking the pool.
#pragma once

#include <futura/detail/blocking.hpp>
#include <futura/detail/deadline.hpp>
#include <futura/detail/parker.hpp>

#include <memory>

namespace futura::detail {

class SharedStateBase;

/// Installed (thread-locally) by a pool worker thread for as long as it runs.
///
/// A worker that waits for a future first runs the awaited task itself if it is still queued in
/// its pool; otherwise it blocks, and the pool counts it out of its `max_workers` meanwhile,
/// starting another thread if queued work would otherwise have none. Either way, a task that
/// waits for work of its own pool cannot deadlock it. (Running other queued tasks while waiting
/// instead could run one that waits for a task further down the same stack: a deadlock.)
class WaitContext
{
public:
    virtual ~WaitContext() = default;

    /// If the task of `awaited` is queued in this thread's pool, takes it out of the queue and
    /// runs it now. @return whether it did.
    virtual bool run_if_queued(SharedStateBase& awaited) = 0;

    /// The calling worker is about to block: the pool may start a thread to replace it.
    virtual void begin_blocking() = 0;

    /// The calling worker no longer blocks.
    virtual void end_blocking() noexcept = 0;

    /// The parker that completing futures unpark to wake this thread.
    [[nodiscard]] virtual const std::shared_ptr<Parker>& parker() noexcept = 0;
};

/// The calling thread's context, or null when it is not a pool worker.
[[nodiscard]] WaitContext* current_wait_context() noexcept;

/// Installs `context` for the calling thread (null to remove it).
void set_current_wait_context(WaitContext* context) noexcept;

/// The parker that wakes the calling thread: its worker's when it is a pool worker, otherwise
/// one of its own, kept for the life of the thread.
[[nodiscard]] const std::shared_ptr<Parker>& current_parker();

/// Tells the calling worker's pool that it blocks, for the scope of this object.
class BlockingScope
{
public:
    BlockingScope() : context_(current_wait_context())
    {
        if (context_ != nullptr) {
            context_->begin_blocking();
        }
    }
    BlockingScope(const BlockingScope&) = delete;
    BlockingScope& operator=(const BlockingScope&) = delete;
    ~BlockingScope()
    {
        if (context_ != nullptr) {
            context_->end_blocking();
        }
    }

private:
    WaitContext* context_;
};

/// Blocks until `ready()` holds or the deadline passes. Whoever makes `ready()` true must unpark
/// `current_parker()` afterwards. @return `ready()` at the end.
template <class Ready>
bool block_until(Ready&& ready, Deadline deadline)
{
    if (ready()) {
        return true;
    }
    check_may_block(deadline);
    const BlockingScope blocking;
    Parker& parker = *current_parker();
    while (!ready()) {
        if (!parker.park(deadline)) {
            return ready();
        }
    }
    return true;
}

} // namespace futura::detail
