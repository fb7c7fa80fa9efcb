// The parent side of the process pool: the state machine that ties its parts together. One I/O
// thread runs an io_context that drives every worker's channel, stderr pipe and exit watch, so
// the parent's threads never block on a worker.
//
// A task goes pending_ (any thread, under mutex_) -> sent to a worker (the Scheduler decides
// which, and how far ahead) -> completed from the worker's answer, or failed when the worker
// dies while running it. A task sent ahead and not started yet can be taken back (CallClaims):
// for an idle worker, for kill(), or when its worker dies.
//
// The parts, each in its own file: the scheduling decisions (detail/scheduler), the channel to
// one worker (detail/worker_channel, on detail/channel's frame inbox and outbox, which the
// worker uses too), the claim table (detail/call_claims), starting workers
// (detail/worker_launch) and crash reports (detail/crash_report).
#include <futura/detail/admission.hpp>
#include <futura/detail/blocking.hpp>
#include <futura/detail/call_claims.hpp>
#include <futura/detail/crash_report.hpp>
#include <futura/detail/protocol.hpp>
#include <futura/detail/remote_task.hpp>
#include <futura/detail/scheduler.hpp>
#include <futura/detail/segment_cache.hpp>
#include <futura/detail/task_counts.hpp>
#include <futura/detail/task_queue.hpp>
#include <futura/detail/worker.hpp>
#include <futura/detail/worker_channel.hpp>
#include <futura/detail/worker_launch.hpp>
#include <futura/process_pool_executor.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <deque>
#include <fcntl.h>
#include <filesystem>
#include <iostream>
#include <limits>
#include <mutex>
#include <optional>
#include <span>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace futura {

namespace asio = boost::asio;

namespace {

using detail::ExpectedDeath;
using detail::TaskQueue;

/// `task_timeout` as the timer's duration: NaN is refused, and anything beyond what the clock
/// can count (infinity included) means no limit, as `result(timeout)` treats it.
std::optional<detail::Clock::duration>
checked_task_timeout(const std::optional<std::chrono::duration<double>>& timeout)
{
    if (!timeout) {
        return std::nullopt;
    }
    const double seconds = timeout->count();
    if (std::isnan(seconds) || seconds <= 0) {
        throw std::invalid_argument(
            "futura::ProcessPoolExecutor: task_timeout must be a positive number of seconds");
    }
    const auto limit = std::chrono::duration<double>(detail::Clock::duration::max()).count() / 2;
    if (seconds >= limit) {
        return std::nullopt;
    }
    return std::chrono::duration_cast<detail::Clock::duration>(*timeout);
}

/// A working directory the workers could not start in is refused here, where the caller can
/// tell which option is wrong, rather than breaking the pool at its first worker.
void check_working_directory(const std::string& directory)
{
    std::error_code error;
    if (!directory.empty() && !std::filesystem::is_directory(directory, error)) {
        throw std::invalid_argument("futura::ProcessPoolExecutor: working_directory \"" +
                                    directory + "\" is not a directory");
    }
}

} // namespace

constexpr const char* not_wrapped_message =
    "futura::ProcessPoolExecutor: this program cannot start worker processes, because its "
    "main() is not wrapped by futura: link it with -Wl,--wrap=main (linking futura::futura in "
    "CMake or /futura//futura in b2 adds it as a usage requirement), and submit from main or "
    "later, not from a static initialiser";

class ProcessPoolExecutor::Impl final : private detail::SchedulerHost
{
    /// Terminal cancellation from Asio reaches the pool through this: tasks hold a reference,
    /// and the pool detaches it when it goes (its tasks are all done by then, but a cancellation
    /// may still be on its way).
    class Terminator final : public detail::TaskTerminator
    {
    public:
        explicit Terminator(Impl* pool) : pool_(pool) {}

        bool terminate(detail::SharedStateBase* state) override
        {
            const std::lock_guard lock(mutex_);
            return pool_ != nullptr ? pool_->kill_task(state) : state->cancel();
        }

        void detach()
        {
            const std::lock_guard lock(mutex_);
            pool_ = nullptr;
        }

    private:
        std::mutex mutex_; // guards pool_
        Impl* pool_;
    };

