// The parent side of the process pool: one I/O thread runs an io_context that drives every
// worker's channel, stderr pipe and exit watch, so the parent's threads never block on a worker.
//
// A task goes pending_ (any thread, under mutex_) -> a worker's in_flight (I/O thread only) ->
// completed from the worker's answer, or failed when the worker dies. Each worker gets a small
// window of tasks, sized from measured task durations, so tiny tasks travel in batches while a
// crash or timeout is still charged to exactly the task the worker was running: it answers in
// order, so the running task is always the front of its window.
// Boost.Process v2 on std::filesystem (no Boost.Filesystem to link); its 1.81 configuration
// header forgets the Boost headers it then uses unqualified.
#define BOOST_PROCESS_USE_STD_FS 1
#include <futura/detail/channel.hpp>
#include <futura/detail/protocol.hpp>
#include <futura/detail/worker.hpp>
#include <futura/process_pool_executor.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/intrusive/list.hpp>
#include <boost/optional.hpp>
#include <boost/process/v2/environment.hpp>
#include <boost/process/v2/process.hpp>
#include <boost/process/v2/stdio.hpp>
#include <boost/type_traits/decay.hpp>
#include <boost/type_traits/is_convertible.hpp>
// Header-only 1.81 leaves this part of process_environment out of environment.hpp.
#include <boost/process/v2/impl/environment.ipp>
#include <boost/process/v2/start_dir.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdio_ext.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ; // NOLINT

namespace futura {

namespace asio = boost::asio;
namespace bp = boost::process::v2;

namespace {

using TaskQueue =
    boost::intrusive::list<detail::TaskBase, boost::intrusive::constant_time_size<true>>;
using Clock = detail::Clock;

constexpr int worker_channel_fd = 3;
constexpr std::size_t stderr_lines_kept = 20;
constexpr std::size_t max_window = 64;
// Queue at most about this much estimated work ahead in each worker.
constexpr auto window_target = std::chrono::milliseconds(1);
// Automatic map chunks aim at about this much work each, and at most this many inputs.
constexpr auto chunk_target = std::chrono::milliseconds(50);
constexpr std::size_t max_auto_chunk = 100000;

/// Prepares the forked child for exec as a worker. Also replaces Boost.Process's bind_fd, whose
/// 1.81 on_setup falls off its end without returning.
struct WorkerSetup
{
    pid_t parent;
    int channel;

    template <class Launcher>
    bp::error_code on_setup(Launcher& launcher, const bp::filesystem::path& /*exe*/,
                            const char* const*& /*cmd_line*/)
    {
        launcher.fd_whitelist.push_back(worker_channel_fd);
        return {};
    }

    template <class Launcher>
    bp::error_code on_exec_setup(Launcher& /*launcher*/, const bp::filesystem::path& /*exe*/,
                                 const char* const*& /*cmd_line*/)
    {
        // The worker must die with the parent (precisely: with the forking thread, the pool's
        // I/O thread, which lives as long as the pool).
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) {
            ::_exit(1); // the parent died before prctl took effect
        }
        // Ctrl-C reaches the whole process group: the parent decides what happens to workers.
        std::signal(SIGINT, SIG_IGN);
        const int moved = channel == worker_channel_fd
                              ? ::fcntl(channel, F_SETFD, 0) // keep it open across exec
                              : ::dup2(channel, worker_channel_fd);
        if (moved == -1) {
            return {errno, bp::system_category()};
        }
        return {};
    }
};

std::string describe_status(int status)
{
    if (WIFSIGNALED(status)) {
        const int signal = WTERMSIG(status);
        const char* name = sigabbrev_np(signal);
        return "killed by signal " + std::to_string(signal) + " (SIG" +
               (name != nullptr ? name : "?") + ": " + strsignal(signal) + ")";
    }
    if (WIFEXITED(status)) {
        return "exited with status " + std::to_string(WEXITSTATUS(status));
    }
    return "ended with wait status " + std::to_string(status);
}

/// How many processes the kernel's out-of-memory killer has killed since boot.
std::uint64_t oom_kills() noexcept
{
    std::FILE* vmstat = std::fopen("/proc/vmstat", "re");
    if (vmstat == nullptr) {
        return 0;
    }
    char name[64];
    unsigned long long value = 0;
    std::uint64_t kills = 0;
    while (std::fscanf(vmstat, "%63s %llu", name, &value) == 2) {
        if (std::strcmp(name, "oom_kill") == 0) {
            kills = value;
            break;
        }
    }
    std::fclose(vmstat);
    return kills;
}

} // namespace

/// The socket buffers of a worker's channel, each way.
constexpr int channel_buffer_bytes = 4 * 1024 * 1024;

class ProcessPoolExecutor::Impl
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
        std::mutex mutex_;
        Impl* pool_;
    };

