// The root of an MPI executor. The scheduler (the process pool's, through SchedulerHost) and the
// calls in flight are guarded by one lock, the core: a submitting thread that finds it free
// sends the call itself (no hand-off to another thread before the call is on its way), and one
// progress thread per executor receives the answers, completes the futures and sends whatever
// could not be sent at once. It polls MPI (there is no way to wait for a message and a
// condition variable at once) with a backoff, and sleeps on the condition variable when nothing
// is in flight. A thread waiting for a future polls too, through the core's wait hook, during
// its spin window: the answer it waits for then needs no wake-up from the progress thread.
#include <futura/detail/admission.hpp>
#include <futura/detail/blocking.hpp>
#include <futura/detail/mpi_message.hpp>
#include <futura/detail/mpi_root_executor.hpp>
#include <futura/detail/mpi_runtime.hpp>
#include <futura/detail/protocol.hpp>
#include <futura/detail/remote_call.hpp>
#include <futura/detail/remote_task.hpp>
#include <futura/detail/scheduler.hpp>
#include <futura/detail/task_counts.hpp>
#include <futura/detail/task_queue.hpp>
#include <futura/detail/wait_hook.hpp>
#include <futura/errors.hpp>

#include <boost/mpi/exception.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <list>
#include <mutex>
#include <span>
#include <stdexcept>
#include <thread>
#include <unordered_set>

namespace futura::detail::mpi {

namespace {

using Outcome = TaskOutcome;

/// Calls that may always wait behind a busy worker's running one (the process pool: one). The
/// process pool's parent is woken by the kernel when an answer comes, and runs at once on the
/// core its worker leaves when it runs out of calls; this root polls, and while the workers keep
/// the cores busy it may not run for a time slice or more (measured: the answer of a call that
/// ended is received 0.5 ms later at the median, 2-3 ms at the 90th percentile, with three
/// ranks on two cores). One short call queued ahead is then often done before the root sends
/// the next, and the worker idles; three cover that. Calls queued behind a long one cost no
/// parallelism: an idle worker gets them back (request_revocations).
constexpr std::size_t always_ahead = 3;

} // namespace

class RootExecutor::Impl final : public SchedulerHost
{
    struct Worker
    {
        int rank = 0;
        std::size_t number = 0; // the scheduler's
        std::string host;
        std::uint64_t pid = 0;
        bool ready = false; // said hello, same build, initializer done
    };

    /// A future to complete once the core is let go: its done callbacks run user code, which
    /// may take its time, submit, or shut the executor down; none of that happens under the
    /// core, which submitting threads wait for.
    struct Completion
    {
        TaskBase* task;
        std::exception_ptr error;       ///< without `answer`: the failure (null: cancelled)
        std::optional<Incoming> answer; ///< the worker's `value` message, read up to the result

        void run() noexcept
        {
            if (!answer) {
                task->discard(error);
                return;
            }
            // The result follows the header, the call's id and its run time.
            WireReader reader(std::span<const char>(answer->bytes)
                                  .subspan(answer->body_offset() + 2 * sizeof(std::uint64_t)));
            task->remote()->complete_from(reader);
        }
    };

    /// Holds the core and names its owner, so that a submission from a done callback run under
    /// it does not try to take it again.
    class CoreGuard
    {
    public:
        CoreGuard(Impl& impl, std::unique_lock<std::mutex> lock)
            : impl_(impl), lock_(std::move(lock))
        {
            if (lock_.owns_lock()) {
                impl_.core_owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
            }
        }
        CoreGuard(const CoreGuard&) = delete;
        CoreGuard& operator=(const CoreGuard&) = delete;
        ~CoreGuard() { unlock(); }

        [[nodiscard]] bool owns() const noexcept { return lock_.owns_lock(); }

        /// Lets the core go, then completes the futures left to complete.
        void unlock() noexcept
        {
            if (!lock_.owns_lock()) {
                return;
            }
            std::vector<Completion> completions;
            completions.swap(impl_.completions_);
            impl_.core_owner_.store(std::thread::id(), std::memory_order_relaxed);
            lock_.unlock();
            for (auto& completion : completions) {
                completion.run();
            }
        }

