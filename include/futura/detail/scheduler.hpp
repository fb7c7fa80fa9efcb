// The process pool's scheduling decisions, apart from processes and sockets: which worker gets
// the next call, how far ahead a busy worker may be sent calls, when to start a worker, and
// which calls sent ahead to take back for an idle one. The pool (and the tests, with simulated
// workers and a clock of their own) drive it through `SchedulerHost`.
//
// The invariant it keeps after every `dispatch`: no ready worker is idle while a call that has
// not started waits anywhere, in the parent or queued ahead behind another call on a worker.
#pragma once

#include <futura/detail/call_key.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

namespace futura::detail {

/// Learned durations per callable, per input element (a map chunk of n inputs counts n).
/// Measured by the worker around the call itself, so channel and wake-up times are left out.
/// Thread-safe.
class CallEstimates
{
public:
    /// Seconds one element of `key` is expected to take; none until one was measured.
    [[nodiscard]] std::optional<double> per_element(CallKey key) const;

    /// Records that `elements` elements of `key` ran in `seconds` (a moving average that
    /// follows change, but not one outlier alone).
    /// @return whether the estimate at least doubled: calls sent ahead by the old one may now
    ///         be too many.
    bool record(CallKey key, std::size_t elements, double seconds);

private:
    // The scheduler's thread records; `map` reads from any thread (its chunk size).
    mutable std::mutex mutex_; // guards seconds_per_element_
    // Bounded: a program that submits ever-new function objects must not grow it forever.
    static constexpr std::size_t max_keys = 4096;
    std::unordered_map<CallKey, double> seconds_per_element_;
};

/// A call waiting to be sent, as the scheduler sees it.
struct CallInfo
{
    CallKey key = 0;
    std::size_t elements = 1; ///< inputs it runs (a map chunk's size)
};

/// One call sent to a worker and not answered yet, in the order sent.
struct SentCall
{
    void* task = nullptr; ///< the host's own handle
    std::uint64_t id = 0; ///< the host's id of this call on its worker
    CallInfo info;
    /// Known to have started: a revocation found it claimed by the worker. (The front of a
    /// worker's queue is the one it runs next, or now; the others cannot have started.)
    bool started = false;
    /// Its estimated seconds when it was sent (infinite if unknown), filled in by the
    /// scheduler: placing a call sums those queued on each worker, without a lookup each.
    double seconds = 0;
    /// Its place in the order calls left the parent's queue, filled in by the scheduler (a call
    /// taken back keeps its place): calls taken back from several workers wait again in order.
    std::uint64_t order = 0;
};

/// What the scheduler needs its pool to do. Every call comes from `Scheduler::dispatch`.
class SchedulerHost
{
public:
    using Clock = std::chrono::steady_clock;

    /// The time now (the tests' simulation has a clock of its own).
    [[nodiscard]] virtual Clock::time_point now() const = 0;
    /// How many calls wait in the parent.
    [[nodiscard]] virtual std::size_t waiting() const = 0;
    /// The next call waiting in the parent (skipping cancelled ones), without taking it.
    virtual std::optional<CallInfo> peek_waiting() = 0;
    /// Takes the next waiting call (marking its future running) and sends it to `worker`.
    /// @return its id, or nothing if none was left or it could not be sent (its future is then
    ///         completed with the error, and the call gone).
    virtual std::optional<SentCall> send_next(std::size_t worker) = 0;
    /// Takes back a call sent to `worker` if the worker has not started it yet.
    /// @return whether it was taken back: then it never runs there.
    virtual bool try_revoke(std::size_t worker, const SentCall& call) = 0;
    /// A revoked call, to the front of the parent's waiting calls (calls of one revocation come
    /// in their original order, and go before those already waiting).
    virtual void wait_again(std::vector<SentCall> calls) = 0;
    /// Starts a worker process, which calls `Scheduler::add_worker`. @return false on failure.
    virtual bool start_worker() = 0;

protected:
    ~SchedulerHost() = default;
};

struct SchedulerOptions
{
    std::size_t max_workers = 1;
    /// A worker retires after this many calls (0: never); it is never sent more.
    std::size_t max_tasks_per_child = 0;
    /// A busy worker is sent calls ahead up to about this much estimated work, so that short
    /// calls travel in batches; idle workers always come first.
    std::chrono::duration<double> send_ahead = std::chrono::milliseconds(1);
    /// This many calls may always wait behind a busy worker's running one, whatever their
    /// estimates, so that a worker does not wait for the parent between calls. One for the
    /// process pool, whose parent is woken by the kernel when an answer comes; more where the
    /// parent notices answers later (the MPI pool's root polls, and on a loaded machine may not
    /// run for a time slice).
    std::size_t always_ahead = 1;
    /// And at most this many calls unanswered per worker.
    std::size_t max_unanswered = 64;
    /// A front call that has run this many times its estimate (and at least `overdue_floor`)
    /// was misjudged: the calls behind it are taken back.
    double overdue_factor = 10;
    std::chrono::duration<double> overdue_floor = std::chrono::milliseconds(1);
};

/// The scheduling state of a pool: its workers and the calls each was sent. Not thread-safe:
/// one thread (the pool's I/O thread) owns it.
class Scheduler
{
public:
    explicit Scheduler(SchedulerOptions options);