public:
    explicit Impl(ProcessPoolOptions options)
        : options_(std::move(options)),
          max_workers_(detail::checked_max_workers(options_.max_workers, "ProcessPoolExecutor")),
          work_(asio::make_work_guard(io_))
    {
        if (options_.max_tasks_per_child && *options_.max_tasks_per_child == 0) {
            throw std::invalid_argument(
                "futura::ProcessPoolExecutor: max_tasks_per_child must be greater than 0");
        }
        if (options_.task_timeout && options_.task_timeout->count() <= 0) {
            throw std::invalid_argument(
                "futura::ProcessPoolExecutor: task_timeout must be positive");
        }
        if (!detail::main_is_wrapped()) {
            throw BrokenProcessPool(
                "futura::ProcessPoolExecutor: this program cannot start worker processes, because "
                "its main() is not wrapped by futura: link it with -Wl,--wrap=main (linking "
                "futura::futura in CMake or /futura//futura in b2 adds it as a usage "
                "requirement)");
        }
        environment_ = worker_environment();
        terminator_ = new Terminator(this);
        io_thread_ = std::thread([this] { io_.run(); });
    }

    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

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
        {
            const std::lock_guard lock(mutex_);
            if (!broken_.empty()) {
                throw BrokenProcessPool(broken_);
            }
            if (shut_down_) {
                throw ShutdownError();
            }
            task->terminator = terminator_;
            pending_.push_back(*task.release());
            ++submitted_;
        }
        kick();
    }

    void shutdown(const ShutdownOptions& options)
    {
        TaskQueue cancelled;
        {
            const std::lock_guard lock(mutex_);
            shut_down_ = true;
            if (options.cancel_futures) {
                cancelled.swap(pending_);
                cancelled_ += cancelled.size();
            }
        }
        cancelled.clear_and_dispose([](detail::TaskBase* task) { task->discard(nullptr); });
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
                worker->expected_death = Death::signalled;
                ::kill(worker->pid, signal);
            }
        });
    }

    bool kill_task(detail::SharedStateBase* state)
    {
        if (state == nullptr) {
            throw InvalidStateError("futura::ProcessPoolExecutor::kill: the future has no state");
        }
        if (state->cancel()) {
            return true; // still pending: it never runs
        }
        if (!state->cancel_running()) {
            return false; // already done
        }
        auto* task = dynamic_cast<detail::TaskBase*>(state);
        asio::post(io_, [this, task] {
            for (auto& worker : workers_) {
                auto& in_flight = worker->in_flight;
                for (std::size_t i = 0; i < in_flight.size(); ++i) {
                    if (in_flight[i].task != task) {
                        continue;
                    }
                    in_flight[i].killed = true;
                    if (i == 0) {
                        kill_running(*worker);
                    } // else it waits behind others there: killed when it starts (started_running)
                }
            }
        });
        return true;
    }

    [[nodiscard]] std::size_t max_workers() const noexcept { return max_workers_; }

    /// `map`'s chunks: as `multiprocessing.Pool.map` does, about four per worker when the number
    /// of inputs is known; but no chunk longer than `chunk_target` by the measured duration of
    /// tasks, so long tasks still spread over all workers.
    [[nodiscard]] std::size_t auto_chunksize(std::optional<std::size_t> total) const
    {
        const double seconds = task_seconds_.load(std::memory_order_relaxed);
        const double target = std::chrono::duration<double>(chunk_target).count();
        const std::size_t by_time =
            seconds > 0 ? static_cast<std::size_t>(target / seconds) : max_auto_chunk;
        std::size_t chunk = max_auto_chunk;
        if (total) {
            const auto parts = 4 * max_workers_;
            chunk = (*total + parts - 1) / parts;
        } else if (seconds <= 0) {
            chunk = 1; // nothing measured, nothing known: one at a time until we learn
        }
        return std::clamp<std::size_t>(std::min(chunk, by_time), 1, max_auto_chunk);
    }

    [[nodiscard]] ExecutorStats stats() const
    {
        const std::lock_guard lock(mutex_);
        ExecutorStats stats;
        stats.submitted = submitted_;
        stats.queued = pending_.size() + requeued_count_;
        stats.running = running_;
        stats.completed = completed_;
        stats.failed = failed_;
        stats.cancelled = cancelled_;
        stats.workers_alive = alive_;
        stats.workers_replaced = replaced_;
        return stats;
    }