    private:
        Impl& impl_;
        std::unique_lock<std::mutex> lock_;
    };

public:
    explicit Impl(RootSetup setup)
        : setup_(std::move(setup)),
          // The MPI workers give calls sent ahead back on request (a message each way, answered
          // by a thread of the worker while it computes), so the process pool's send-ahead
          // budget serves here too, with more calls always sent ahead.
          scheduler_({.max_workers = std::max<std::size_t>(setup_.worker_ranks.size(), 1),
                      .always_ahead = always_ahead})
    {
        for (const int rank : setup_.worker_ranks) {
            Worker worker;
            worker.rank = rank;
            worker.number = scheduler_.add_worker();
            workers_.push_back(std::move(worker));
        }
        progress_thread_ = std::thread([this] { progress(); });
        wait_hook_.impl = this;
        (void)install_wait_hook(wait_hook_);
    }

    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    ~Impl()
    {
        // First: nothing polls this executor's communicator from a waiting thread any more.
        remove_wait_hook(wait_hook_);
        shutdown({.wait = true, .cancel_futures = false});
        if (progress_thread_.joinable()) {
            progress_thread_.join();
        }
        if (mpi_failed_) {
            return; // the communicator is unusable: freeing or disconnecting it could hang
        }
        const std::lock_guard guard(lock());
        if (setup_.ownership == Ownership::spawned) {
            MPI_Comm_free(&setup_.comm);
            MPI_Comm_disconnect(&setup_.intercomm); // waits for the workers to let go too
        } else if (setup_.ownership == Ownership::pre_started) {
            release_pre_started();
        }
    }

    void schedule(TaskPtr task)
    {
        const bool travels = task->remote() != nullptr;
        {
            const std::lock_guard guard(mutex_);
            admission_.accept();
            if (!travels) {
                counts_.count(Outcome::failed); // built without a wire form: fails below
            } else {
                pending_.push_back(*task.release());
                kicked_ = true;
                kicked_flag_.store(true, std::memory_order_release);
            }
        }
        if (!travels) {
            task.discard(std::make_exception_ptr(
                std::invalid_argument(untravelled_message("MpiPoolExecutor"))));
            return;
        }
        send_from_here();
        // The progress thread receives the answer (and sends what could not go from here).
        wake_.notify_one();
    }

    void shutdown(const ShutdownOptions& options)
    {
        TaskQueue cancelled;
        {
            const std::lock_guard guard(mutex_);
            admission_.shut_down();
            kicked_ = true;
            kicked_flag_.store(true, std::memory_order_release);
            if (options.cancel_futures) {
                cancelled = take_all(pending_, counts_, Outcome::cancelled);
            }
        }
        wake_.notify_one();
        discard_all(std::move(cancelled), nullptr);
        if (options.wait && std::this_thread::get_id() != progress_thread_.get_id()) {
            // A done callback runs on the progress thread: it cannot wait for itself.
            const std::lock_guard join_guard(join_mutex_);
            if (progress_thread_.joinable()) {
                progress_thread_.join();
            }
        }
    }

    [[nodiscard]] std::size_t max_workers() const noexcept { return setup_.worker_ranks.size(); }

    [[nodiscard]] bool on_progress_thread() const noexcept
    {
        return std::this_thread::get_id() == progress_thread_.get_id();
    }

    [[nodiscard]] ExecutorStats stats() const
    {
        const std::lock_guard guard(mutex_);
        ExecutorStats stats;
        stats.submitted = admission_.accepted();
        stats.queued = pending_.size() + waiting_again_count_;
        counts_.add_to(stats);
        stats.workers_alive = alive_;
        return stats;
    }

    [[nodiscard]] std::size_t auto_chunksize(std::optional<std::size_t> total, CallKey key) const
    {
        return scheduler_.chunk_size(key, total);
    }

    // ----- under the core: the scheduler's host ----------------------------------------------

    [[nodiscard]] Clock::time_point now() const override { return Clock::now(); }
    [[nodiscard]] std::size_t waiting() const override
    {
        const std::lock_guard guard(mutex_);
        return waiting_again_.size() + pending_.size();
    }