    // ----- workers --------------------------------------------------------------------------
    /// A worker is starting. @return its number, for the other calls.
    std::size_t add_worker();
    /// It can run calls now.
    void worker_ready(std::size_t worker);
    /// It takes no more calls (shutting down, or dying): what it was sent stays until answered.
    void stop_sending(std::size_t worker);
    /// It is gone. @return the calls it had not answered, oldest first.
    std::deque<SentCall> remove_worker(std::size_t worker);

    // ----- calls ----------------------------------------------------------------------------
    /// The worker answered its oldest call `id`, which ran for `seconds`.
    /// @return that call. @throws ProtocolError if `id` is not its oldest unanswered call.
    SentCall answered(std::size_t worker, std::uint64_t id, double seconds);
    /// Where the call of `task` is, if a worker was sent it and has not answered.
    struct Found
    {
        std::size_t worker;
        std::size_t position; ///< 0: the front, the call the worker runs now or next
        SentCall call;
    };
    [[nodiscard]] std::optional<Found> find(const void* task) const;
    /// Forgets a call the host revoked on its own (kill of a call sent ahead).
    void forget(std::size_t worker, std::uint64_t id);
    /// Notes that the worker started `id` (a revocation failed).
    void mark_started(std::size_t worker, std::uint64_t id);

    /// Sends waiting calls where they fit, takes back calls queued ahead on busy workers (when
    /// another worker is idle and nothing waits in the parent, or when the call they wait
    /// behind runs far longer than expected), and starts workers while calls wait (up to
    /// `max_workers`).
    void dispatch(SchedulerHost& host);

    /// The chunk size for `map` over `total` inputs of `key` (if known): about four chunks per
    /// worker, but none longer than `chunk_target` by the estimate, so that long calls still
    /// spread over all workers; single inputs while nothing is known. Any thread may ask.
    [[nodiscard]] std::size_t chunk_size(CallKey key, std::optional<std::size_t> total) const;

    // ----- for tests and the shutdown ---------------------------------------------------------
    /// Whether every worker has answered everything it was sent.
    [[nodiscard]] bool all_answered() const noexcept;
    /// The invariant: false if a ready worker that takes calls has none while a call that has
    /// not started waits in the parent (`waiting` > 0) or behind another call on some worker.
    [[nodiscard]] bool no_idle_worker_while_work_waits(std::size_t waiting) const;
    /// Calls sent to `worker` and not answered, oldest first.
    [[nodiscard]] const std::deque<SentCall>& unanswered(std::size_t worker) const;
    [[nodiscard]] const CallEstimates& estimates() const noexcept { return estimates_; }

    /// Tasks that wait behind another on some worker and have not started.
    [[nodiscard]] std::size_t queued_ahead() const noexcept;

private:
    struct Worker
    {
        std::size_t number;
        bool ready = false;
        bool sending = true;        // takes calls
        std::size_t sent = 0;       // calls sent over its life (revoked ones not counted)
        std::deque<SentCall> calls; // unanswered, oldest first
        // Since when the front call has been the front (about when it started): set by
        // `dispatch`, the only place that knows the time, for the front it first sees.
        std::optional<SchedulerHost::Clock::time_point> front_since;
        bool front_overdue_noted = false; // its estimate raised once, not at every dispatch
    };

    Worker* worker(std::size_t number);
    [[nodiscard]] const Worker* worker(std::size_t number) const;
    [[nodiscard]] bool takes_calls(const Worker& worker) const noexcept;
    /// The estimated seconds of `info`; none if never measured (such a call counts as long).
    [[nodiscard]] std::optional<double> estimate(const CallInfo& info) const;
    /// The worker that should run `info` next, or none if no worker has room for it.
    Worker* place(const CallInfo& info);
    /// Takes back calls queued ahead on the busiest workers for the idle ones.
    /// @return whether any call was taken back.
    bool rebalance(SchedulerHost& host);
    /// Gives calls taken back to the host to wait again, in the order they were first sent.
    void wait_again(SchedulerHost& host, std::vector<SentCall> taken);
    /// Whether `worker`'s front call has run far longer than its estimate: the estimate was
    /// wrong (a callable whose calls differ), so calls waiting behind it may wait for long.
    [[nodiscard]] bool overdue(const Worker& worker) const;
    /// `worker`'s front call is another one now, which started `since` (unknown: `dispatch`
    /// notes the time it first sees it).
    static void new_front(Worker& worker, std::optional<SchedulerHost::Clock::time_point> since);
    /// Takes back what waits too long on a worker because an estimate was wrong: every call
    /// behind an overdue front call, and, after an estimate grew, the calls sent ahead that no
    /// longer fit by it. They go ahead of the parent's waiting calls (they are older), in the
    /// order they were first sent.
    void take_back_misjudged(SchedulerHost& host);
    /// Takes back the not-started calls behind `worker`'s front from index `keep` on.
    void take_back_from(SchedulerHost& host, Worker& worker, std::size_t keep,
                        std::vector<SentCall>& taken);
    void start_workers(SchedulerHost& host);

    SchedulerOptions options_;
    std::vector<Worker> workers_;
    SchedulerHost::Clock::time_point now_{}; // of the current `dispatch`
    bool estimates_grew_ = false;            // since the last `dispatch`
    std::uint64_t next_order_ = 0;
    // The order of calls taken back and waiting again in the parent, kept for when they are
    // sent anew. Only such calls are in it: it is emptied whenever nothing waits.
    std::unordered_map<const void*, std::uint64_t> order_taken_back_;
    std::size_t next_number_ = 0;
    CallEstimates estimates_;
};

} // namespace futura::detail
