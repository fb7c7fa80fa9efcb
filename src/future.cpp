// The compiled part of futures: futex waits, parking, and the value-independent shared state.
#include <futura/detail/continuation.hpp>
#include <futura/detail/futex.hpp>
#include <futura/detail/parker.hpp>
#include <futura/detail/shared_state.hpp>
#include <futura/detail/task.hpp>
#include <futura/detail/wait_context.hpp>
#include <futura/errors.hpp>
#include <futura/future.hpp>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <linux/futex.h>
#include <memory>
#include <sched.h>
#include <sys/syscall.h>
#include <typeinfo>
#include <unistd.h>

namespace futura::detail {

// ---------------------------------------------------------------------------------------------
// futex

namespace {

long futex(const std::atomic<std::uint32_t>& word, int op, std::uint32_t value,
           const timespec* timeout, std::uint32_t mask) noexcept
{
    // The kernel reads the word; it never writes it, so the const_cast is only for the ABI.
    auto* address = const_cast<std::atomic<std::uint32_t>*>(&word); // NOLINT
    return syscall(SYS_futex, address, op, value, timeout, nullptr, mask);
}

} // namespace

bool futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
                Deadline deadline) noexcept
{
    static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
    if (deadline == never) {
        futex(word, FUTEX_WAIT_PRIVATE, expected, nullptr, 0);
        return true;
    }
    if (Clock::now() >= deadline) {
        return false;
    }
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, which is what steady_clock
    // is on Linux: no drift from converting to a relative timeout on every retry.
    const auto since_epoch = deadline.time_since_epoch();
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
    timespec at{};
    at.tv_sec = static_cast<time_t>(seconds.count());
    at.tv_nsec = static_cast<long>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - seconds).count());
    if (futex(word, FUTEX_WAIT_BITSET_PRIVATE, expected, &at, FUTEX_BITSET_MATCH_ANY) == -1 &&
        errno == ETIMEDOUT) {
        return false;
    }
    return true;
}

void futex_wake_all(const std::atomic<std::uint32_t>& word) noexcept
{
    futex(word, FUTEX_WAKE_PRIVATE, static_cast<std::uint32_t>(INT32_MAX), nullptr, 0);
}

void futex_wake_one(const std::atomic<std::uint32_t>& word) noexcept
{
    futex(word, FUTEX_WAKE_PRIVATE, 1, nullptr, 0);
}

// ---------------------------------------------------------------------------------------------
// Parker

namespace {

// How long a thread about to sleep first spins. A futex sleep followed by a wake costs the waker
// a system call and the sleeper microseconds of scheduler latency; a result that arrives within
// this window costs neither.
constexpr auto spin_window = std::chrono::microseconds(20);

// Spin first with pause, then with sched_yield: when the thread we wait for shares our CPU (on a
// 2-core machine it often does), a pure busy-wait would keep it off the CPU for the whole window,
// whereas yielding lets it run and deliver at once. On an otherwise idle CPU, yield returns
// immediately and the loop is a plain spin.
template <class Done>
bool spin_until(Done&& done) noexcept
{
    for (int i = 0; i < 32; ++i) {
        if (done()) {
            return true;
        }
        cpu_relax();
    }
    const auto until = Clock::now() + spin_window;
    do {
        sched_yield();
        if (done()) {
            return true;
        }
    } while (Clock::now() < until);
    return false;
}

} // namespace

bool Parker::park(Deadline deadline) noexcept
{
    if (spin_until([this] { return word_.load(std::memory_order_acquire) == permit; })) {
        word_.store(empty, std::memory_order_relaxed);
        return true;
    }
    std::uint32_t seen = empty;
    for (;;) {
        if (seen == permit) {
            // Only the owner resets the word, so exchange cannot lose a concurrent permit.
            word_.store(empty, std::memory_order_relaxed);
            return true;
        }
        if (seen == empty &&
            !word_.compare_exchange_strong(seen, sleeping, std::memory_order_acquire)) {
            continue; // a permit arrived: `seen` now holds it
        }
        if (!futex_wait(word_, sleeping, deadline)) {
            // Timed out; a permit may still have raced in.
            seen = sleeping;
            if (word_.compare_exchange_strong(seen, empty, std::memory_order_acquire)) {
                return false;
            }
            continue;
        }
        seen = word_.load(std::memory_order_acquire);
    }
}

void Parker::unpark() noexcept
{
    if (word_.exchange(permit, std::memory_order_release) == sleeping) {
        futex_wake_one(word_);
    }
}

// ---------------------------------------------------------------------------------------------
// Wait contexts

namespace {
thread_local WaitContext* this_thread_context = nullptr;
} // namespace

WaitContext* current_wait_context() noexcept { return this_thread_context; }

void set_current_wait_context(WaitContext* context) noexcept { this_thread_context = context; }

namespace {
thread_local const char* blocking_forbidden = nullptr; // why, on a thread that must not block
} // namespace

void forbid_blocking(const char* why) noexcept { blocking_forbidden = why; }

void check_may_block(Deadline deadline)
{
    if (blocking_forbidden != nullptr && deadline > Clock::now()) {
        throw InvalidStateError(blocking_forbidden);
    }
}

const std::shared_ptr<Parker>& current_parker()
{
    if (this_thread_context != nullptr) {
        return this_thread_context->parker();
    }
    thread_local const std::shared_ptr<Parker> own = std::make_shared<Parker>();
    return own;
}

// ---------------------------------------------------------------------------------------------
// SharedStateBase

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
    if (spin_until([this] { return done(); })) {
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

namespace futura::detail {

void report_callback_exception(std::exception_ptr error) noexcept
{
    // Like Python's executor, which logs "exception calling callback for <Future>" and goes on.
    try {
        std::rethrow_exception(std::move(error));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "futura: a done callback threw %s: %s\n", typeid(e).name(), e.what());
    } catch (...) {
        std::fprintf(stderr, "futura: a done callback threw an exception not derived from "
                             "std::exception\n");
    }
}

} // namespace futura::detail