    std::optional<CallInfo> peek_waiting() override
    {
        if (!waiting_again_.empty()) {
            return info_of(*waiting_again_.front());
        }
        const std::lock_guard guard(mutex_);
        if (pending_.empty()) {
            return std::nullopt;
        }
        return info_of(pending_.front());
    }

    std::optional<SentCall> send_next(std::size_t number) override
    {
        Worker* worker = find_worker(number);
        TaskBase* task = worker != nullptr ? next_task() : nullptr;
        if (task == nullptr) {
            return std::nullopt;
        }
        const std::uint64_t id = ++last_id_;
        auto message = begin_message();
        WireWriter call(message);
        call.u64(id);
        // No attachments: nothing that names this node's memory or files can travel, and
        // contiguous data goes inside the message (share_threshold 0).
        bool encoded = false;
        std::exception_ptr error;
        try {
            encoded = task->remote()->encode_call(call);
            if (!encoded) {
                error = std::make_exception_ptr(
                    std::invalid_argument(task->remote()->not_transferable_message()));
            }
        } catch (const ProtocolError& e) {
            error = std::make_exception_ptr(std::invalid_argument(
                std::string("futura::") + setup_.executor_name +
                ": a task's argument refers to memory or files of this node (SharedArray, "
                "MappedArray, SharedValue, a shared container or a mutable std::span), which "
                "other hosts cannot reach; pass the data by value (a std::vector) instead (" +
                e.what() + ")"));
        } catch (...) {
            error = std::current_exception();
        }
        if (!encoded || error) {
            finish_task(Outcome::failed);
            completions_.push_back({task, error, std::nullopt});
            return std::nullopt;
        }
        seal(message);
        try {
            post(worker->rank, Tag::call, std::move(message));
        } catch (const std::exception& e) {
            // MPI failed: this call is lost with everything else in flight.
            finish_task(Outcome::failed);
            completions_.push_back(
                {task,
                 std::make_exception_ptr(BrokenMpiPool(
                     std::string("futura::") + setup_.executor_name + ": MPI failed: " + e.what())),
                 std::nullopt});
            throw;
        }
        return SentCall{task, id, info_of(*task)};
    }

    // The scheduler asks for an answer at once, which a worker across the network cannot give:
    // calls go back through revoke messages instead (request_revocations), and the scheduler
    // learns of each with Scheduler::forget when the worker has given it back.
    bool try_revoke(std::size_t, const SentCall&) override { return false; }

    void wait_again(std::vector<SentCall> calls) override
    {
        for (auto it = calls.rbegin(); it != calls.rend(); ++it) {
            waiting_again_.push_front(static_cast<TaskBase*>(it->task));
        }
        const std::lock_guard guard(mutex_);
        waiting_again_count_ = waiting_again_.size();
    }

    bool start_worker() override { return false; } // every worker exists from the start

private:
    static CallInfo info_of(const TaskBase& task) noexcept
    {
        return {task.call_key, task.call_elements};
    }

    /// Sends waiting calls from the submitting thread if the core is free (the round trip then
    /// crosses no thread before the call is on its way); else the progress thread will.
    void send_from_here() noexcept
    {
        if (core_owner_.load(std::memory_order_relaxed) == std::this_thread::get_id()) {
            return; // a done callback under the core: the progress thread sends it next
        }
        // The core is held only for MPI calls and the scheduler's bookkeeping (no user code runs
        // under it), so waiting for it costs at most a turn of the progress thread.
        CoreGuard core(*this, std::unique_lock(core_mutex_));
        if (!broken_reason_.empty() || !mpi_error_.empty()) {
            return;
        }
        try {
            scheduler_.dispatch(*this);
        } catch (const std::exception& e) {
            mpi_error_ = e.what(); // the progress thread breaks the executor with it
        } catch (...) {
            mpi_error_ = "unknown error";
        }
    }

    Worker* find_worker(std::size_t number)
    {
        for (auto& worker : workers_) {
            if (worker.number == number) {
                return &worker;
            }
        }
        return nullptr;
    }

    Worker* worker_of_rank(int rank)
    {
        for (auto& worker : workers_) {
            if (worker.rank == rank) {
                return &worker;
            }
        }
        return nullptr;
    }