    /// The parent's record of one worker process: its channel, pipes, claim table and timer.
    /// Touched only on the I/O thread.
    class WorkerProcess final : public std::enable_shared_from_this<WorkerProcess>,
                                public detail::WorkerChannel::Listener
    {
    public:
        WorkerProcess(Impl& owner, std::size_t scheduler_number)
            : pool(owner), number(scheduler_number), stderr_pipe(owner.io_), exit_watch(owner.io_),
              timeout_timer(owner.io_)
        {}

        void on_frame(const detail::Frame& frame, detail::Attachments& attachments) override
        {
            pool.handle_frame(*this, frame, attachments);
        }
        std::span<char> on_answer_start(const detail::Frame& frame) override
        {
            return pool.start_answer_in_place(*this, frame);
        }
        void on_answer_received() override { pool.finish_answer_in_place(*this); }
        void on_frames_handled() override { pool.dispatch(); }
        void on_bad_message(const std::exception& error) override
        {
            pool.kill_for_bad_message(*this, error);
        }

        Impl& pool;
        const std::size_t number; // the scheduler's
        pid_t pid = -1;
        std::uint64_t oom_kills_at_start = detail::oom_kills();
        std::shared_ptr<detail::WorkerChannel> channel;
        detail::CallClaims claims = detail::CallClaims::create();
        asio::posix::stream_descriptor stderr_pipe;
        asio::posix::stream_descriptor exit_watch; // a pidfd: readable once the worker exits
        asio::steady_timer timeout_timer;

        bool ready = false;  // it said hello: it runs
        bool closed = false; // channel shut: it will exit
        bool exited = false; // reaped: handlers still pending must do nothing
        ExpectedDeath expected_death = ExpectedDeath::unexpected;
        std::optional<std::uint64_t> killed_call; // kill() of this call killed the worker
        std::size_t tasks_done = 0;
        /// A large answer whose result is read straight into its storage: its call and run time.
        struct ArrivingAnswer
        {
            std::uint64_t task_id;
            double seconds;
        };
        std::optional<ArrivingAnswer> arriving;

        detail::StderrTail stderr_tail;
        std::array<char, 4096> stderr_buffer{};
    };

public:
    explicit Impl(ProcessPoolOptions options)
        : options_(std::move(options)),
          max_workers_(detail::checked_max_workers(options_.max_workers, "ProcessPoolExecutor")),
          task_timeout_(checked_task_timeout(options_.task_timeout)),
          scheduler_({.max_workers = max_workers_,
                      .max_tasks_per_child = options_.max_tasks_per_child.value_or(0)}),
          work_(asio::make_work_guard(io_))
    {
        if (options_.max_tasks_per_child && *options_.max_tasks_per_child == 0) {
            throw std::invalid_argument(
                "futura::ProcessPoolExecutor: max_tasks_per_child must be greater than 0");
        }
        options_.initializer.check(options_.initargs);
        check_working_directory(options_.working_directory);
        launch_ = {.method = options_.start_method,
                   .environment = detail::worker_environment(options_, max_workers_),
                   .working_directory = options_.working_directory,
                   .share_threshold = options_.share_threshold,
                   .segment_cache_bytes = options_.segment_cache_bytes};
        terminator_ = new Terminator(this);
        io_thread_ = std::thread([this] {
            detail::forbid_blocking(
                "futura::ProcessPoolExecutor: a done callback of a process pool's future waits "
                "for a future that is not done; callbacks run on the pool's I/O thread, which "
                "delivers every result of the pool, so the wait would never end. Wait in another "
                "thread, or chain the work with another callback");
            run_io();
        });
    }

    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    /// The I/O thread's loop: `io_.run()`, except that after a handler has run it keeps looking
    /// for the next for up to `io_spin`, yielding between looks, before it sleeps in epoll.
    /// Answers come in bursts, and waking a sleeping CPU of a virtual machine costs tens of µs
    /// (W4, W5 in doc/benchmarks.md), as the worker's own loop says.
    void run_io()
    {
        constexpr auto io_spin = std::chrono::microseconds(50);
        auto looking_until = std::chrono::steady_clock::now();
        while (!io_.stopped()) {
            if (io_.poll() != 0) {
                looking_until = std::chrono::steady_clock::now() + io_spin;
            } else if (std::chrono::steady_clock::now() < looking_until) {
                std::this_thread::yield();
            } else if (io_.run_one() != 0) {
                looking_until = std::chrono::steady_clock::now() + io_spin;
            }
        }
    }

    ~Impl()
    {
        shutdown({.wait = true, .cancel_futures = false});
        if (io_thread_.joinable()) {
            io_thread_.join();
        }
        terminator_->detach();
    }

    void schedule(detail::TaskPtr task)
    {
        detail::RemoteTask* const remote = task->remote();
        {
            const std::lock_guard lock(mutex_);
            admission_.accept();
            if (remote == nullptr) {
                // Built without a wire form: fails below, never queued.
                counts_.count(Outcome::failed);
            } else {
                remote->terminator = terminator_;
                pending_.push_back(*task.release());
            }
        }
        if (remote == nullptr) {
            task.discard(std::make_exception_ptr(
                std::invalid_argument(detail::untravelled_message("ProcessPoolExecutor"))));
            return;
        }
        kick();
    }

    void shutdown(const ShutdownOptions& options)
    {
        TaskQueue cancelled;
        {
            const std::lock_guard lock(mutex_);
            admission_.shut_down();
            if (options.cancel_futures) {
                cancelled = detail::take_all(pending_, counts_, Outcome::cancelled);
            }
        }
        detail::discard_all(std::move(cancelled), nullptr);
        asio::post(io_, [this] {
            draining_ = true;
            dispatch();
        });
        if (options.wait && std::this_thread::get_id() != io_thread_.get_id()) {
            // Callbacks run on the I/O thread; one that shuts the pool down cannot wait for it.
            const std::lock_guard join_lock(join_mutex_);
            if (io_thread_.joinable()) {
                io_thread_.join();
            }
        }
    }

