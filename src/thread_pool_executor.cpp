// The thread pool: one FIFO of tasks under one mutex, and workers that park on their own
// futex-backed parkers when idle, so a submission wakes exactly one sleeping worker, and none
// when a worker is awake (or briefly spinning) already.
#include <futura/current_worker.hpp>
#include <futura/detail/admission.hpp>
#include <futura/detail/continuation.hpp>
#include <futura/detail/task_counts.hpp>
#include <futura/detail/task_queue.hpp>
#include <futura/detail/wait_context.hpp>
#include <futura/thread_pool_executor.hpp>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <exception>
#include <iostream>
#include <memory>
#include <mutex>
#include <pthread.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace futura {

namespace {

using detail::TaskQueue;

// The pool whose worker the calling thread is: lets the Asio executor's dispatch run a function
// at once in its own pool's threads. Written once per worker thread, never on the task path.
thread_local const ThreadPoolExecutor::Impl* this_thread_pool = nullptr;

// How many continuations in a row a worker may take from its own hand-off slot before one goes
// through the queue again, so that a long chain cannot keep a one-thread pool to itself.
constexpr int max_handoffs_in_a_row = 64;

} // namespace

class ThreadPoolExecutor::Impl
{
public:
    explicit Impl(ThreadPoolOptions options)
        : max_workers_(detail::checked_max_workers(options.max_workers, "ThreadPoolExecutor")),
          name_prefix_(options.thread_name_prefix.empty() ? "futura"
                                                          : std::move(options.thread_name_prefix)),
          initializer_(std::move(options.initializer)), initargs_(std::move(options.initargs))
    {
        initializer_.check(initargs_, "futura::ThreadPoolExecutor");
        workers_.reserve(max_workers_);
    }

    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    ~Impl()
    {
        // Whatever is still queued (e.g. after shutdown(wait=false) of a broken pool) must not
        // leave a future pending forever.
        TaskQueue left;
        {
            const std::lock_guard lock(mutex_);
            left = detail::take_all(pending_, ended_unrun_, detail::TaskOutcome::cancelled);
        }
        detail::discard_all(std::move(left), nullptr);
    }

    void schedule(detail::TaskPtr task)
    {
        Worker* wake = nullptr;
        // A continuation that the task this worker runs dispatches as it publishes its result:
        // the worker is about to be free, so it takes the continuation next itself, instead of
        // waking another worker for it (which would cost a wake-up, and the two threads would
        // race for it). A chain of continuations thus runs on one thread without hand-offs.
        Worker* const self = this_thread_worker;
        const bool hand_off = self != nullptr && this_thread_pool == this &&
                              detail::publishing_own_result && self->next_ == nullptr &&
                              self->handoffs_ < max_handoffs_in_a_row &&
                              detail::dispatching_continuation();
        {
            const std::lock_guard lock(mutex_);
            admission_.check();
            if (hand_off) {
                admission_.accept();
                self->next_ = task.release();
                return;
            }
            // Workers blocked in a wait do not count: they cannot take this task.
            if (idle_.empty() && workers_.size() - blocked_ < max_workers_) {
                start_worker(); // before accepting: if it throws, the task is discarded
            }
            admission_.accept();
            task->queued_in.store(this, std::memory_order_relaxed);
            pending_.push_back(*task.release());
            if (!idle_.empty()) {
                wake = idle_.back(); // most recently idle: its cache is warmest
                idle_.pop_back();
            }
        }
        if (wake != nullptr) {
            wake->parker_->unpark();
        }
    }

    void shutdown(const ShutdownOptions& options)
    {
        TaskQueue cancelled;
        {
            const std::lock_guard lock(mutex_);
            admission_.shut_down();
            if (options.cancel_futures) {
                cancelled =
                    detail::take_all(pending_, ended_unrun_, detail::TaskOutcome::cancelled);
            }
            wake_all_idle_locked();
        }
        detail::discard_all(std::move(cancelled), nullptr);
        if (options.wait) {
            join_workers();
        }
    }

    [[nodiscard]] std::size_t max_workers() const noexcept { return max_workers_; }

    [[nodiscard]] void* asio_services(void* (*make)(), void (*destroy)(void*) noexcept)
    {
        std::call_once(asio_once_, [&] { asio_services_ = {make(), destroy}; });
        return asio_services_.get();
    }

    [[nodiscard]] ExecutorStats stats() const
    {
        ExecutorStats stats;
        const std::lock_guard lock(mutex_);
        stats.submitted = admission_.accepted();
        stats.queued = pending_.size();
        ended_unrun_.add_to(stats);
        for (const auto& worker : workers_) {
            worker->counts_.add_to(stats);
            stats.workers_alive += worker->alive_.load(std::memory_order_relaxed) ? 1U : 0U;
        }
        return stats;
    }

private:
    /// A worker thread; also the wait context its tasks block in (see wait_context.hpp).
    class Worker final : public detail::WaitContext
    {
    public:
        explicit Worker(Impl& pool) : pool_(pool) {}