    [[nodiscard]] std::string where(const Worker& worker) const
    {
        return "rank " + std::to_string(worker.rank) + " on host " +
               (worker.host.empty() ? std::string("?") : worker.host) + " (pid " +
               std::to_string(worker.pid) + ")";
    }

    void post(int rank, Tag tag, std::vector<char> message)
    {
        const std::lock_guard guard(lock());
        outgoing_.push_back(send(setup_.comm, rank, tag, std::move(message)));
    }

    TaskBase* next_task()
    {
        if (!waiting_again_.empty()) {
            auto* task = waiting_again_.front();
            waiting_again_.pop_front();
            const std::lock_guard guard(mutex_);
            waiting_again_count_ = waiting_again_.size();
            return task;
        }
        for (;;) {
            TaskBase* task = nullptr;
            bool started = false;
            {
                const std::lock_guard guard(mutex_);
                if (pending_.empty()) {
                    return nullptr;
                }
                task = &pending_.front();
                pending_.pop_front();
                started = task->remote()->start();
                if (started) {
                    counts_.start();
                } else {
                    counts_.count(Outcome::cancelled);
                }
            }
            if (started) {
                return task;
            }
            completions_.push_back({task, nullptr, std::nullopt});
        }
    }

    void finish_task(Outcome outcome)
    {
        const std::lock_guard guard(mutex_);
        counts_.finish(outcome);
    }

    void progress()
    {
        forbid_blocking("futura: a done callback of an MPI executor's future waits for a future "
                        "that is not done; callbacks run on the executor's progress thread, "
                        "which delivers every result, so the wait would never end. Wait in "
                        "another thread, or chain the work with another callback");
        try {
            {
                CoreGuard core(*this, std::unique_lock(core_mutex_));
                for (const auto& worker : workers_) {
                    auto hello = begin_message();
                    seal(hello);
                    post(worker.rank, Tag::hello, std::move(hello));
                }
            }
            run_loop();
        } catch (const std::exception& e) {
            // MPI failed (or a worker's bytes made no sense): the communicator cannot be trusted.
            fail_everything(std::string("futura::") + setup_.executor_name +
                            ": MPI failed: " + e.what());
            mpi_failed_ = true;
        }
    }

    /// What one turn of the progress loop found.
    struct Turn
    {
        bool active = false;    ///< a message came
        bool in_flight = false; ///< answers are awaited
        bool urgent = false;    ///< one may be awaited by an idle worker
        bool finished = false;  ///< every worker was let go
    };

    Turn turn()
    {
        Turn turn;
        {
            CoreGuard core(*this, std::unique_lock(core_mutex_));
            if (!mpi_error_.empty()) {
                throw std::runtime_error(mpi_error_);
            }
            turn.active = receive_all();
            // The calls the answers let go leave before the futures complete: completing them
            // wakes waiting threads, which on a busy machine may take this thread's core for a
            // time slice, and a worker that ran out of calls would wait that long.
            if (turn.active && broken_reason_.empty() && waiting() > 0) {
                scheduler_.dispatch(*this);
            }
        } // the futures answered complete here, before the rest of the turn
        CoreGuard core(*this, std::unique_lock(core_mutex_));
        {
            const std::lock_guard guard(mutex_);
            draining_ = !admission_.accepting();
            kicked_ = false;
            kicked_flag_.store(false, std::memory_order_relaxed);
        }
        if (broken_reason_.empty()) {
            scheduler_.dispatch(*this);
            request_revocations();
        } else {
            fail_waiting(std::make_exception_ptr(BrokenMpiPool(broken_reason_)));
        }
        {
            const std::lock_guard guard(lock());
            std::erase_if(outgoing_, [](Outgoing& out) { return sent(out); });
        }
        // Only once every worker has said hello and finished its initializer, and answered
        // every revocation: nothing of this executor may reach a pre-started worker after its
        // goodbye (the next executor would take it for its own).
        if (draining_ && !said_goodbye_ && waiting() == 0 && scheduler_.all_answered() &&
            initializing_ == 0 && unheard_ == 0 && revoking_.empty()) {
            const Tag farewell = setup_.ownership == Ownership::spawned ? Tag::exit : Tag::goodbye;
            for (const auto& worker : workers_) {
                auto message = begin_message();
                seal(message);
                post(worker.rank, farewell, std::move(message));
            }
            said_goodbye_ = true;
        }
        if (said_goodbye_ && outgoing_.empty()) {
            progress_ended_ = true;
            const std::lock_guard guard(mutex_);
            alive_ = 0; // they serve this executor no more
            turn.finished = true;
            return turn;
        }
        turn.in_flight = !scheduler_.all_answered() || !outgoing_.empty() || unheard_ > 0 ||
                         initializing_ > 0 || !revoking_.empty() || draining_;
        turn.urgent = answer_is_urgent();
        return turn;
    }