    void signal_workers(int signal)
    {
        shutdown({.wait = false, .cancel_futures = true});
        asio::post(io_, [this, signal] {
            for (auto& worker : workers_) {
                worker->expected_death = ExpectedDeath::signalled;
                ::kill(worker->pid, signal);
            }
        });
    }

    bool kill_task(detail::SharedStateBase* state)
    {
        if (state == nullptr) {
            throw InvalidStateError("futura::ProcessPoolExecutor::kill: the future has no state");
        }
        auto* task = dynamic_cast<detail::TaskBase*>(state);
        if (task == nullptr || task->remote() == nullptr ||
            task->remote()->terminator != terminator_) {
            throw std::invalid_argument("futura::ProcessPoolExecutor::kill: the future is not of "
                                        "a task of this pool");
        }
        if (state->done()) {
            return false;
        }
        if (state->cancel()) {
            return true; // still pending: it never runs
        }
        if (!state->cancel_running()) {
            return false; // done meanwhile
        }
        // The future is cancelled now; the call must also never run, or stop running.
        asio::post(io_, [this, task] { stop_call(task); });
        return true;
    }

    [[nodiscard]] std::size_t max_workers() const noexcept { return max_workers_; }

    [[nodiscard]] std::size_t share_threshold() const noexcept { return options_.share_threshold; }

    [[nodiscard]] bool on_io_thread() const noexcept
    {
        return std::this_thread::get_id() == io_thread_.get_id();
    }

    [[nodiscard]] std::size_t auto_chunksize(std::optional<std::size_t> total,
                                             detail::CallKey key) const
    {
        return scheduler_.chunk_size(key, total);
    }

    [[nodiscard]] ExecutorStats stats() const
    {
        const std::lock_guard lock(mutex_);
        ExecutorStats stats;
        stats.submitted = admission_.accepted();
        stats.queued = pending_.size() + waiting_again_count_;
        counts_.add_to(stats);
        stats.workers_alive = alive_;
        stats.workers_replaced = replaced_;
        return stats;
    }

private:
    using Outcome = detail::TaskOutcome;

    // ----- any thread -------------------------------------------------------------------------

    void kick()
    {
        if (!kick_posted_.exchange(true, std::memory_order_acq_rel)) {
            asio::post(io_, [this] {
                kick_posted_.store(false, std::memory_order_release);
                dispatch();
            });
        }
    }

    // ----- I/O thread only: the scheduler's host ---------------------------------------------

    [[nodiscard]] Clock::time_point now() const override { return Clock::now(); }

    [[nodiscard]] std::size_t waiting() const override
    {
        const std::lock_guard lock(mutex_);
        return waiting_again_.size() + pending_.size();
    }

    std::optional<detail::CallInfo> peek_waiting() override
    {
        if (!waiting_again_.empty()) {
            return info_of(*waiting_again_.front());
        }
        const std::lock_guard lock(mutex_);
        if (pending_.empty()) {
            return std::nullopt;
        }
        return info_of(pending_.front());
    }

    std::optional<detail::SentCall> send_next(std::size_t number) override
    {
        WorkerProcess* worker = find_worker(number);
        detail::TaskBase* task = worker != nullptr ? next_task() : nullptr;
        if (task == nullptr) {
            return std::nullopt;
        }
        auto& out = worker->channel->outbox().bytes();
        const auto start = detail::begin_frame(out);
        detail::Attachments attachments;
        detail::WireWriter call(out);
        call.attach(attachments);
        call.share_threshold(options_.share_threshold);
        call.segment_cache(&segment_cache_, number);
        bool encoded = false;
        std::exception_ptr error;
        try {
            encoded = task->remote()->encode_call(call);
            if (!encoded) {
                error = std::make_exception_ptr(
                    std::invalid_argument(task->remote()->not_transferable_message()));
            }
        } catch (...) {
            error = std::current_exception();
        }
        if (!encoded) {
            out.resize(start);
            finish_task(Outcome::failed);
            task->discard(error);
            return std::nullopt;
        }
        if (segment_cache_.held_bytes() != 0) {
            trim_segments_when_idle();
        }
        const auto id = worker->claims.offer();
        detail::finish_frame(out, start, detail::FrameKind::call, id, attachments);
        // The frame may refer to the task's large arguments where they are (written from there:
        // a gather write); the outbox holds them until they are written.
        worker->channel->outbox().add_attachments(attachments);
        if (scheduler_.unanswered(number).empty()) {
            start_timeout(*worker); // it runs this one next
        }
        return detail::SentCall{task, id, info_of(*task)};
    }

    bool try_revoke(std::size_t number, const detail::SentCall& call) override
    {
        WorkerProcess* worker = find_worker(number);
        if (worker == nullptr || !worker->claims.revoke(call.id)) {
            return false;
        }
        worker->claims.release(call.id);
        return true;
    }

    void wait_again(std::vector<detail::SentCall> calls) override
    {
        for (auto it = calls.rbegin(); it != calls.rend(); ++it) {
            waiting_again_.push_front(static_cast<detail::TaskBase*>(it->task));
        }
        const std::lock_guard lock(mutex_);
        waiting_again_count_ = waiting_again_.size();
    }