        bool run_if_queued(detail::SharedStateBase& awaited) override
        {
            if (next_ != nullptr && dynamic_cast<detail::TaskBase*>(&awaited) == next_) {
                run(std::exchange(next_, nullptr)); // handed to us, not queued: ours to run
                return true;
            }
            detail::TaskBase* task = pool_.take_if_queued(awaited);
            if (task == nullptr) {
                return false;
            }
            run(task);
            return true;
        }

        void begin_blocking() override { pool_.begin_blocking(); }

        void end_blocking() noexcept override { pool_.end_blocking(); }

        const std::shared_ptr<detail::Parker>& parker() noexcept override { return parker_; }

        void run(detail::TaskBase* task) noexcept
        {
            counts_.start();
            counts_.finish(task->run());
        }

        Impl& pool_;
        // A continuation handed to this worker by the task it runs (see schedule); touched only
        // by this worker's thread. Run as soon as the current task returns.
        detail::TaskBase* next_ = nullptr;
        int handoffs_ = 0; // continuations taken from next_ in a row
        std::shared_ptr<detail::Parker> parker_ = std::make_shared<detail::Parker>();
        std::thread thread_;
        std::atomic<bool> alive_{true};
        // Only this worker's thread changes them: no locked instruction, no shared cache line.
        detail::TaskCounts<detail::OwnCount> counts_;
        WorkerInfo info_; // written by its own thread before it runs anything
    };

    /// The worker the calling thread is, of whichever pool; null outside workers.
    static thread_local Worker* this_thread_worker;

    void start_worker() // with mutex_ held
    {
        auto worker = std::make_unique<Worker>(*this);
        const std::size_t index = workers_.size();
        worker->thread_ = std::thread([this, w = worker.get(), index] { worker_main(*w, index); });
        workers_.push_back(std::move(worker));
    }

    void worker_main(Worker& self, std::size_t index) noexcept
    {
        self.info_ = {.index = index,
                      .pid = static_cast<int>(::getpid()),
                      .name = name_prefix_ + "_" + std::to_string(index)};
        const auto kernel_name = self.info_.name.substr(0, 15); // the kernel's limit
        pthread_setname_np(pthread_self(), kernel_name.c_str());
        detail::set_thread_worker(&self.info_);

        if (initializer_) {
            try {
                initializer_(initargs_);
            } catch (const std::exception& e) {
                break_pool(
                    std::string("futura::ThreadPoolExecutor: a thread initializer failed (") +
                    e.what() + "); the pool is not usable anymore");
            } catch (...) {
                break_pool("futura::ThreadPoolExecutor: a thread initializer failed; the pool is "
                           "not usable anymore");
            }
        }

        this_thread_pool = this;
        this_thread_worker = &self;
        detail::set_current_wait_context(&self);
        while (detail::TaskBase* task = pop_or_park(self)) {
            self.run(task);
            self.handoffs_ = 0;
            while (detail::TaskBase* next = std::exchange(self.next_, nullptr)) {
                ++self.handoffs_;
                self.run(next);
            }
        }
        detail::set_current_wait_context(nullptr);
        this_thread_worker = nullptr;
        this_thread_pool = nullptr;
        detail::set_thread_worker(nullptr);
        self.alive_.store(false, std::memory_order_relaxed);
    }

    /// The next task, or null once the pool is shut down (or broken) and the queue is empty.
    detail::TaskBase* pop_or_park(Worker& self)
    {
        std::unique_lock lock(mutex_);
        for (;;) {
            if (!pending_.empty()) {
                return pop_locked();
            }
            if (!admission_.accepting()) {
                return nullptr;
            }
            idle_.push_back(&self);
            lock.unlock();
            self.parker_->park(detail::never);
            lock.lock();
            // Normally whoever woke us took us off the list; a stale permit (from a future we
            // once waited on) may wake us while still on it.
            std::erase(idle_, &self);
        }
    }

    detail::TaskBase* pop_locked() noexcept
    {
        auto& task = pending_.front();
        pending_.pop_front();
        task.queued_in.store(nullptr, std::memory_order_relaxed);
        return &task;
    }

    /// Takes the task of `awaited` out of the queue, if it is queued here.
    detail::TaskBase* take_if_queued(detail::SharedStateBase& awaited)
    {
        auto* task = dynamic_cast<detail::TaskBase*>(&awaited);
        if (task == nullptr) {
            return nullptr; // a Promise's state: no task to run
        }
        const std::lock_guard lock(mutex_);
        if (task->queued_in.load(std::memory_order_relaxed) != this) {
            return nullptr;
        }
        pending_.erase(pending_.iterator_to(*task));
        task->queued_in.store(nullptr, std::memory_order_relaxed);
        return task;
    }