    /// Handles every message that came. Under the core. @return whether one came.
    bool receive_all()
    {
        bool any = false;
        for (;;) {
            std::optional<Incoming> in;
            {
                const std::lock_guard guard(lock());
                in = try_receive(setup_.comm, MPI_ANY_SOURCE);
            }
            if (!in) {
                return any;
            }
            handle(*in);
            any = true;
        }
    }

    /// A thread waiting for a future polls here during its spin window (wait_hook.hpp): if the
    /// core is free it receives what came, as a turn would, and sends what the answers let go,
    /// so that an answer reaches the thread that waits for it without a hand-off from the
    /// progress thread. Never blocks: the progress thread owns the core otherwise.
    void help_while_waiting() noexcept
    {
        helped_at_.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
        if (core_owner_.load(std::memory_order_relaxed) == std::this_thread::get_id()) {
            return; // a wait under the core (it would try to take it again)
        }
        CoreGuard core(*this, std::unique_lock(core_mutex_, std::try_to_lock));
        if (!core.owns() || progress_ended_ || !mpi_error_.empty()) {
            return;
        }
        try {
            // The calls the answers let go are sent at once; revocations are left to the
            // progress thread's next turn (the waiting thread's future completes first).
            if (receive_all() && broken_reason_.empty() && waiting() > 0) {
                scheduler_.dispatch(*this);
            }
        } catch (const std::exception& e) {
            mpi_error_ = e.what(); // the progress thread breaks the executor with it
        } catch (...) {
            mpi_error_ = "unknown error";
        }
        // The futures answered complete as the core is let go: the last thing done here (a
        // done callback may even destroy the executor).
    }

    /// Whether a waiting thread polled lately (it gives up within its spin window).
    [[nodiscard]] bool waiter_polls() const noexcept
    {
        const auto at =
            Clock::time_point(Clock::duration(helped_at_.load(std::memory_order_relaxed)));
        return Clock::now() - at < std::chrono::microseconds(10);
    }

    struct PollHook : WaitHook
    {
        Impl* impl = nullptr;
    };

    static void poll_hook(WaitHook& hook) noexcept
    {
        static_cast<PollHook&>(hook).impl->help_while_waiting();
    }

    void run_loop()
    {
        // Short sleeps: the root waits for answers while work is in flight, and every
        // microsecond it sleeps past one is a worker left idle.
        Backoff backoff(std::chrono::microseconds(100));
        for (;;) {
            const Turn now = turn();
            if (now.finished) {
                return;
            }
            if (now.active) {
                backoff.reset();
            }
            if (now.in_flight) {
                if (!now.active) {
                    backoff.pause(now.urgent);
                    if (now.urgent) {
                        await_message();
                    }
                }
                continue;
            }
            // Nothing in flight: a caller that waits for one result at a time submits the next
            // right after it, so look for that a little before sleeping on the condition
            // variable (waking this thread from it costs more than the whole MPI round trip).
            const auto idle_since = std::chrono::steady_clock::now();
            while (!kicked_flag_.load(std::memory_order_acquire) &&
                   std::chrono::steady_clock::now() - idle_since < std::chrono::microseconds(200)) {
                std::this_thread::yield();
            }
            std::unique_lock guard(mutex_);
            wake_.wait(guard, [&] { return kicked_; });
            backoff.reset();
        }
    }

