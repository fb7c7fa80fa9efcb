// The value-independent part of a future's shared state: the state word's transitions, waiting
// on it (spinning, then a futex, or helping in a pool's worker), and the done-callbacks.
#include <futura/detail/continuation.hpp>
#include <futura/detail/futex.hpp>
#include <futura/detail/parker.hpp>
#include <futura/detail/shared_state.hpp>
#include <futura/detail/wait_context.hpp>
#include <futura/detail/wait_hook.hpp>
#include <futura/errors.hpp>

#include <exception>
#include <mutex>

namespace futura::detail {

bool SharedStateBase::try_start() noexcept
{
    auto word = word_.load(std::memory_order_relaxed);
    while (phase_of(word) == Phase::pending) {
        const auto running = (word & ~phase_mask) | static_cast<std::uint32_t>(Phase::running);
        if (word_.compare_exchange_weak(word, running, std::memory_order_acq_rel)) {
            return true;
        }
    }
    return false;
}

bool SharedStateBase::set_running_or_notify_cancel()
{
    if (try_start()) {
        return true;
    }
    if (phase() == Phase::cancelled) {
        return false;
    }
    throw InvalidStateError("futura::Promise::set_running_or_notify_cancel: the future is already "
                            "running or done; call it once, before setting the result");
}

bool SharedStateBase::cancel() noexcept
{
    auto word = word_.load(std::memory_order_relaxed);
    for (;;) {
        const Phase now = phase_of(word);
        if (now == Phase::cancelled) {
            return true;
        }
        if (now != Phase::pending) {
            return false;
        }
        const auto cancelled = (word & ~phase_mask) | static_cast<std::uint32_t>(Phase::cancelled);
        if (word_.compare_exchange_weak(word, cancelled, std::memory_order_acq_rel)) {
            on_cancel();
            notify_done(word);
            return true;
        }
    }
}

bool SharedStateBase::cancel_running() noexcept
{
    auto word = word_.load(std::memory_order_relaxed);
    while (phase_of(word) == Phase::running) {
        const auto cancelled = (word & ~phase_mask) | static_cast<std::uint32_t>(Phase::cancelled);
        if (word_.compare_exchange_weak(word, cancelled, std::memory_order_acq_rel)) {
            notify_done(word);
            return true;
        }
    }
    return false;
}

bool SharedStateBase::try_claim() noexcept
{
    auto word = word_.load(std::memory_order_relaxed);
    for (;;) {
        const Phase now = phase_of(word);
        if (now != Phase::pending && now != Phase::running) {
            return false;
        }
        const auto claimed = (word & ~phase_mask) | static_cast<std::uint32_t>(Phase::completing);
        if (word_.compare_exchange_weak(word, claimed, std::memory_order_acquire)) {
            return true;
        }
    }
}

void SharedStateBase::publish() noexcept
{
    // completing -> finished in one add keeps the flag bits other threads may be setting.
    constexpr auto step =
        static_cast<std::uint32_t>(Phase::finished) - static_cast<std::uint32_t>(Phase::completing);
    notify_done(word_.fetch_add(step, std::memory_order_acq_rel));
}

void SharedStateBase::publish_exception(std::exception_ptr error) noexcept
{
    error_ = std::move(error);
    publish();
}

void SharedStateBase::set_exception(std::exception_ptr error)
{
    if (!try_set_exception(std::move(error))) {
        throw InvalidStateError("futura::Promise::set_exception: the future is already done "
                                "(finished or cancelled); a result can be set only once");
    }
}

bool SharedStateBase::try_set_exception(std::exception_ptr error) noexcept
{
    if (!try_claim()) {
        return false;
    }
    publish_exception(std::move(error));
    return true;
}

void SharedStateBase::notify_done(std::uint32_t previous) noexcept
{
    if ((previous & has_waiters) != 0) {
        futex_wake_all(word_);
    }
    if ((previous & has_callbacks) == 0) {
        return;
    }
    boost::intrusive::list<DoneCallback> taken;
    {
        // Registrations set has_callbacks under this mutex only while the state was not done,
        // so once we hold it, every callback registered before completion is in the list.
        const std::lock_guard lock(callbacks_mutex_);
        taken.splice(taken.end(), callbacks_);
    }
    // A callback may drop the last other reference to this state: keep it alive until done.
    add_ref();
    taken.clear_and_dispose([this](DoneCallback* callback) { callback->fire(*this); });
    release();
}

void SharedStateBase::add_callback(DoneCallback* callback) noexcept
{
    {
        const std::lock_guard lock(callbacks_mutex_);
        auto word = word_.load(std::memory_order_acquire);
        while (!is_done(word)) {
            if (word_.compare_exchange_weak(word, word | has_callbacks,
                                            std::memory_order_acq_rel)) {
                callbacks_.push_back(*callback);
                return;
            }
        }
    }
    callback->fire(*this);
}

bool SharedStateBase::remove_callback(DoneCallback* callback) noexcept
{
    const std::lock_guard lock(callbacks_mutex_);
    if (done()) {
        return false; // notify_done has taken, or will take, the list with it
    }
    callbacks_.erase(callbacks_.iterator_to(*callback));
    callback->dispose();
    return true;
}

void SharedStateBase::rethrow_if_failed() const
{
    if (phase() == Phase::cancelled) {
        throw CancelledError();
    }
    if (error_) {
        std::rethrow_exception(error_);
    }
}

bool SharedStateBase::wait(Deadline deadline) noexcept
{
    if (done()) {
        return true;
    }
    // An inline continuation deep in a chain may have left work for this thread to run later
    // (see continuation.hpp); the state awaited here may depend on it.
    if (run_deferred_continuations() && done()) {
        return true;
    }
    if (current_wait_context() != nullptr) {
        return wait_helping(deadline);
    }
    return wait_without_helping(deadline);
}

bool SharedStateBase::wait_without_helping(Deadline deadline) noexcept
{
    // While spinning, a transport that must be polled for its answers (MPI) may pick up the
    // one awaited here from this thread (wait_hook.hpp); then it sleeps as usual.
    if (spin_until([this] {
            if (done()) {
                return true;
            }
            poll_wait_hook();
            return done();
        })) {
        return true;
    }
    auto word = word_.load(std::memory_order_acquire);
    while (!is_done(word)) {
        if ((word & has_waiters) == 0 &&
            !word_.compare_exchange_weak(word, word | has_waiters, std::memory_order_acquire)) {
            continue;
        }
        word |= has_waiters;
        if (!futex_wait(word_, word, deadline)) {
            return done();
        }
        word = word_.load(std::memory_order_acquire);
    }
    return true;
}

bool SharedStateBase::wait_helping(Deadline deadline) noexcept
{
    // The task we wait for may sit in our own pool's queue: run it here and now.
    try {
        if (current_wait_context()->run_if_queued(*this) && done()) {
            return true;
        }
    } catch (...) { // no memory to look it up: wait as anyone would
    }
    try {
        const BlockingScope blocking; // the pool may start a thread in our place
        return wait_without_helping(deadline);
    } catch (...) { // the pool could not start a thread: wait all the same
        return wait_without_helping(deadline);
    }
}

} // namespace futura::detail