    /// A worker blocks in a wait: it no longer counts against max_workers, so queued work
    /// that would otherwise have no thread gets a new one.
    void begin_blocking()
    {
        const std::lock_guard lock(mutex_);
        ++blocked_;
        if (!pending_.empty() && idle_.empty() && admission_.accepting() &&
            workers_.size() - blocked_ < max_workers_) {
            start_worker();
        }
    }

    void end_blocking() noexcept
    {
        const std::lock_guard lock(mutex_);
        --blocked_;
    }

    void break_pool(std::string why) noexcept
    {
        TaskQueue failed;
        std::exception_ptr error;
        {
            const std::lock_guard lock(mutex_);
            admission_.break_with(std::move(why));
            failed = detail::take_all(pending_, ended_unrun_, detail::TaskOutcome::failed);
            wake_all_idle_locked();
            // Built once, before any future can see it: a temporary exception object destroyed
            // after the futures are published would race (benignly, but visibly to TSan) with
            // readers of its shared message string.
            error = std::make_exception_ptr(BrokenThreadPool(admission_.why_broken()));
        }
        detail::discard_all(std::move(failed), error);
    }

    void wake_all_idle_locked() noexcept
    {
        for (Worker* worker : idle_) {
            worker->parker_->unpark();
        }
        idle_.clear();
    }

    void join_workers()
    {
        // Serialises concurrent joiners; after shutdown the worker list no longer grows.
        const std::lock_guard join_lock(join_mutex_);
        std::size_t count = 0;
        {
            const std::lock_guard lock(mutex_);
            count = workers_.size();
        }
        const auto self = std::this_thread::get_id();
        for (std::size_t i = 0; i < count; ++i) {
            std::thread* thread = nullptr;
            {
                const std::lock_guard lock(mutex_);
                thread = &workers_[i]->thread_;
            }
            // A task that shuts its own pool down cannot wait for itself; the destructor joins it.
            if (thread->joinable() && thread->get_id() != self) {
                thread->join();
            }
        }
    }

    const std::size_t max_workers_;
    const std::string name_prefix_;
    const Initializer initializer_;
    const InitArgs initargs_;

    mutable std::mutex mutex_; // guards everything from here to join_mutex_
    TaskQueue pending_;
    std::vector<Worker*> idle_; // parked workers, to wake one per submission
    std::vector<std::unique_ptr<Worker>> workers_;
    std::size_t blocked_ = 0; // workers blocked in a futura wait
    detail::Admission<BrokenThreadPool> admission_;
    // Tasks that ended without a worker running them: cancelled at shutdown, failed as broken.
    detail::TaskCounts<detail::LockedCount> ended_unrun_;

    std::mutex join_mutex_; // serialises join_workers()

    // Services (timers, sockets) of I/O objects built on get_executor(), an Asio execution context
    // made on first use (see asio_services). Declared last: destroyed first, once the destructor
    // has joined the workers, so no function of the pool still runs.
    std::once_flag asio_once_;
    std::unique_ptr<void, void (*)(void*) noexcept> asio_services_{nullptr, nullptr};
};

thread_local ThreadPoolExecutor::Impl::Worker* ThreadPoolExecutor::Impl::this_thread_worker =
    nullptr;

ThreadPoolExecutor::ThreadPoolExecutor(ThreadPoolOptions options)
    : impl_(std::make_unique<Impl>(std::move(options)))
{}

ThreadPoolExecutor::~ThreadPoolExecutor()
{
    // First: continuations of our futures that finish while we drain go to the shared pool (a
    // shut-down pool refuses them anyway), and none is handed to us while we are destroyed.
    home_.retire();
    try {
        impl_->shutdown({.wait = true, .cancel_futures = false});
    } catch (const std::exception& e) {
        std::cerr << "futura: ~ThreadPoolExecutor: shutdown failed: " << e.what() << '\n';
    }
}

void ThreadPoolExecutor::schedule(detail::TaskPtr task)
{
    task->continue_on = home_.origin(); // a plain copy: no reference count per task
    if (detail::dispatching_continuation()) {
        // A continuation, handed over by whichever thread completed its antecedent: the user
        // cannot know when that is over, so the destructor waits for it (home_.retire()).
        const auto entry = home_.enter();
        impl_->schedule(std::move(task));
        return;
    }
    impl_->schedule(std::move(task));
}

void ThreadPoolExecutor::do_shutdown(const ShutdownOptions& options) { impl_->shutdown(options); }

std::size_t ThreadPoolExecutor::do_max_workers() const noexcept { return impl_->max_workers(); }

ExecutorStats ThreadPoolExecutor::do_stats() const { return impl_->stats(); }

void* ThreadPoolExecutor::asio_services(void* (*make)(), void (*destroy)(void*) noexcept)
{
    return impl_->asio_services(make, destroy);
}

bool ThreadPoolExecutor::runs_in_this_thread() const noexcept
{
    return this_thread_pool == impl_.get();
}

} // namespace futura