    /// Until a message comes or a call is submitted (for at most a millisecond), looks at MPI
    /// alone between yields: a whole turn costs several locks, and the answer awaited now is
    /// picked up that much sooner.
    void await_message()
    {
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1);
        while (!kicked_flag_.load(std::memory_order_acquire)) {
            if (waiter_polls()) {
                // A thread that waits for a future polls: leave it the CPU (on a machine with
                // as many cores as workers, a third poller takes one from it or a worker).
                std::this_thread::sleep_for(std::chrono::microseconds(10));
                continue;
            }
            int flag = 0;
            {
                const std::lock_guard guard(lock());
                BOOST_MPI_CHECK_RESULT(MPI_Iprobe, (MPI_ANY_SOURCE, MPI_ANY_TAG, setup_.comm, &flag,
                                                    MPI_STATUS_IGNORE));
            }
            if (flag != 0 || std::chrono::steady_clock::now() >= until) {
                return;
            }
            std::this_thread::yield();
        }
    }

    /// Whether a worker may soon wait for the root: one runs its last call (nothing queued
    /// behind it) while there is something to give it (a call waits here, or is queued behind
    /// another worker's running one and could be asked back), so its answer should be picked up,
    /// and the next call sent, at once. Otherwise the root sleeps between polls instead of
    /// yielding: on a machine with as many cores as workers, a yielding root takes CPU time from
    /// them (the thread waiting for a result polls for itself, wait_hook.hpp).
    [[nodiscard]] bool answer_is_urgent() const
    {
        if (unheard_ > 0 || initializing_ > 0 || !revoking_.empty()) {
            return true;
        }
        bool one_runs_its_last = false;
        bool one_has_calls_queued = false;
        for (const auto& worker : workers_) {
            const auto unanswered = scheduler_.unanswered(worker.number).size();
            one_runs_its_last = one_runs_its_last || (worker.ready && unanswered <= 1);
            one_has_calls_queued = one_has_calls_queued || unanswered > 1;
        }
        return one_runs_its_last && (one_has_calls_queued || waiting() > 0);
    }

    /// The process pool's rebalancing, by message: while a worker is idle and nothing waits
    /// here, asks the worker with the most calls queued behind its running one to give back
    /// the later half (one request per idle worker at a time). The worker's answer decides:
    /// a call it has not started comes back (on_revoked), one it started runs there.
    void request_revocations()
    {
        std::size_t idle = 0;
        for (const auto& worker : workers_) {
            idle += worker.ready && scheduler_.unanswered(worker.number).empty() ? 1U : 0U;
        }
        if (idle <= revoke_rounds_ || waiting() > 0) {
            return;
        }
        Worker* busiest = nullptr;
        std::vector<std::uint64_t> ids;
        for (auto& worker : workers_) {
            std::vector<std::uint64_t> queued;
            const auto& calls = scheduler_.unanswered(worker.number);
            for (std::size_t i = 1; i < calls.size(); ++i) {
                if (!revoking_.contains(calls[i].id)) {
                    queued.push_back(calls[i].id);
                }
            }
            if (queued.size() > ids.size()) {
                busiest = &worker;
                ids = std::move(queued);
            }
        }
        if (busiest == nullptr) {
            return;
        }
        // From the back: the calls furthest from starting.
        ids.erase(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(ids.size() / 2));
        auto message = begin_message();
        WireWriter out(message);
        out.u64(ids.size());
        for (const auto id : ids) {
            out.u64(id);
            revoking_.insert(id);
        }
        seal(message);
        ++revoke_rounds_;
        post(busiest->rank, Tag::revoke, std::move(message));
    }

    /// The worker's answer to a revoke request: which of the calls it gives back.
    void on_revoked(Worker& worker, WireReader& reader)
    {
        --revoke_rounds_;
        const auto asked = reader.u64();
        std::vector<SentCall> back;
        for (std::uint64_t k = 0; k < asked; ++k) {
            const auto id = reader.u64();
            const bool given_back = reader.u64() != 0;
            revoking_.erase(id);
            if (!given_back) {
                continue; // it started there: its answer comes as usual
            }
            for (const auto& call : scheduler_.unanswered(worker.number)) {
                if (call.id == id) {
                    back.push_back(call);
                    break;
                }
            }
            scheduler_.forget(worker.number, id);
        }
        if (!back.empty()) {
            wait_again(std::move(back));
        }
    }