    bool start_worker() override
    {
        if (!broken_reason_.empty()) {
            return false;
        }
        if (!detail::main_is_wrapped()) {
            // Checked here rather than in the constructor: a pool at namespace scope is made
            // before main, when nothing can tell yet whether main is wrapped.
            break_pool(not_wrapped_message);
            return false;
        }
        const std::size_t number = scheduler_.add_worker();
        std::shared_ptr<WorkerProcess> worker;
        try {
            worker = std::make_shared<WorkerProcess>(*this, number);
            detail::UniqueFd child_end;
            worker->channel = std::make_shared<detail::WorkerChannel>(io_, *worker, child_end);
            int err_pipe[2];
            if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
                throw std::system_error(errno, std::generic_category(), "pipe2");
            }
            worker->stderr_pipe.assign(err_pipe[0]);
            const detail::UniqueFd err_write(err_pipe[1]);
            worker->pid = detail::launch_worker(launch_, child_end.get(), err_write.get());
            // Our own pidfd (safe: an unreaped child's pid cannot be reused), so that we reap the
            // worker ourselves, with its resource usage.
            const auto pidfd =
                static_cast<int>(::syscall(SYS_pidfd_open, worker->pid, 0 /* cloexec */));
            if (pidfd < 0) {
                ::kill(worker->pid, SIGKILL);
                ::waitpid(worker->pid, nullptr, 0);
                throw std::system_error(errno, std::generic_category(), "pidfd_open");
            }
            (void)::fcntl(pidfd, F_SETFD, FD_CLOEXEC);
            worker->exit_watch.assign(pidfd);
        } catch (const std::exception& e) {
            scheduler_.remove_worker(number);
            break_pool(std::string("futura::ProcessPoolExecutor: could not start a worker "
                                   "process: ") +
                       e.what());
            return false;
        }
        WorkerProcess& started = *worker;
        workers_.push_back(std::move(worker));
        {
            const std::lock_guard lock(mutex_);
            ++alive_;
            if (lost_workers_ > 0) {
                --lost_workers_;
                ++replaced_;
            }
        }
        // First its claim table and its answer ring, then the initializer: all before any call.
        auto& out = started.channel->outbox().bytes();
        {
            const auto start = detail::begin_frame(out);
            detail::Attachments attachments;
            detail::WireWriter frame(out);
            frame.attach(attachments);
            (void)frame.descriptor(started.claims.fd());
            detail::finish_frame(out, start, detail::FrameKind::claims, started.number,
                                 attachments.descriptors.size());
            started.channel->outbox().add_descriptors(attachments.descriptors);
        }
        started.channel->send_answer_ring();
        if (options_.initializer) {
            // Encoded anew for each worker: its arguments may hold shared objects, whose
            // descriptors each worker needs.
            const auto start = detail::begin_frame(out);
            detail::Attachments attachments;
            detail::WireWriter call(out);
            call.attach(attachments);
            call.share_threshold(options_.share_threshold);
            options_.initializer.encode(call, options_.initargs);
            detail::finish_frame(out, start, detail::FrameKind::initialize, 0,
                                 attachments.descriptors.size());
            started.channel->outbox().add_descriptors(attachments.descriptors);
        }
        started.channel->start_reading();
        read_stderr(started);
        watch_exit(started);
        started.channel->flush();
        return true;
    }

    // ----- I/O thread only -------------------------------------------------------------------

    static detail::CallInfo info_of(const detail::TaskBase& task) noexcept
    {
        return {task.call_key, task.call_elements};
    }

    WorkerProcess* find_worker(std::size_t number)
    {
        for (auto& worker : workers_) {
            if (worker->number == number) {
                return worker.get();
            }
        }
        return nullptr;
    }

    /// Sends waiting work where the scheduler says, starts workers as needed, and finishes the
    /// shutdown once everything is done.
    void dispatch()
    {
        if (broken_reason_.empty()) {
            scheduler_.dispatch(*this);
        }
        for (auto& worker : workers_) {
            worker->channel->flush();
        }
        if (draining_) {
            finish_shutdown_if_idle();
        }
    }

    /// The next task to send: one that waits again (taken back, already marked running) first,
    /// else the next pending one that is not cancelled. Null if none.
    detail::TaskBase* next_task()
    {
        while (!waiting_again_.empty()) {
            auto* task = waiting_again_.front();
            waiting_again_.pop_front();
            {
                const std::lock_guard lock(mutex_);
                waiting_again_count_ = waiting_again_.size();
            }
            const auto* state = dynamic_cast<const detail::SharedStateBase*>(task);
            if (state == nullptr || !state->done()) {
                return task;
            }
            // Killed while its worker died or gave it back (kill() cancels the future first,
            // then stops the call): it must never run. The stop_call on its way finds nothing.
            finish_killed(task);
        }
        for (;;) {
            detail::TaskBase* task = nullptr;
            bool started = false;
            {
                const std::lock_guard lock(mutex_);
                if (pending_.empty()) {
                    return nullptr;
                }
                task = &pending_.front();
                pending_.pop_front();
                // Like Python, a task counts as running from when it is handed to a worker.
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
            task->discard(nullptr);
        }
    }

    /// kill() of a task whose future is cancelled already: it must not run, or stop running.
    void stop_call(detail::TaskBase* task)
    {
        if (const auto at = std::find(waiting_again_.begin(), waiting_again_.end(), task);
            at != waiting_again_.end()) {
            waiting_again_.erase(at);
            {
                const std::lock_guard lock(mutex_);
                waiting_again_count_ = waiting_again_.size();
            }
            finish_killed(task);
            return;
        }
        const auto found = scheduler_.find(task);
        if (!found) {
            return; // answered meanwhile: the answer was dropped (the future is cancelled)
        }
        WorkerProcess* worker = find_worker(found->worker);
        if (worker == nullptr) {
            return;
        }
        if (worker->claims.revoke(found->call.id)) {
            // Never started, and now never will.
            worker->claims.release(found->call.id);
            const bool was_front = found->position == 0;
            scheduler_.forget(found->worker, found->call.id);
            finish_killed(task);
            if (was_front) {
                worker->timeout_timer.cancel();
                if (!scheduler_.unanswered(worker->number).empty()) {
                    start_timeout(*worker);
                }
            }
            dispatch();
            return;
        }
        // The worker claimed it: it runs now (everything before it has finished).
        scheduler_.mark_started(found->worker, found->call.id);
        worker->killed_call = found->call.id;
        kill_worker(*worker, ExpectedDeath::killed_task);
    }

    void finish_killed(detail::TaskBase* task)
    {
        finish_task(Outcome::cancelled);
        task->discard(std::make_exception_ptr(
            CancelledError("futura::ProcessPoolExecutor::kill: the task was cancelled")));
    }

    void kill_worker(WorkerProcess& worker, ExpectedDeath why)
    {
        worker.expected_death = why;
        if (!worker.exited) { // reaped (a bad answer found while draining it): its pid is free
            ::kill(worker.pid, SIGKILL);
        }
    }

    void kill_for_bad_message(WorkerProcess& worker, const std::exception& e)
    {
        std::cerr << "futura: worker " << worker.pid << " sent a bad message (" << e.what()
                  << "); killing it\n";
        kill_worker(worker, ExpectedDeath::bad_message);
    }

    /// The front call of `worker` is the one it runs next (or now): its timeout counts from here.
    void start_timeout(WorkerProcess& worker)
    {
        if (!task_timeout_) {
            return;
        }
        worker.timeout_timer.expires_after(*task_timeout_);
        worker.timeout_timer.async_wait(
            [w = worker.shared_from_this()](const boost::system::error_code& ec) {
                if (!ec && !w->exited) {
                    w->pool.kill_worker(*w, ExpectedDeath::timeout);
                }
            });
    }

    void handle_frame(WorkerProcess& worker, const detail::Frame& frame,
                      detail::Attachments& attachments)
    {
        switch (frame.kind) {
        case detail::FrameKind::ready:
            worker.ready = true;
            start_kills_ = 0;
            scheduler_.worker_ready(worker.number);
            return;
        case detail::FrameKind::initialize_failed: {
            detail::WireReader reader(frame.payload);
            (void)reader.u64(); // its run time
            std::string why = "a worker's initializer failed";
            try {
                std::rethrow_exception(detail::decode_exception(reader));
            } catch (const std::exception& e) {
                why += std::string(": ") + e.what();
            }
            break_pool("futura::ProcessPoolExecutor: " + why + "; the pool is not usable anymore");
            return;
        }
        case detail::FrameKind::value:
        case detail::FrameKind::exception:
            break;
        default:
            throw detail::ProtocolError("futura: a worker sent a frame meant for workers");
        }
        detail::WireReader reader(frame.payload);
        reader.attach(attachments);
        const double seconds = static_cast<double>(reader.u64()) / 1e9;
        if (frame.task_id == 0 && frame.kind == detail::FrameKind::value) {
            return; // the initializer ran
        }
        auto* task = answered(worker, frame.task_id, seconds);
        if (frame.kind == detail::FrameKind::value) {
            finish_task(Outcome::completed);
            task->remote()->complete_from(reader);
        } else {
            std::exception_ptr error;
            try {
                error = detail::decode_exception(reader);
            } catch (...) {
                error = std::current_exception();
            }
            finish_task(Outcome::failed);
            task->discard(error);
        }
        after_answer(worker);
    }

    /// A large value answer has started to arrive: its result may take the rest straight into
    /// its storage (a vector of plain values, or a string), instead of the frame being buffered
    /// whole and decoded from there. The call stays unanswered until all of it is in: should the
    /// worker die meanwhile, it fails as any call its worker died in.
    std::span<char> start_answer_in_place(WorkerProcess& worker, const detail::Frame& frame)
    {
        const auto& calls = scheduler_.unanswered(worker.number);
        if (frame.task_id == 0 || calls.empty() || calls.front().id != frame.task_id) {
            return {}; // the initializer's, or not its turn: handle_frame says what is wrong
        }
        // The result is made (and its memory backed) at once, for bytes still to come: never
        // more than the memory that is free, so that a worker that only announces a huge answer
        // cannot make the parent back it. Buffered, an answer takes memory as it arrives.
        const auto free_bytes = static_cast<std::uint64_t>(::sysconf(_SC_AVPHYS_PAGES)) *
                                static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
        if (frame.payload.size() + frame.unread > free_bytes) {
            return {};
        }
        detail::WireReader reader(frame.payload);
        const double seconds = static_cast<double>(reader.u64()) / 1e9;
        auto* task = static_cast<detail::TaskBase*>(calls.front().task);
        const auto rest = task->remote()->receive_result_into(reader, frame.unread);
        if (!rest.empty()) {
            worker.arriving = WorkerProcess::ArrivingAnswer{frame.task_id, seconds};
        }
        return rest;
    }

    /// The answer `start_answer_in_place` took is all in its result.
    void finish_answer_in_place(WorkerProcess& worker)
    {
        const auto arriving = *worker.arriving;
        worker.arriving.reset();
        auto* task = answered(worker, arriving.task_id, arriving.seconds);
        finish_task(Outcome::completed);
        task->remote()->complete_from_received();
        after_answer(worker);
    }

    /// The bookkeeping of an answer to call `task_id` that ran `seconds`. @return its task.
    /// @throws ProtocolError if it is not the worker's oldest unanswered call.
    detail::TaskBase* answered(WorkerProcess& worker, std::uint64_t task_id, double seconds)
    {
        const auto call = scheduler_.answered(worker.number, task_id, seconds);
        worker.claims.release(call.id);
        worker.timeout_timer.cancel();
        ++worker.tasks_done;
        return static_cast<detail::TaskBase*>(call.task);
    }

    /// What follows any answer: the next call's timeout, and retirement.
    void after_answer(WorkerProcess& worker)
    {
        if (!scheduler_.unanswered(worker.number).empty()) {
            start_timeout(worker);
        }
        if (options_.max_tasks_per_child && worker.tasks_done >= *options_.max_tasks_per_child) {
            // The scheduler never sends it more than it runs: it has nothing left.
            close(worker, ExpectedDeath::retired);
        }
    }

    void finish_task(Outcome outcome)
    {
        const std::lock_guard lock(mutex_);
        counts_.finish(outcome);
    }

    /// Shuts the worker's channel: it finishes what it has and exits on end of input.
    void close(WorkerProcess& worker, ExpectedDeath why)
    {
        if (worker.closed) {
            return;
        }
        worker.closed = true;
        worker.expected_death = why;
        scheduler_.stop_sending(worker.number);
        worker.channel->shut_down_sending();
    }

    void read_stderr(WorkerProcess& worker)
    {
        worker.stderr_pipe.async_read_some(
            asio::buffer(worker.stderr_buffer),
            [keep = worker.shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                if (ec || keep->exited) {
                    return;
                }
                pass_stderr(*keep, n);
                keep->pool.read_stderr(*keep);
            });
    }

    /// Passes what the worker wrote through to our stderr, as a child writing to it directly
    /// would, and keeps the last lines for a crash report.
    static void pass_stderr(WorkerProcess& worker, std::size_t n)
    {
        std::size_t written = 0;
        while (written < n) {
            const auto w =
                ::write(STDERR_FILENO, worker.stderr_buffer.data() + written, n - written);
            if (w <= 0) {
                break;
            }
            written += static_cast<std::size_t>(w);
        }
        worker.stderr_tail.append(std::string_view(worker.stderr_buffer.data(), n));
    }

    void drain_stderr(WorkerProcess& worker)
    {
        boost::system::error_code ec;
        worker.stderr_pipe.non_blocking(true, ec);
        for (;;) {
            const auto n = worker.stderr_pipe.read_some(asio::buffer(worker.stderr_buffer), ec);
            if (ec || n == 0) {
                break;
            }
            pass_stderr(worker, n);
        }
        worker.stderr_tail.finish();
    }

    void watch_exit(WorkerProcess& worker)
    {
        worker.exit_watch.async_wait(
            asio::posix::stream_descriptor::wait_read,
            [w = worker.shared_from_this()](const boost::system::error_code& ec) {
                if (ec == asio::error::operation_aborted || w->exited) {
                    return;
                }
                w->pool.on_exit(*w);
            });
    }

    void on_exit(WorkerProcess& worker)
    {
        int status = 0;
        rusage usage{};
        pid_t reaped = 0;
        while ((reaped = ::wait4(worker.pid, &status, WNOHANG, &usage)) < 0 && errno == EINTR) {
        }
        if (reaped == 0) {
            // Not dead after all: the reactor reported a readiness that was not this pidfd's (a
            // descriptor number reused while the old one's registration lingered). The I/O
            // thread must never block here: watch again.
            watch_exit(worker);
            return;
        }
        worker.exited = true;
        // Answers it sent before dying may still sit in the socket: take them first, so that
        // only the task it was really running is charged with its death.
        worker.channel->drain();
        worker.channel->close();
        drain_stderr(worker); // whatever it wrote last may still sit in the pipe
        const bool was_ready = worker.ready;
        const ExpectedDeath why = worker.expected_death;
        boost::system::error_code ignored;
        worker.timeout_timer.cancel();
        worker.stderr_pipe.close(ignored);
        worker.exit_watch.close(ignored);

        // The claim table says which call it had started: that one ran when it died. The
        // others never started, and go to other workers.
        auto lost = scheduler_.remove_worker(worker.number);
        // Its cached segments would wait for an idle second to go: they go now. A call of it
        // sent again keeps its own segment, and goes to a receiver the cache no longer knows.
        segment_cache_.forget(worker.number);
        std::optional<detail::SentCall> running;
        if (!lost.empty() && worker.claims.claimed(lost.front().id)) {
            running = lost.front();
            lost.pop_front();
        }
        const auto activity = !was_ready ? detail::WorkerActivity::starting
                              : running  ? detail::WorkerActivity::running
                                         : detail::WorkerActivity::idle;
        const std::string report = detail::crash_report(
            worker.pid, status, usage, why, detail::oom_kills() > worker.oom_kills_at_start,
            activity, worker.stderr_tail);
        if (running) {
            // Killed for a call that finished just before the signal landed: the one it had
            // started by then is innocent, and runs again elsewhere.
            const bool innocent =
                why == ExpectedDeath::killed_task && worker.killed_call != running->id;
            if (innocent) {
                lost.push_front(*running);
            } else {
                fail_running(static_cast<detail::TaskBase*>(running->task), why, report);
            }
        }
        if (!lost.empty()) {
            std::vector<detail::SentCall> back(lost.begin(), lost.end());
            wait_again(std::move(back));
        }
        {
            const std::lock_guard lock(mutex_);
            --alive_;
            if (why != ExpectedDeath::shutdown && why != ExpectedDeath::signalled) {
                ++lost_workers_;
            }
        }
        std::erase_if(workers_, [&](const auto& w) { return w.get() == &worker; });
        if (!was_ready && why == ExpectedDeath::unexpected) {
            // SIGKILL from outside (the kernel's OOM killer under memory pressure, an operator)
            // says nothing about the program: start another, a few times. Any other death
            // before the worker could serve (in a global constructor, say) would most likely
            // repeat in a replacement, in a loop: the pool breaks, as Python's does.
            const bool killed_from_outside = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
            if (killed_from_outside && ++start_kills_ <= max_start_kills) {
                std::cerr << report << "; starting another (" << start_kills_ << " of at most "
                          << max_start_kills << " in a row)\n";
            } else {
                break_pool("futura::ProcessPoolExecutor: a worker process died while starting: " +
                           report);
            }
        }
        if (why == ExpectedDeath::signalled) {
            fail_waiting_again(std::make_exception_ptr(WorkerCrashed(report)));
        }
        dispatch();
    }

    void fail_running(detail::TaskBase* task, ExpectedDeath why, const std::string& report)
    {
        std::exception_ptr error;
        Outcome outcome = Outcome::failed;
        switch (why) {
        case ExpectedDeath::timeout:
            error = std::make_exception_ptr(TimeoutError(
                "futura::ProcessPoolExecutor: the task ran longer than task_timeout (" +
                std::to_string(std::chrono::duration<double>(*task_timeout_).count()) +
                " s); its worker was killed and replaced"));
            break;
        case ExpectedDeath::killed_task:
            outcome = Outcome::cancelled;
            error = std::make_exception_ptr(CancelledError(
                "futura::ProcessPoolExecutor::kill: the task was stopped while it ran; its "
                "worker was killed and replaced"));
            break;
        default:
            error = std::make_exception_ptr(WorkerCrashed(report));
            break;
        }
        finish_task(outcome);
        task->discard(error);
    }

    void fail_waiting_again(const std::exception_ptr& error)
    {
        while (!waiting_again_.empty()) {
            auto* task = waiting_again_.front();
            waiting_again_.pop_front();
            finish_task(Outcome::failed);
            task->discard(error);
        }
        const std::lock_guard lock(mutex_);
        waiting_again_count_ = 0;
    }

    /// The pool cannot go on: fail everything queued or sent, refuse new work, stop workers.
    void break_pool(const std::string& why)
    {
        if (broken_reason_.empty()) {
            broken_reason_ = why;
        }
        TaskQueue pending;
        {
            const std::lock_guard lock(mutex_);
            admission_.break_with(why);
            pending = detail::take_all(pending_, counts_, Outcome::failed);
        }
        const auto error = std::make_exception_ptr(BrokenProcessPool(broken_reason_));
        detail::discard_all(std::move(pending), error);
        fail_waiting_again(error);
        for (auto& worker : workers_) {
            for (const auto& call : scheduler_.remove_worker(worker->number)) {
                finish_task(Outcome::failed);
                static_cast<detail::TaskBase*>(call.task)->discard(error);
            }
            kill_worker(*worker, ExpectedDeath::shutdown);
        }
        draining_ = true;
    }

    /// Gives the cached segments back once the pool has been idle for `segment_idle`: a pool
    /// that is not sending large vectors holds no warm memory for long, and one whose calls run
    /// (or whose answers are read) for longer than that keeps them warm for its next calls.
    void trim_segments_when_idle()
    {
        cache_timer_.expires_after(detail::segment_idle);
        cache_timer_.async_wait([this](const boost::system::error_code& error) {
            if (error) {
                return;
            }
            if (calls_in_flight()) {
                segment_cache_.touch();
            } else {
                segment_cache_.trim(detail::segment_idle);
            }
            if (segment_cache_.held_bytes() != 0) {
                trim_segments_when_idle();
            }
        });
    }

    [[nodiscard]] bool calls_in_flight()
    {
        return waiting() > 0 ||
               std::any_of(workers_.begin(), workers_.end(), [&](const auto& worker) {
                   return !scheduler_.unanswered(worker->number).empty();
               });
    }

    void finish_shutdown_if_idle()
    {
        if (waiting() > 0) {
            return;
        }
        for (auto& worker : workers_) {
            if (scheduler_.unanswered(worker->number).empty()) {
                close(*worker, ExpectedDeath::shutdown);
            }
        }
        if (workers_.empty()) {
            cache_timer_.cancel(); // a pending trim would keep the I/O thread alive
            segment_cache_.trim({});
            work_.reset(); // the I/O thread ends once nothing is left to do
        }
    }

    const ProcessPoolOptions options_;
    const std::size_t max_workers_;
    const std::optional<detail::Clock::duration> task_timeout_;
    detail::WorkerLaunch launch_;
    boost::intrusive_ptr<Terminator> terminator_;

    mutable std::mutex mutex_; // guards everything from here to join_mutex_
    TaskQueue pending_;
    detail::Admission<BrokenProcessPool> admission_;
    detail::TaskCounts<detail::LockedCount> counts_;
    std::size_t alive_ = 0;
    std::size_t replaced_ = 0;
    std::size_t lost_workers_ = 0; // workers that died or retired and are not yet replaced
    std::size_t waiting_again_count_ = 0;

    std::mutex join_mutex_; // serialises joining the I/O thread

    // The I/O thread's own state: touched only by handlers running on io_ (the scheduler's
    // estimates excepted, which are thread-safe for `map`'s chunk sizes).
    detail::Scheduler scheduler_;
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    // Shared: completion handlers keep a worker alive until they have run, after it is reaped.
    std::vector<std::shared_ptr<WorkerProcess>> workers_;
    // Tasks taken back from a worker (revoked, or it died before starting them): already
    // marked running, they go before pending ones.
    std::deque<detail::TaskBase*> waiting_again_;
    bool draining_ = false;
    std::string broken_reason_;
    // Workers killed from outside in a row before they said hello; past the limit, the pool
    // breaks rather than start workers forever.
    static constexpr std::size_t max_start_kills = 3;
    std::size_t start_kills_ = 0;
    std::atomic<bool> kick_posted_{false};
    // Warm segments for large arguments (issue 13), given back once unused for segment_idle.
    detail::SegmentCache segment_cache_{options_.segment_cache_bytes};
    asio::steady_timer cache_timer_{io_};

    std::thread io_thread_;
};