private:
    enum class Death
    {
        unexpected,
        timeout,
        killed_task,
        retired,
        shutdown,
        signalled
    };

    struct InFlight
    {
        detail::TaskBase* task;
        std::uint64_t id;
        /// kill(future) reached it while it waited behind another task in the worker: the
        /// worker is killed as soon as it gets to it.
        bool killed = false;
    };

    struct Worker : std::enable_shared_from_this<Worker>
    {
        explicit Worker(asio::io_context& io)
            : channel(io), stderr_pipe(io), exit_watch(io), timeout_timer(io)
        {}

        pid_t pid = -1;
        std::uint64_t oom_kills_at_start = oom_kills();
        asio::local::stream_protocol::socket channel;
        asio::posix::stream_descriptor stderr_pipe;
        asio::posix::stream_descriptor exit_watch; // a pidfd: readable once the worker exits
        asio::steady_timer timeout_timer;

        bool ready = false;    // it said hello: it runs
        bool retiring = false; // max_tasks_per_child reached: no more work
        bool closed = false;   // channel shut: it will exit
        bool exited = false;   // reaped: handlers still pending must do nothing
        Death expected_death = Death::unexpected;
        std::deque<InFlight> in_flight; // sent, not answered; the front is running
        std::uint64_t next_id = 1;
        std::size_t tasks_done = 0;
        std::size_t tasks_sent = 0;
        Clock::time_point running_since{};
        double task_seconds = -1; // moving average of task durations; < 0: none measured yet

        detail::ReceiveBuffer inbox;
        detail::ReceivedDescriptors received; // not yet claimed by a frame in the inbox
        std::vector<char> outbox;             // frames waiting for the current write to finish
        std::vector<char> sending;            // the bytes of the write in progress
        std::vector<detail::UniqueFd> outbox_descriptors;  // what the frames in outbox refer to
        std::vector<detail::UniqueFd> sending_descriptors; // sent with the first bytes of sending
        std::size_t descriptors_sent = 0;
        bool writing = false;

        std::deque<std::string> stderr_lines; // the last lines it wrote, for WorkerCrashed
        std::string stderr_partial;
        std::array<char, 4096> stderr_buffer{};
    };

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

    std::vector<std::string> worker_environment() const
    {
        std::map<std::string, std::string> variables;
        for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
            const std::string_view text(*entry);
            const auto equals = text.find('=');
            if (equals != std::string_view::npos) {
                variables.emplace(std::string(text.substr(0, equals)),
                                  std::string(text.substr(equals + 1)));
            }
        }
        const std::size_t inner = options_.inner_max_num_threads.value_or(
            std::max<std::size_t>(1, available_cpus() / max_workers_));
        if (inner > 0) {
            for (const char* name :
                 {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}) {
                variables.try_emplace(name, std::to_string(inner)); // the user's setting wins
            }
        }
        for (const auto& [name, value] : options_.environment) {
            variables[name] = value;
        }
        variables[detail::worker_channel_variable] = std::to_string(worker_channel_fd);
        variables[detail::worker_share_threshold_variable] =
            std::to_string(options_.share_threshold);
        std::vector<std::string> environment;
        environment.reserve(variables.size());
        for (const auto& [name, value] : variables) {
            environment.push_back(name + "=" + value);
        }
        return environment;
    }

    // ----- I/O thread only --------------------------------------------------------------------

    std::size_t window(const Worker& worker) const
    {
        std::size_t size = 1; // until tasks are known to be short: idle workers get them first
        if (worker.task_seconds >= 0) {
            const double target = std::chrono::duration<double>(window_target).count();
            const auto fits =
                static_cast<std::size_t>(target / std::max(worker.task_seconds, 1e-7));
            size = std::clamp<std::size_t>(fits, 1, max_window);
        }
        if (options_.max_tasks_per_child) {
            // Never send a worker more than it will run before it retires.
            const auto left = *options_.max_tasks_per_child -
                              std::min(worker.tasks_sent, *options_.max_tasks_per_child);
            size = std::min(size, worker.in_flight.size() + left);
        }
        return size;
    }

    /// Hands pending work to workers with room, starts workers as needed, and finishes the
    /// shutdown once everything is done.
    void dispatch()
    {
        for (;;) {
            Worker* target = nullptr;
            for (auto& worker : workers_) {
                if (worker->ready && !worker->retiring && !worker->closed &&
                    worker->in_flight.size() < window(*worker) &&
                    (target == nullptr || worker->in_flight.size() < target->in_flight.size())) {
                    target = worker.get();
                }
            }
            if (target == nullptr) {
                break;
            }
            detail::TaskBase* task = next_task();
            if (task == nullptr) {
                break;
            }
            send(*target, *task);
        }
        start_workers_needed();
        for (auto& worker : workers_) {
            flush(*worker);
        }
        if (draining_) {
            finish_shutdown_if_idle();
        }
    }

    /// A task to send: one taken back from a dead worker first (already started), else the
    /// next pending one that is not cancelled. Null if none.
    detail::TaskBase* next_task()
    {
        if (!requeued_.empty()) {
            auto* task = requeued_.front();
            requeued_.pop_front();
            const std::lock_guard lock(mutex_);
            --requeued_count_;
            return task;
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
                started = task->start();
                ++(started ? running_ : cancelled_);
            }
            if (started) {
                return task;
            }
            task->discard(nullptr);
        }
    }

    void send(Worker& worker, detail::TaskBase& task)
    {
        const auto start = detail::begin_frame(worker.outbox);
        detail::Attachments attachments;
        detail::WireWriter call(worker.outbox);
        call.attach(attachments);
        call.share_threshold(options_.share_threshold);
        bool encoded = false;
        std::exception_ptr error;
        try {
            encoded = task.encode_call(call);
            if (!encoded) {
                error =
                    std::make_exception_ptr(std::invalid_argument(task.not_transferable_message()));
            }
        } catch (...) {
            error = std::current_exception();
        }
        if (!encoded) {
            worker.outbox.resize(start);
            finish_task(&task, Outcome::failed);
            task.discard(error);
            return;
        }
        const auto id = worker.next_id++;
        detail::finish_frame(worker.outbox, start, detail::FrameKind::call, id,
                             attachments.descriptors.size());
        for (auto& descriptor : attachments.descriptors) {
            worker.outbox_descriptors.push_back(std::move(descriptor));
        }
        worker.in_flight.push_back({&task, id});
        ++worker.tasks_sent;
        if (worker.in_flight.size() == 1) {
            started_running(worker);
        }
    }

    void kill_running(Worker& worker)
    {
        worker.expected_death = Death::killed_task;
        ::kill(worker.pid, SIGKILL);
    }

    void started_running(Worker& worker)
    {
        if (worker.in_flight.front().killed) {
            // Already cancelled: the worker may have started it a moment ago, but never gets
            // to finish it. The tasks behind it go to other workers.
            kill_running(worker);
            return;
        }
        worker.running_since = Clock::now();
        if (options_.task_timeout) {
            worker.timeout_timer.expires_after(
                std::chrono::duration_cast<Clock::duration>(*options_.task_timeout));
            worker.timeout_timer.async_wait(
                [w = worker.shared_from_this()](const boost::system::error_code& ec) {
                    if (!ec && !w->exited) {
                        w->expected_death = Death::timeout;
                        ::kill(w->pid, SIGKILL);
                    }
                });
        }
    }

    void flush(Worker& worker)
    {
        if (worker.writing || worker.outbox.empty() || worker.closed) {
            return;
        }
        worker.writing = true;
        worker.sending.swap(worker.outbox);
        worker.outbox.clear();
        worker.sending_descriptors.swap(worker.outbox_descriptors);
        worker.descriptors_sent = 0;
        write_sending(worker);
    }

    /// Writes `worker.sending`: first the descriptors, each batch of them riding on one byte
    /// (so they reach the worker before the frames that name them), then the rest.
    void write_sending(Worker& worker)
    {
        while (worker.descriptors_sent < worker.sending_descriptors.size()) {
            const std::span<const detail::UniqueFd> all(worker.sending_descriptors);
            const auto n = detail::send_descriptors(
                worker.channel.native_handle(),
                std::span<const char>(worker.sending).subspan(bytes_with_descriptors(worker)),
                all.subspan(worker.descriptors_sent), /*nonblocking=*/true);
            if (n < 0 && errno == EAGAIN) {
                worker.channel.async_wait(
                    asio::socket_base::wait_write,
                    [this, w = worker.shared_from_this()](const boost::system::error_code& ec) {
                        if (!ec && !w->exited) {
                            write_sending(*w);
                        }
                    });
                return;
            }
            if (n < 0) {
                return; // the worker is dying: its exit watch cleans up
            }
            worker.descriptors_sent =
                std::min(worker.descriptors_sent + detail::Attachments::max_descriptors,
                         worker.sending_descriptors.size());
        }
        const auto done = bytes_with_descriptors(worker);
        worker.sending_descriptors.clear(); // the worker holds its own references now
        worker.descriptors_sent = 0;
        asio::async_write(worker.channel,
                          asio::buffer(worker.sending.data() + done, worker.sending.size() - done),
                          [this, w = worker.shared_from_this()](const boost::system::error_code& ec,
                                                                std::size_t) {
                              w->writing = false;
                              detail::clear_buffer(w->sending);
                              if (!ec && !w->exited) {
                                  flush(*w);
                              } // on error the worker is dying: its exit watch cleans up
                          });
    }

    /// How many bytes of `sending` went out carrying descriptors: one per batch sent.
    static std::size_t bytes_with_descriptors(const Worker& worker) noexcept
    {
        const auto batch = detail::Attachments::max_descriptors;
        return (worker.descriptors_sent + batch - 1) / batch;
    }

    void start_workers_needed()
    {
        if (!broken_reason_.empty()) {
            return;
        }
        std::size_t waiting = requeued_.size();
        {
            const std::lock_guard lock(mutex_);
            waiting += pending_.size();
        }
        std::size_t starting = 0;
        std::size_t usable = 0;
        for (const auto& worker : workers_) {
            starting += worker->ready ? 0U : 1U;
            usable += (!worker->retiring && !worker->closed) ? 1U : 0U;
        }
        // One new worker per waiting task that no starting worker will take, as Python does.
        while (waiting > starting && usable < max_workers_) {
            if (!start_worker()) {
                return;
            }
            ++starting;
            ++usable;
        }
    }

    bool start_worker()
    {
        auto worker = std::make_shared<Worker>(io_);
        try {
            asio::local::stream_protocol::socket child_end(io_);
            asio::local::connect_pair(worker->channel, child_end);
            // Large arguments and results cross in fewer, larger steps (the kernel caps it at
            // net.core.wmem_max/rmem_max; a failure only leaves the default).
            boost::system::error_code ignored;
            for (auto* end : {&worker->channel, &child_end}) {
                end->set_option(asio::socket_base::send_buffer_size(channel_buffer_bytes), ignored);
                end->set_option(asio::socket_base::receive_buffer_size(channel_buffer_bytes),
                                ignored);
            }
            int err_pipe[2];
            if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
                throw std::system_error(errno, std::generic_category(), "pipe2");
            }
            worker->stderr_pipe.assign(err_pipe[0]);
            worker->pid = options_.start_method == StartMethod::fork
                              ? fork_worker(child_end.native_handle(), err_pipe[1])
                              : spawn_worker(child_end.native_handle(), err_pipe[1]);
            ::close(err_pipe[1]);
            // Our own pidfd (safe: an unreaped child's pid cannot be reused), so that we reap the
            // worker ourselves, with its resource usage.
            const auto pidfd = static_cast<int>(::syscall(SYS_pidfd_open, worker->pid, 0));
            if (pidfd < 0) {
                ::kill(worker->pid, SIGKILL);
                ::waitpid(worker->pid, nullptr, 0);
                throw std::system_error(errno, std::generic_category(), "pidfd_open");
            }
            worker->exit_watch.assign(pidfd);
        } catch (const std::exception& e) {
            break_pool(std::string("futura::ProcessPoolExecutor: could not start a worker "
                                   "process: ") +
                       e.what());
            return false;
        }
        Worker& started = *worker;
        workers_.push_back(std::move(worker));
        {
            const std::lock_guard lock(mutex_);
            ++alive_;
            if (lost_workers_ > 0) {
                --lost_workers_;
                ++replaced_;
            }
        }
        if (options_.initializer != nullptr) {
            const auto start = detail::begin_frame(started.outbox);
            detail::WireWriter call(started.outbox);
            detail::encode_function_address(
                call, reinterpret_cast<const void*>(options_.initializer)); // NOLINT
            detail::finish_frame(started.outbox, start, detail::FrameKind::initialize, 0);
        }
        read_channel(started);
        read_stderr(started);
        watch_exit(started);
        flush(started);
        return true;
    }

    /// Starts this program afresh as a worker. @return its pid.
    pid_t spawn_worker(int channel, int err)
    {
        const std::vector<std::string> arguments;
        bp::process child(
            io_.get_executor(), "/proc/self/exe", arguments, bp::process_stdio{nullptr, {}, err},
            bp::process_environment(environment_),
            bp::process_start_dir(options_.working_directory.empty()
                                      ? std::filesystem::current_path()
                                      : std::filesystem::path(options_.working_directory)),
            WorkerSetup{::getpid(), channel});
        const pid_t pid = child.id();
        child.detach(); // we reap it ourselves (see start_worker)
        return pid;
    }

    /// Forks this process into a worker (no exec). Only the forking thread exists in the
    /// child: a lock another thread held at the fork stays locked there, hence `spawn` is the
    /// default, as in Python 3.14. @return its pid.
    pid_t fork_worker(int channel, int err)
    {
        const pid_t parent = ::getpid();
        const pid_t pid = ::fork();
        if (pid < 0) {
            throw std::system_error(errno, std::generic_category(), "fork");
        }
        if (pid > 0) {
            return pid;
        }
        // The child. It never returns to the parent's io_context. Output the parent had
        // buffered but not written is the parent's to write: drop our copy, or the worker's
        // exit would print it a second time.
        __fpurge(stdout);
        __fpurge(stderr);
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) {
            ::_exit(1);
        }
        std::signal(SIGINT, SIG_IGN);
        const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null < 0 || ::dup2(null, STDIN_FILENO) < 0 || ::dup2(err, STDERR_FILENO) < 0 ||
            ::dup2(channel, worker_channel_fd) < 0 ||
            (!options_.working_directory.empty() &&
             ::chdir(options_.working_directory.c_str()) != 0)) {
            ::_exit(2);
        }
        // Other workers' channels must not stay open here: a worker learns of shutdown by
        // end of input, which never comes while another process holds the other end.
        ::syscall(SYS_close_range, worker_channel_fd + 1, ~0U, 0);
        for (const auto& variable : environment_) {
            const auto equals = variable.find('=');
            ::setenv(variable.substr(0, equals).c_str(), variable.substr(equals + 1).c_str(), 1);
        }
        detail::run_worker(worker_channel_fd, /*forked=*/true, options_.share_threshold);
    }

    void read_channel(Worker& worker)
    {
        // Waits for readability, then reads with recvmsg: descriptors come as control data,
        // which Asio's reads would drop.
        worker.channel.async_wait(
            asio::socket_base::wait_read,
            [this, w = worker.shared_from_this()](const boost::system::error_code& ec) {
                if (w->exited || ec) {
                    return; // reaped meanwhile (on_exit read what was left), or gone
                }
                ssize_t n = 0;
                try {
                    n = detail::receive_some(w->channel.native_handle(), w->inbox, w->received,
                                             /*nonblocking=*/true);
                } catch (const std::exception& e) {
                    kill_for_bad_message(*w, e);
                    return;
                }
                if (n == 0 || (n < 0 && errno != EAGAIN)) {
                    return; // the worker is gone: its exit watch takes over
                }
                if (handle_frames(*w)) {
                    read_channel(*w);
                }
                dispatch();
            });
    }

    void kill_for_bad_message(Worker& worker, const std::exception& e)
    {
        std::cerr << "futura: worker " << worker.pid << " sent a bad message (" << e.what()
                  << "); killing it\n";
        ::kill(worker.pid, SIGKILL);
    }

    /// @return false if the worker is being killed for a protocol error.
    bool handle_frames(Worker& worker)
    {
        std::size_t consumed = 0;
        try {
            while (auto frame =
                       detail::parse_frame(std::span<const char>(worker.inbox).subspan(consumed))) {
                consumed += frame->size;
                detail::Attachments attachments;
                detail::claim_descriptors(worker.received, frame->descriptors, attachments);
                handle_frame(worker, *frame, attachments);
            }
        } catch (const std::exception& e) {
            kill_for_bad_message(worker, e);
            return false;
        }
        if (consumed == worker.inbox.size()) {
            detail::clear_buffer(worker.inbox);
        } else {
            worker.inbox.erase(worker.inbox.begin(),
                               worker.inbox.begin() + static_cast<std::ptrdiff_t>(consumed));
        }
        return true;
    }

    void handle_frame(Worker& worker, const detail::Frame& frame, detail::Attachments& attachments)
    {
        switch (frame.kind) {
        case detail::FrameKind::ready:
            worker.ready = true;
            return;
        case detail::FrameKind::initialize_failed: {
            detail::WireReader reader(frame.payload);
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
        if (frame.task_id == 0 && frame.kind == detail::FrameKind::value) {
            return; // the initializer ran
        }
        if (worker.in_flight.empty() || worker.in_flight.front().id != frame.task_id) {
            throw detail::ProtocolError("futura: a worker answered a task it was not running");
        }
        auto* task = worker.in_flight.front().task;
        worker.in_flight.pop_front();
        const double seconds =
            std::chrono::duration<double>(Clock::now() - worker.running_since).count();
        worker.task_seconds =
            worker.task_seconds < 0 ? seconds : 0.8 * worker.task_seconds + 0.2 * seconds;
        task_seconds_.store(worker.task_seconds, std::memory_order_relaxed);
        worker.timeout_timer.cancel();
        ++worker.tasks_done;
        detail::WireReader reader(frame.payload);
        reader.attach(attachments);
        if (frame.kind == detail::FrameKind::value) {
            finish_task(task, Outcome::completed);
            task->complete_from(reader);
        } else {
            std::exception_ptr error;
            try {
                error = detail::decode_exception(reader);
            } catch (...) {
                error = std::current_exception();
            }
            finish_task(task, Outcome::failed);
            task->discard(error);
        }
        if (!worker.in_flight.empty()) {
            started_running(worker);
        }
        if (options_.max_tasks_per_child && worker.tasks_done >= *options_.max_tasks_per_child) {
            worker.retiring = true;
            if (worker.in_flight.empty()) {
                close(worker, Death::retired);
            }
        }
    }

    enum class Outcome
    {
        completed,
        failed,
        cancelled
    };

    /// Tasks a dead worker had not run: to the front of the queue, in order, for other workers;
    /// except those kill() cancelled meanwhile, which must not run anywhere.
    void give_back(const std::deque<InFlight>& tasks)
    {
        std::size_t requeued = 0;
        for (auto it = tasks.rbegin(); it != tasks.rend(); ++it) {
            if (it->killed) {
                finish_task(it->task, Outcome::cancelled);
                it->task->discard(std::make_exception_ptr(
                    CancelledError("futura::ProcessPoolExecutor::kill: the task was cancelled")));
                continue;
            }
            requeued_.push_front(it->task);
            ++requeued;
        }
        const std::lock_guard lock(mutex_);
        requeued_count_ += requeued;
    }

    void finish_task(detail::TaskBase* /*task*/, Outcome outcome)
    {
        const std::lock_guard lock(mutex_);
        --running_;
        ++(outcome == Outcome::completed ? completed_
           : outcome == Outcome::failed  ? failed_
                                         : cancelled_);
    }

    /// Shuts the worker's channel: it finishes what it has and exits on end of input.
    void close(Worker& worker, Death why)
    {
        if (worker.closed) {
            return;
        }
        worker.closed = true;
        worker.expected_death = why;
        boost::system::error_code ignored;
        worker.channel.shutdown(asio::socket_base::shutdown_send, ignored);
    }

    void read_stderr(Worker& worker)
    {
        worker.stderr_pipe.async_read_some(
            asio::buffer(worker.stderr_buffer),
            [this, keep = worker.shared_from_this()](const boost::system::error_code& ec,
                                                     std::size_t n) {
                if (ec || keep->exited) {
                    return;
                }
                Worker& self = *keep;
                // Pass it through to our stderr, as a child writing to it directly would, and
                // keep the last lines for the crash report.
                std::size_t written = 0;
                while (written < n) {
                    const auto w =
                        ::write(STDERR_FILENO, self.stderr_buffer.data() + written, n - written);
                    if (w <= 0) {
                        break;
                    }
                    written += static_cast<std::size_t>(w);
                }
                self.stderr_partial.append(self.stderr_buffer.data(), n);
                std::size_t newline = 0;
                while ((newline = self.stderr_partial.find('\n')) != std::string::npos) {
                    self.stderr_lines.push_back(self.stderr_partial.substr(0, newline));
                    self.stderr_partial.erase(0, newline + 1);
                    if (self.stderr_lines.size() > stderr_lines_kept) {
                        self.stderr_lines.pop_front();
                    }
                }
                read_stderr(self);
            });
    }

    void watch_exit(Worker& worker)
    {
        worker.exit_watch.async_wait(
            asio::posix::stream_descriptor::wait_read,
            [this, w = worker.shared_from_this()](const boost::system::error_code& ec) {
                if (ec == asio::error::operation_aborted || w->exited) {
                    return;
                }
                on_exit(*w);
            });
    }

    void on_exit(Worker& worker)
    {
        int status = 0;
        rusage usage{};
        while (::wait4(worker.pid, &status, 0, &usage) < 0 && errno == EINTR) {
        }
        worker.exited = true;
        // Answers it sent before dying may still sit in the socket: take them first, so that
        // only the task it was really running is charged with its death.
        drain_channel(worker);
        // Whatever it wrote last may still sit in the pipe.
        drain_stderr(worker);
        const bool was_ready = worker.ready;
        const Death why = worker.expected_death;
        std::deque<InFlight> lost;
        lost.swap(worker.in_flight);
        boost::system::error_code ignored;
        worker.timeout_timer.cancel();
        worker.channel.close(ignored);
        worker.stderr_pipe.close(ignored);
        worker.exit_watch.close(ignored);

        const std::string report = crash_report(worker, status, usage);
        // Killed for a task that finished just before the signal landed: the one it was running
        // by then is innocent, and goes to another worker with the rest.
        const bool innocent_front =
            why == Death::killed_task && !lost.empty() && !lost.front().killed;
        if (!lost.empty() && !innocent_front) {
            // The front was running: it fails. The rest never started: they go to other workers.
            auto* running = lost.front().task;
            const bool running_killed = lost.front().killed;
            lost.pop_front();
            std::exception_ptr error;
            switch (running_killed ? Death::killed_task : why) {
            case Death::timeout:
                error = std::make_exception_ptr(TimeoutError(
                    "futura::ProcessPoolExecutor: the task ran longer than task_timeout (" +
                    std::to_string(std::chrono::duration<double>(*options_.task_timeout).count()) +
                    " s); its worker was killed and replaced"));
                break;
            case Death::killed_task:
                error = std::make_exception_ptr(CancelledError(
                    "futura::ProcessPoolExecutor::kill: the task was stopped while it ran; its "
                    "worker was killed and replaced"));
                break;
            default:
                error = std::make_exception_ptr(WorkerCrashed(report));
                break;
            }
            finish_task(running, running_killed || why == Death::killed_task ? Outcome::cancelled
                                                                             : Outcome::failed);
            running->discard(error);
        }
        give_back(lost);
        {
            const std::lock_guard lock(mutex_);
            --alive_;
            if (why != Death::retired && why != Death::shutdown && why != Death::signalled) {
                ++lost_workers_;
            }
            if (why == Death::retired) {
                ++lost_workers_;
            }
        }
        std::erase_if(workers_, [&](const auto& w) { return w.get() == &worker; });
        if (!was_ready && why == Death::unexpected) {
            // It died before it could run anything (in static initialisation, or in the
            // initializer): a replacement would most likely die the same way.
            break_pool("futura::ProcessPoolExecutor: a worker process died while starting: " +
                       report);
        }
        if (why == Death::signalled) {
            fail_requeued(std::make_exception_ptr(WorkerCrashed(report)));
        }
        dispatch();
    }

    void drain_channel(Worker& worker)
    {
        try {
            while (detail::receive_some(worker.channel.native_handle(), worker.inbox,
                                        worker.received, /*nonblocking=*/true) > 0) {
            }
        } catch (const std::exception& e) {
            kill_for_bad_message(worker, e); // it is dead already; this only says why
            return;
        }
        handle_frames(worker);
    }

    void drain_stderr(Worker& worker)
    {
        boost::system::error_code ec;
        worker.stderr_pipe.non_blocking(true, ec);
        for (;;) {
            const auto n = worker.stderr_pipe.read_some(asio::buffer(worker.stderr_buffer), ec);
            if (ec || n == 0) {
                break;
            }
            (void)!::write(STDERR_FILENO, worker.stderr_buffer.data(), n);
            worker.stderr_partial.append(worker.stderr_buffer.data(), n);
        }
        std::size_t newline = 0;
        while ((newline = worker.stderr_partial.find('\n')) != std::string::npos) {
            worker.stderr_lines.push_back(worker.stderr_partial.substr(0, newline));
            worker.stderr_partial.erase(0, newline + 1);
        }
        if (!worker.stderr_partial.empty()) {
            worker.stderr_lines.push_back(std::move(worker.stderr_partial));
            worker.stderr_partial.clear();
        }
        while (worker.stderr_lines.size() > stderr_lines_kept) {
            worker.stderr_lines.pop_front();
        }
    }

    static std::string crash_report(const Worker& worker, int status, const rusage& usage)
    {
        std::ostringstream report;
        report << "futura::ProcessPoolExecutor: worker process " << worker.pid << " "
               << describe_status(status);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
            report << (worker.expected_death == Death::signalled
                           ? " (by terminate_workers() or kill_workers())"
                       : oom_kills() > worker.oom_kills_at_start
                           ? " (the kernel's out-of-memory killer killed a process meanwhile: "
                             "most likely this one, for using too much memory)"
                           : " (not by futura)");
        }
        const double cpu =
            static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
            static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
        report << " while running a task; peak memory " << usage.ru_maxrss / 1024
               << " MiB, CPU time " << cpu << " s";
        if (!worker.stderr_lines.empty()) {
            report << "; its last lines on stderr:";
            for (const auto& line : worker.stderr_lines) {
                report << "\n    " << line;
            }
        }
        return std::move(report).str();
    }

    void fail_requeued(const std::exception_ptr& error)
    {
        while (!requeued_.empty()) {
            auto* task = requeued_.front();
            requeued_.pop_front();
            {
                const std::lock_guard lock(mutex_);
                --requeued_count_;
            }
            finish_task(task, Outcome::failed);
            task->discard(error);
        }
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
            if (broken_.empty()) {
                broken_ = why;
            }
            shut_down_ = true;
            pending.swap(pending_);
            failed_ += pending.size();
        }
        const auto error = std::make_exception_ptr(BrokenProcessPool(broken_reason_));
        pending.clear_and_dispose([&](detail::TaskBase* task) { task->discard(error); });
        fail_requeued(error);
        for (auto& worker : workers_) {
            for (auto& in_flight : worker->in_flight) {
                finish_task(in_flight.task, Outcome::failed);
                in_flight.task->discard(error);
            }
            worker->in_flight.clear();
            worker->expected_death = Death::shutdown;
            ::kill(worker->pid, SIGKILL);
        }
        draining_ = true;
    }

    void finish_shutdown_if_idle()
    {
        bool idle = requeued_.empty();
        {
            const std::lock_guard lock(mutex_);
            idle = idle && pending_.empty();
        }
        if (!idle) {
            return;
        }
        for (auto& worker : workers_) {
            if (worker->in_flight.empty()) {
                close(*worker, Death::shutdown);
            }
        }
        if (workers_.empty()) {
            work_.reset(); // the I/O thread ends once nothing is left to do
        }
    }

    const ProcessPoolOptions options_;
    const std::size_t max_workers_;
    std::vector<std::string> environment_;
    boost::intrusive_ptr<Terminator> terminator_;

    mutable std::mutex mutex_; // guards everything from here to join_mutex_
    TaskQueue pending_;
    bool shut_down_ = false;
    std::string broken_; // why the pool is broken; empty while it is not
    std::size_t submitted_ = 0;
    std::size_t running_ = 0;
    std::size_t completed_ = 0;
    std::size_t failed_ = 0;
    std::size_t cancelled_ = 0;
    std::size_t alive_ = 0;
    std::size_t replaced_ = 0;
    std::size_t lost_workers_ = 0; // workers that died or retired and are not yet replaced
    std::size_t requeued_count_ = 0;

    std::mutex join_mutex_; // serialises joining the I/O thread

    // The I/O thread's own state: touched only by handlers running on io_.
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    // Shared: completion handlers keep a worker alive until they have run, after it is reaped.
    std::vector<std::shared_ptr<Worker>> workers_;
    std::deque<detail::TaskBase*> requeued_; // sent to a worker that died before starting them
    bool draining_ = false;
    std::string broken_reason_;
    std::atomic<bool> kick_posted_{false};
    std::atomic<double> task_seconds_{-1}; // the latest task-duration average, for map chunks

    std::thread io_thread_;
};

ProcessPoolExecutor::ProcessPoolExecutor(ProcessPoolOptions options)
    : impl_(std::make_unique<Impl>(std::move(options)))
{}

ProcessPoolExecutor::~ProcessPoolExecutor() = default; // Impl's destructor shuts down and waits

void ProcessPoolExecutor::schedule(detail::TaskPtr task) { impl_->schedule(std::move(task)); }

void ProcessPoolExecutor::do_shutdown(const ShutdownOptions& options) { impl_->shutdown(options); }

std::size_t ProcessPoolExecutor::do_max_workers() const noexcept { return impl_->max_workers(); }

ExecutorStats ProcessPoolExecutor::do_stats() const { return impl_->stats(); }

std::size_t ProcessPoolExecutor::do_auto_chunksize(std::optional<std::size_t> total) const
{
    return impl_->auto_chunksize(total);
}

void ProcessPoolExecutor::terminate_workers() { impl_->signal_workers(SIGTERM); }

void ProcessPoolExecutor::kill_workers() { impl_->signal_workers(SIGKILL); }

bool ProcessPoolExecutor::kill_task(detail::SharedStateBase* state)
{
    return impl_->kill_task(state);
}

} // namespace futura