    void handle(Incoming& in)
    {
        Worker* worker = worker_of_rank(in.source);
        if (worker == nullptr) {
            throw ProtocolError("futura: a message came from rank " + std::to_string(in.source) +
                                ", which is not a worker of this executor");
        }
        WireReader reader(std::span<const char>(in.bytes).subspan(in.body_offset()));
        switch (in.tag) {
        case Tag::ready:
            on_ready(*worker, reader);
            return;
        case Tag::revoked:
            on_revoked(*worker, reader);
            return;
        case Tag::initialize_failed: {
            --initializing_;
            (void)reader.u64(); // id
            (void)reader.u64(); // run time
            std::string why;
            try {
                std::rethrow_exception(decode_exception(reader));
            } catch (const std::exception& e) {
                why = e.what();
            }
            break_pool("the initializer failed on " + where(*worker) + ": " + why);
            return;
        }
        case Tag::value:
        case Tag::exception:
            break;
        default:
            throw ProtocolError("futura: a worker rank sent a message meant for workers");
        }
        const std::uint64_t id = reader.u64();
        const double seconds = static_cast<double>(reader.u64()) / 1e9;
        if (id == 0) { // the initializer ran
            --initializing_;
            mark_ready(*worker);
            return;
        }
        const auto call = scheduler_.answered(worker->number, id, seconds);
        auto* task = static_cast<TaskBase*>(call.task);
        if (in.tag == Tag::value) {
            finish_task(Outcome::completed);
            completions_.push_back({task, nullptr, std::move(in)});
            return;
        }
        std::exception_ptr error;
        try {
            error = decode_exception(reader);
            std::rethrow_exception(error);
        } catch (const RemoteError& e) {
            error = std::make_exception_ptr(RemoteError(
                e.type_name(), e.message() + " [on " + where(*worker) + "]", e.stack_trace()));
        } catch (...) {
            error = std::current_exception();
        }
        finish_task(Outcome::failed);
        completions_.push_back({task, error, std::nullopt});
    }

    void on_ready(Worker& worker, WireReader& reader)
    {
        --unheard_;
        worker.host = std::string(reader.string());
        worker.pid = reader.u64();
        const std::string build(reader.string());
        if (build != build_) {
            break_pool(where(worker) + " runs another build of the program (build id " + build +
                       ", here " + build_ + "); every rank must run the same executable");
            return;
        }
        if (!setup_.initializer_call.empty() && broken_reason_.empty()) {
            auto message = begin_message();
            message.insert(message.end(), setup_.initializer_call.begin(),
                           setup_.initializer_call.end());
            seal(message);
            ++initializing_;
            post(worker.rank, Tag::initialize, std::move(message));
            return;
        }
        mark_ready(worker);
    }

    void mark_ready(Worker& worker)
    {
        if (!broken_reason_.empty()) {
            return;
        }
        worker.ready = true;
        scheduler_.worker_ready(worker.number);
        const std::lock_guard guard(mutex_);
        ++alive_;
    }

    void fail_waiting(const std::exception_ptr& error)
    {
        while (!waiting_again_.empty()) {
            auto* task = waiting_again_.front();
            waiting_again_.pop_front();
            finish_task(Outcome::failed);
            completions_.push_back({task, error, std::nullopt});
        }
        TaskQueue pending;
        {
            const std::lock_guard guard(mutex_);
            waiting_again_count_ = 0;
            pending = take_all(pending_, counts_, Outcome::failed);
        }
        pending.clear_and_dispose([&](TaskBase* task) {
            completions_.push_back({task, error, std::nullopt});
        });
    }

    /// The executor cannot go on: refuse new work, fail what waits; calls already sent are
    /// answered as usual, then the workers are let go.
    void break_pool(const std::string& why)
    {
        if (broken_reason_.empty()) {
            broken_reason_ = std::string("futura::") + setup_.executor_name + ": " + why +
                             "; the executor is not usable anymore";
        }
        {
            const std::lock_guard guard(mutex_);
            admission_.break_with(broken_reason_);
        }
        for (auto& worker : workers_) {
            scheduler_.stop_sending(worker.number);
        }
        fail_waiting(std::make_exception_ptr(BrokenMpiPool(broken_reason_)));
    }