ProcessPoolExecutor::ProcessPoolExecutor(ProcessPoolOptions options)
    : impl_(std::make_unique<Impl>(std::move(options)))
{}

ProcessPoolExecutor::~ProcessPoolExecutor()
{
    if (impl_->on_io_thread()) {
        // The last owner went inside a done callback: this very call runs in the pool's
        // io_context, which cannot be destroyed under itself. As shutdown() does on this thread,
        // the destructor does not wait: a thread of its own finishes the shutdown and frees it.
        impl_->shutdown({.wait = false, .cancel_futures = false});
        std::thread([impl = std::move(impl_)]() mutable { impl.reset(); }).detach();
    }
    // Otherwise Impl's destructor shuts down and waits.
}

void ProcessPoolExecutor::schedule(detail::TaskPtr task) { impl_->schedule(std::move(task)); }

void ProcessPoolExecutor::do_shutdown(const ShutdownOptions& options) { impl_->shutdown(options); }

std::size_t ProcessPoolExecutor::do_max_workers() const noexcept { return impl_->max_workers(); }

std::size_t ProcessPoolExecutor::do_share_threshold() const noexcept
{
    return impl_->share_threshold();
}

ExecutorStats ProcessPoolExecutor::do_stats() const { return impl_->stats(); }

std::size_t ProcessPoolExecutor::do_auto_chunksize(std::optional<std::size_t> total,
                                                   detail::CallKey key) const
{
    return impl_->auto_chunksize(total, key);
}

void ProcessPoolExecutor::terminate_workers() { impl_->signal_workers(SIGTERM); }

void ProcessPoolExecutor::kill_workers() { impl_->signal_workers(SIGKILL); }

bool ProcessPoolExecutor::kill_task(detail::SharedStateBase* state)
{
    return impl_->kill_task(state);
}

} // namespace futura