    /// MPI itself failed: nothing sent will be answered.
    void fail_everything(const std::string& why)
    {
        CoreGuard core(*this, std::unique_lock(core_mutex_));
        progress_ended_ = true;
        broken_reason_ = why; // what fails from now on says MPI failed
        {
            const std::lock_guard guard(mutex_);
            admission_.break_with(why); // later submissions name the first failure
        }
        const auto error = std::make_exception_ptr(BrokenMpiPool(why));
        fail_waiting(error);
        for (auto& worker : workers_) {
            for (const auto& call : scheduler_.remove_worker(worker.number)) {
                finish_task(Outcome::failed);
                completions_.push_back({static_cast<TaskBase*>(call.task), error, std::nullopt});
            }
        }
    }

    RootSetup setup_;
    const std::string build_ = build_identity();

    mutable std::mutex mutex_; // guards everything from here to join_mutex_
    std::condition_variable wake_;
    bool kicked_ = false;
    std::atomic<bool> kicked_flag_{false}; // kicked_, for a look without the lock
    TaskQueue pending_;
    Admission<BrokenMpiPool> admission_;
    TaskCounts<LockedCount> counts_;
    std::size_t alive_ = 0;
    std::size_t waiting_again_count_ = 0;

    std::mutex join_mutex_; // serialises joining the progress thread

    // The core: the thread that holds core_mutex_ (the progress thread, or a submitting thread
    // that sends its call itself) owns everything from here to progress_thread_ (the
    // scheduler's estimates excepted, which are thread-safe). Order: core, then mutex_, then
    // MPI's lock().
    std::mutex core_mutex_;
    std::atomic<std::thread::id> core_owner_{};
    std::vector<Completion> completions_; // futures to complete once the core is let go
    std::string mpi_error_; // an MPI failure in a submitting thread, for the progress one
    Scheduler scheduler_;
    std::vector<Worker> workers_;
    std::deque<TaskBase*> waiting_again_;
    std::list<Outgoing> outgoing_;
    std::uint64_t last_id_ = 0;
    std::size_t unheard_ = setup_.worker_ranks.size(); // workers that have not said ready
    std::size_t initializing_ = 0;
    bool draining_ = false;
    bool said_goodbye_ = false;
    std::unordered_set<std::uint64_t> revoking_; // calls asked back, not answered yet
    std::size_t revoke_rounds_ = 0;              // revoke requests not answered yet
    std::atomic<bool> mpi_failed_{false};
    std::string broken_reason_;
    bool progress_ended_ = false; // the progress thread is done with the communicator
    PollHook wait_hook_{{&Impl::poll_hook}, nullptr};
    std::atomic<Clock::rep> helped_at_{0}; // when a waiting thread last polled here

    std::thread progress_thread_;
};

RootExecutor::RootExecutor(RootSetup setup) : impl_(std::make_unique<Impl>(std::move(setup))) {}

RootExecutor::~RootExecutor()
{
    if (impl_->on_progress_thread()) {
        // The last owner went inside a done callback, on the thread that the destructor would
        // join: as the process pool does, shut down without waiting and let a thread of its
        // own finish the job and free it.
        impl_->shutdown({.wait = false, .cancel_futures = false});
        std::thread([impl = std::move(impl_)]() mutable { impl.reset(); }).detach();
    }
}

void RootExecutor::schedule(TaskPtr task) { impl_->schedule(std::move(task)); }

void RootExecutor::shutdown(const ShutdownOptions& options) { impl_->shutdown(options); }

std::size_t RootExecutor::max_workers() const noexcept { return impl_->max_workers(); }

ExecutorStats RootExecutor::stats() const { return impl_->stats(); }

std::size_t RootExecutor::auto_chunksize(std::optional<std::size_t> total, CallKey key) const
{
    return impl_->auto_chunksize(total, key);
}

} // namespace futura::detail::mpi
