// The thread-pool benchmark: futura::ThreadPoolExecutor against its C++ peers, all in this one
// binary and one run, each with the same number of worker threads.
//
//   W1  submit N trivial tasks, keep the futures, then read every result: tasks per second.
//   W2  sequential submit -> result round trips: p50 and p99 latency in microseconds.
//
// Beside the pools, the floors of both workloads (issue 17), measured in the same run: W1's is
// the same trivial tasks run by oneTBB's task_group and asio::thread_pool with no future at all
// (each task writes its result into a slot of a vector, read after the pool is done); W2's is a
// bare round trip between two threads, through a condition variable and through a futex. And
// the pool's CPU time while idle, over a second with nothing to do.
//
// A plain harness rather than Google Benchmark: both workloads are one long loop each, and
// what we want is a median over repetitions that are interleaved across implementations (so
// that the noise of a shared machine falls on all of them alike), plus latency percentiles.
// scripts/bench builds and runs it with the Python peer (bench/peers/thread_pool.py), whose
// `result` line it reads with --peer-results; doc/benchmarks.md says how to read the output.
#include <futura/thread_pool_executor.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <iterator>
#include <limits>
#include <linux/futex.h>
#include <map>
#include <mutex>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/syscall.h>
#include <thread>
#include <time.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include "harness.hpp"

namespace {

using namespace futura_bench;

/// The task of both workloads.
constexpr auto add_one = [](int i) { return i + 1; };

// ---------------------------------------------------------------------------------------------
// The implementations. Each is a pool of `workers` threads with `submit(i)`, which schedules
// `add_one(i)` and returns a future of its result, and `read(future)`, which waits for it.

/// futura::ThreadPoolExecutor: the subject.
class FuturaPool
{
public:
    explicit FuturaPool(std::size_t workers)
        : pool_(futura::ThreadPoolOptions{.max_workers = static_cast<int>(workers)})
    {}

    futura::Future<int> submit(int i) { return pool_.submit(add_one, i); }
    static int read(const futura::Future<int>& future) { return future.result(); }

private:
    futura::ThreadPoolExecutor pool_;
};

/// boost::asio::thread_pool, posting a std::packaged_task per call.
class AsioPackagedTaskPool
{
public:
    explicit AsioPackagedTaskPool(std::size_t workers) : pool_(workers) {}

    std::future<int> submit(int i)
    {
        std::packaged_task<int()> task([i] { return add_one(i); });
        auto future = task.get_future();
        boost::asio::post(pool_, std::move(task));
        return future;
    }
    static int read(std::future<int>& future) { return future.get(); }

private:
    boost::asio::thread_pool pool_; // its destructor drops queued work: only after every read
};

/// boost::asio::thread_pool, posting a lambda that fulfils a std::promise per call.
class AsioPromisePool
{
public:
    explicit AsioPromisePool(std::size_t workers) : pool_(workers) {}

    std::future<int> submit(int i)
    {
        std::promise<int> promise;
        auto future = promise.get_future();
        boost::asio::post(
            pool_, [promise = std::move(promise), i]() mutable { promise.set_value(add_one(i)); });
        return future;
    }
    static int read(std::future<int>& future) { return future.get(); }

private:
    boost::asio::thread_pool pool_;
};

/// oneTBB: a task_group's tasks in a task_arena of `workers` slots, a std::promise per call.
///
/// The submitting thread is not one of the workers here, as in every other implementation:
/// it hands each task to the arena with `enqueue(group.defer(...))` and never joins the arena.
/// (`group.run` inside `arena.execute` would make the submitter a participant and, with the
/// default of one slot reserved for it, leave only `workers - 1` TBB threads to run tasks.)
/// So the arena reserves no slot for external threads, and the global limit is raised to
/// `workers + 1` threads (TBB counts the main thread), else TBB would start only
/// `available_cpus() - 1` workers.
class TbbTaskGroupPool
{
public:
    explicit TbbTaskGroupPool(std::size_t workers)
        : parallelism_(tbb::global_control::max_allowed_parallelism, workers + 1),
          arena_(static_cast<int>(workers), 0)
    {}

    TbbTaskGroupPool(const TbbTaskGroupPool&) = delete;
    TbbTaskGroupPool& operator=(const TbbTaskGroupPool&) = delete;

    ~TbbTaskGroupPool()
    {
        arena_.execute([this] { group_.wait(); });
    }

    std::future<int> submit(int i)
    {
        std::promise<int> promise;
        auto future = promise.get_future();
        arena_.enqueue(group_.defer(SetPromise{std::move(promise), i}));
        return future;
    }
    static int read(std::future<int>& future) { return future.get(); }

private:
    /// TBB calls its task functors through a const reference.
    struct SetPromise
    {
        mutable std::promise<int> promise;
        int i;
        void operator()() const { promise.set_value(add_one(i)); }
    };

    tbb::global_control parallelism_;
    tbb::task_arena arena_;
    tbb::task_group group_;
};

/// std::async(std::launch::async): a new thread per call, so no pool and no worker count.
class StdAsyncPool
{
public:
    explicit StdAsyncPool(std::size_t /*workers*/) {}

    static std::future<int> submit(int i) { return std::async(std::launch::async, add_one, i); }
    static int read(std::future<int>& future) { return future.get(); }
};

// ---------------------------------------------------------------------------------------------
// The workloads.

/// The futures of a W1 measurement, allocated before it starts.
template <class Pool>
using FutureVector = std::vector<decltype(std::declval<Pool&>().submit(0))>;

/// Submits `n` calls, keeping the futures in `futures` (empty, with room for `n`), then reads
/// every result and drops the futures; checks the sum.
template <class Pool>
void submit_and_collect(Pool& pool, int n, FutureVector<Pool>& futures)
{
    for (int i = 0; i < n; ++i) {
        futures.push_back(pool.submit(i));
    }
    std::int64_t sum = 0;
    for (auto& future : futures) {
        sum += Pool::read(future);
    }
    futures.clear();
    const std::int64_t expected = static_cast<std::int64_t>(n) * (n + 1) / 2;
    if (sum != expected) {
        fail("W1: wrong sum of results: " + std::to_string(sum) + " instead of " +
             std::to_string(expected));
    }
}

/// One W1 measurement in a fresh pool, after an untimed warm-up that starts its threads.
/// @return tasks per second. The timed span covers submitting, reading every result and
/// dropping the futures (which frees the per-task state), not allocating the vector of futures.
template <class Pool>
double w1_once(std::size_t workers, int n, int warmup)
{
    FutureVector<Pool> futures;
    futures.reserve(static_cast<std::size_t>(std::max(n, warmup)));
    Pool pool(workers);
    submit_and_collect(pool, warmup, futures);
    const auto start = Clock::now();
    submit_and_collect(pool, n, futures);
    return n / seconds_since(start);
}

/// One W2 round in a fresh pool: `warmup` untimed round trips, then `n` timed ones, each from
/// just before `submit` to just after the result is read (dropping the future is not timed).
template <class Pool>
void w2_round(std::size_t workers, int n, int warmup, std::vector<double>& samples_us)
{
    Pool pool(workers);
    for (int i = 0; i < warmup + n; ++i) {
        const auto start = Clock::now();
        auto future = pool.submit(i);
        const int result = Pool::read(future);
        const auto stop = Clock::now();
        if (result != i + 1) {
            fail("W2: wrong result " + std::to_string(result) + " for " + std::to_string(i));
        }
        if (i >= warmup) {
            samples_us.push_back(std::chrono::duration<double, std::micro>(stop - start).count());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The floors: what the workloads cost with no future and no executor.

/// Checks that `out[0, n)` holds add_one of each index, as W1 checks its futures' sum.
void check_slots(const std::vector<int>& out, int n)
{
    std::int64_t sum = 0;
    for (int i = 0; i < n; ++i) {
        sum += out[static_cast<std::size_t>(i)];
    }
    const std::int64_t expected = static_cast<std::int64_t>(n) * (n + 1) / 2;
    if (sum != expected) {
        fail("W1 floor: wrong sum of results: " + std::to_string(sum) + " instead of " +
             std::to_string(expected));
    }
}

/// W1's floor with oneTBB: the tasks of TbbTaskGroupPool, each writing its result into a slot
/// instead of a promise; the group's wait (from outside the workers, as the pools' readers) ends
/// the span. @return tasks per second.
double tbb_floor_once(std::size_t workers, int n, int warmup)
{
    std::vector<int> out(static_cast<std::size_t>(std::max(n, warmup)));
    const tbb::global_control parallelism(tbb::global_control::max_allowed_parallelism,
                                          workers + 1);
    tbb::task_arena arena(static_cast<int>(workers), 0);
    tbb::task_group group;
    const auto run = [&](int count) {
        for (int i = 0; i < count; ++i) {
            arena.enqueue(
                group.defer([&out, i] { out[static_cast<std::size_t>(i)] = add_one(i); }));
        }
        arena.execute([&] { group.wait(); });
        check_slots(out, count);
    };
    run(warmup);
    const auto start = Clock::now();
    run(n);
    return n / seconds_since(start);
}

/// W1's floor with Asio: the tasks posted to an asio::thread_pool, each writing its result into
/// a slot; `join` (which waits for the queued work, then for the threads to end) ends the span.
/// The warm-up waits on a counter instead, to keep the pool.
double asio_floor_once(std::size_t workers, int n, int warmup)
{
    std::vector<int> out(static_cast<std::size_t>(std::max(n, warmup)));
    boost::asio::thread_pool pool(workers);
    std::atomic<int> warm{0};
    for (int i = 0; i < warmup; ++i) {
        boost::asio::post(pool, [&warm] { warm.fetch_add(1, std::memory_order_release); });
    }
    while (warm.load(std::memory_order_acquire) < warmup) {
        std::this_thread::yield();
    }
    const auto start = Clock::now();
    for (int i = 0; i < n; ++i) {
        boost::asio::post(pool, [&out, i] { out[static_cast<std::size_t>(i)] = add_one(i); });
    }
    pool.join();
    const double rate = n / seconds_since(start);
    check_slots(out, n);
    return rate;
}

/// W2's floor with a mutex and a condition variable: this thread hands `i` to a thread that
/// answers `i + 1`, and waits for the answer; nothing else.
class CvPingPong
{
public:
    CvPingPong() : thread_([this] { serve(); }) {}
    CvPingPong(const CvPingPong&) = delete;
    CvPingPong& operator=(const CvPingPong&) = delete;
    ~CvPingPong()
    {
        {
            const std::lock_guard lock(mutex_);
            stop_ = true;
        }
        to_server_.notify_one();
        thread_.join();
    }

    int call(int i)
    {
        std::unique_lock lock(mutex_);
        request_ = i;
        has_request_ = true;
        to_server_.notify_one();
        to_client_.wait(lock, [this] { return has_reply_; });
        has_reply_ = false;
        return reply_;
    }

private:
    void serve()
    {
        std::unique_lock lock(mutex_);
        for (;;) {
            to_server_.wait(lock, [this] { return has_request_ || stop_; });
            if (stop_) {
                return;
            }
            has_request_ = false;
            reply_ = add_one(request_);
            has_reply_ = true;
            to_client_.notify_one();
        }
    }

    std::mutex mutex_;
    std::condition_variable to_server_;
    std::condition_variable to_client_;
    int request_ = 0;
    int reply_ = 0;
    bool has_request_ = false;
    bool has_reply_ = false;
    bool stop_ = false;
    std::thread thread_; // last: starts once the rest is built
};

/// W2's floor with a bare futex: each side publishes a sequence number and wakes the other,
/// which sleeps in FUTEX_WAIT until the number it waits for is there. No spinning.
class FutexPingPong
{
public:
    FutexPingPong() : thread_([this] { serve(); }) {}
    FutexPingPong(const FutexPingPong&) = delete;
    FutexPingPong& operator=(const FutexPingPong&) = delete;
    ~FutexPingPong()
    {
        stop_.store(true, std::memory_order_relaxed);
        publish(to_server_, sequence_ + 1);
        thread_.join();
    }

    int call(int i)
    {
        value_ = i;
        ++sequence_;
        publish(to_server_, sequence_);
        wait_for(to_client_, sequence_);
        return value_;
    }

private:
    static void publish(std::atomic<std::uint32_t>& word, std::uint32_t value)
    {
        word.store(value, std::memory_order_release);
        ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1,
                  nullptr, nullptr, 0);
    }
    static void wait_for(std::atomic<std::uint32_t>& word, std::uint32_t value)
    {
        for (std::uint32_t seen = word.load(std::memory_order_acquire); seen != value;
             seen = word.load(std::memory_order_acquire)) {
            ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, seen,
                      nullptr, nullptr, 0);
        }
    }
    void serve()
    {
        for (std::uint32_t expected = 1;; ++expected) {
            wait_for(to_server_, expected);
            if (stop_.load(std::memory_order_relaxed)) {
                return;
            }
            value_ = add_one(value_);
            publish(to_client_, expected);
        }
    }

    static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
    std::atomic<std::uint32_t> to_server_{0};
    std::atomic<std::uint32_t> to_client_{0};
    std::atomic<bool> stop_{false};
    int value_ = 0; // handed over by the release/acquire of the sequence numbers
    std::uint32_t sequence_ = 0;
    std::thread thread_; // last: starts once the rest is built
};

/// One W2 round of a ping-pong floor: as w2_round, with a fresh pair of threads.
template <class PingPong>
void w2_floor_round(int n, int warmup, std::vector<double>& samples_us)
{
    PingPong pair;
    for (int i = 0; i < warmup + n; ++i) {
        const auto start = Clock::now();
        const int result = pair.call(i);
        const auto stop = Clock::now();
        if (result != i + 1) {
            fail("W2 floor: wrong result " + std::to_string(result) + " for " + std::to_string(i));
        }
        if (i >= warmup) {
            samples_us.push_back(std::chrono::duration<double, std::micro>(stop - start).count());
        }
    }
}

double process_cpu_seconds()
{
    timespec now{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

/// The CPU futura's pool burns with nothing to do: a fresh pool runs `warmup` round trips (so
/// its threads are started and have just worked), then this thread sleeps `idle_ms`; the
/// process's CPU time over that span is the pool's. @return percent of one CPU.
double futura_idle_cpu_percent(std::size_t workers, int warmup, int idle_ms)
{
    FuturaPool pool(workers);
    for (int i = 0; i < warmup; ++i) {
        if (FuturaPool::read(pool.submit(i)) != i + 1) {
            fail("idle CPU: wrong result");
        }
    }
    const double cpu = process_cpu_seconds();
    const auto start = Clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(idle_ms));
    return 100.0 * (process_cpu_seconds() - cpu) / seconds_since(start);
}

// ---------------------------------------------------------------------------------------------
// The harness.

struct Settings
{
    std::size_t workers = futura::available_cpus();
    int w1_n = 200'000;
    int async_n = 20'000; // std::async starts a thread per task: 200,000 would take minutes
    int reps = 7;
    int w2_n = 20'000;
    int w2_rounds = 4;
    int w2_warmup = 500; // per round
    int idle_ms = 1000;  // the idle span whose CPU time is measured (with W2)
    bool run_w1 = true;
    bool run_w2 = true;
    std::vector<std::string> only; // implementation ids; empty: all
    std::string peer_results;      // file with `result` lines of out-of-process peers
    bool help = false;
};

/// What one implementation measured; also the `result` line format the Python peer prints.
struct Result
{
    std::string id;
    std::string label;
    bool is_cpp = true;
    bool is_floor = false; // no future, no executor: what the workload costs at the least
    std::size_t workers = 0;
    int w1_n = 0;
    std::vector<double> w1_tasks_per_s; // one per repetition
    double w1_median = 0;
    double w1_min = 0;
    double w1_max = 0;
    int w2_n = 0;
    double w2_p50_us = 0;
    double w2_p99_us = 0;
    // Spread of the per-round percentiles.
    double w2_p50_min = 0;
    double w2_p50_max = 0;
    double w2_p99_min = 0;
    double w2_p99_max = 0;
    std::vector<std::vector<double>> w2_rounds; // samples per round
    double idle_cpu_percent = -1; // futura's pool over an idle span; < 0: not measured
};

struct Implementation
{
    std::string id;
    std::string label;
    int w1_n = 0;
    std::function<double(int n, int warmup)> w1; // empty: no W1 row (a W2 floor)
    std::function<void(int n, int warmup, std::vector<double>& samples_us)> w2; // likewise
    bool is_floor = false;
};

template <class Pool>
Implementation make_implementation(std::string id, std::string label, const Settings& settings,
                                   int w1_n)
{
    const std::size_t workers = settings.workers;
    return Implementation{
        std::move(id),
        std::move(label),
        w1_n,
        [workers](int n, int warmup) { return w1_once<Pool>(workers, n, warmup); },
        [workers](int n, int warmup, std::vector<double>& samples) {
            w2_round<Pool>(workers, n, warmup, samples);
        },
    };
}

std::vector<Implementation> implementations(const Settings& settings)
{
    std::vector<Implementation> all;
    all.push_back(make_implementation<FuturaPool>("futura", "futura::ThreadPoolExecutor", settings,
                                                  settings.w1_n));
    all.push_back(make_implementation<AsioPackagedTaskPool>(
        "asio_packaged_task", "asio::thread_pool + std::packaged_task", settings, settings.w1_n));
    all.push_back(make_implementation<AsioPromisePool>(
        "asio_promise", "asio::thread_pool + std::promise", settings, settings.w1_n));
    all.push_back(make_implementation<TbbTaskGroupPool>(
        "tbb_task_group", "tbb::task_group in a task_arena + std::promise", settings,
        settings.w1_n));
    all.push_back(make_implementation<StdAsyncPool>(
        "std_async", "std::async(std::launch::async) per task", settings, settings.async_n));
    const std::size_t workers = settings.workers;
    all.push_back({"tbb_floor",
                   "floor: tbb::task_group in a task_arena, no future",
                   settings.w1_n,
                   [workers](int n, int warmup) { return tbb_floor_once(workers, n, warmup); },
                   {},
                   true});
    all.push_back({"asio_floor",
                   "floor: asio::thread_pool, no future",
                   settings.w1_n,
                   [workers](int n, int warmup) { return asio_floor_once(workers, n, warmup); },
                   {},
                   true});
    all.push_back({"cv_pingpong",
                   "floor: condition-variable ping-pong between 2 threads",
                   0,
                   {},
                   w2_floor_round<CvPingPong>,
                   true});
    all.push_back({"futex_pingpong",
                   "floor: futex ping-pong between 2 threads",
                   0,
                   {},
                   w2_floor_round<FutexPingPong>,
                   true});
    if (!settings.only.empty()) {
        std::erase_if(all, [&](const Implementation& impl) {
            return std::find(settings.only.begin(), settings.only.end(), impl.id) ==
                   settings.only.end();
        });
    }
    return all;
}

/// The implementations in the order of repetition `rep`: rotated, so that none always runs
/// first (right after another pool's threads went idle) or last.
std::vector<std::size_t> order_for(std::size_t count, int rep)
{
    std::vector<std::size_t> order(count);
    for (std::size_t k = 0; k < count; ++k) {
        order[k] = (k + static_cast<std::size_t>(rep)) % count;
    }
    return order;
}

void measure(const Settings& settings, const std::vector<Implementation>& impls,
             std::vector<Result>& results)
{
    for (const auto& impl : impls) {
        Result r;
        r.id = impl.id;
        r.label = impl.label;
        r.workers = impl.id == "std_async" ? 0 : settings.workers;
        r.w1_n = impl.w1_n;
        r.w2_n = settings.w2_n;
        r.w2_rounds.resize(static_cast<std::size_t>(settings.w2_rounds));
        r.is_floor = impl.is_floor;
        results.push_back(std::move(r));
    }
    if (settings.run_w1) {
        for (int rep = 0; rep < settings.reps; ++rep) {
            for (const std::size_t k : order_for(impls.size(), rep)) {
                const auto& impl = impls[k];
                if (!impl.w1) {
                    continue;
                }
                const int warmup = std::min(impl.w1_n, 10'000);
                const double rate = impl.w1(impl.w1_n, warmup);
                results[k].w1_tasks_per_s.push_back(rate);
                std::fprintf(stderr, "W1 rep %d/%d  %-20s %12.0f tasks/s\n", rep + 1, settings.reps,
                             impl.id.c_str(), rate);
            }
        }
    }
    if (settings.run_w2) {
        const int per_round = settings.w2_n / settings.w2_rounds;
        for (int round = 0; round < settings.w2_rounds; ++round) {
            for (const std::size_t k : order_for(impls.size(), round)) {
                if (!impls[k].w2) {
                    continue;
                }
                auto& samples = results[k].w2_rounds[static_cast<std::size_t>(round)];
                impls[k].w2(per_round, settings.w2_warmup, samples);
                std::fprintf(stderr, "W2 round %d/%d  %-20s p50 %8.2f us  p99 %8.2f us\n",
                             round + 1, settings.w2_rounds, impls[k].id.c_str(),
                             percentile(samples, 0.5), percentile(samples, 0.99));
            }
        }
    }
    for (auto& r : results) {
        if (!r.w1_tasks_per_s.empty()) {
            r.w1_median = median(r.w1_tasks_per_s);
            r.w1_min = *std::min_element(r.w1_tasks_per_s.begin(), r.w1_tasks_per_s.end());
            r.w1_max = *std::max_element(r.w1_tasks_per_s.begin(), r.w1_tasks_per_s.end());
        }
        if (settings.run_w2 && !r.w2_rounds.empty() && !r.w2_rounds.front().empty()) {
            std::vector<double> all;
            std::vector<double> p50s;
            std::vector<double> p99s;
            for (const auto& round : r.w2_rounds) {
                all.insert(all.end(), round.begin(), round.end());
                p50s.push_back(percentile(round, 0.5));
                p99s.push_back(percentile(round, 0.99));
            }
            r.w2_n = static_cast<int>(all.size());
            r.w2_p50_us = percentile(all, 0.5);
            r.w2_p99_us = percentile(all, 0.99);
            r.w2_p50_min = *std::min_element(p50s.begin(), p50s.end());
            r.w2_p50_max = *std::max_element(p50s.begin(), p50s.end());
            r.w2_p99_min = *std::min_element(p99s.begin(), p99s.end());
            r.w2_p99_max = *std::max_element(p99s.begin(), p99s.end());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Result lines: `result key=value ...`, one per implementation, on one line; values have no
// spaces (a label writes them `%20`). The Python peer prints the same keys.

void print_result_line(std::ostream& out, const Result& r)
{
    out << "result impl=" << r.id << " label=" << encode_spaces(r.label) << " workers=" << r.workers
        << " w1_n=" << r.w1_n << " w1_reps=" << r.w1_tasks_per_s.size()
        << " w1_median=" << r.w1_median << " w1_min=" << r.w1_min << " w1_max=" << r.w1_max
        << " w2_n=" << r.w2_n << " w2_p50_us=" << r.w2_p50_us << " w2_p99_us=" << r.w2_p99_us
        << " w2_p50_min=" << r.w2_p50_min << " w2_p50_max=" << r.w2_p50_max
        << " w2_p99_min=" << r.w2_p99_min << " w2_p99_max=" << r.w2_p99_max;
    if (r.idle_cpu_percent >= 0) {
        out << " idle_cpu_percent=" << r.idle_cpu_percent;
    }
    out << '\n';
}

double to_double(const std::map<std::string, std::string>& fields, const std::string& key)
{
    const auto it = fields.find(key);
    if (it == fields.end()) {
        return 0.0;
    }
    try {
        return std::stod(it->second);
    } catch (const std::exception&) {
        fail("bad value for " + key + " in a peer's result line: " + it->second);
    }
}

std::vector<Result> read_peer_results(const std::string& path)
{
    std::ifstream in(path);
    if (!in) {
        fail("cannot read peer results from " + path);
    }
    std::vector<Result> peers;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string word;
        if (!(words >> word) || word != "result") {
            continue;
        }
        std::map<std::string, std::string> fields;
        while (words >> word) {
            const auto eq = word.find('=');
            if (eq != std::string::npos) {
                fields[word.substr(0, eq)] = word.substr(eq + 1);
            }
        }
        Result r;
        r.id = fields["impl"];
        r.label = decode_spaces(fields["label"]);
        r.is_cpp = false;
        r.workers = static_cast<std::size_t>(to_double(fields, "workers"));
        r.w1_n = static_cast<int>(to_double(fields, "w1_n"));
        r.w1_median = to_double(fields, "w1_median");
        r.w1_min = to_double(fields, "w1_min");
        r.w1_max = to_double(fields, "w1_max");
        r.w1_tasks_per_s.resize(static_cast<std::size_t>(to_double(fields, "w1_reps")));
        r.w2_n = static_cast<int>(to_double(fields, "w2_n"));
        r.w2_p50_us = to_double(fields, "w2_p50_us");
        r.w2_p99_us = to_double(fields, "w2_p99_us");
        r.w2_p50_min = to_double(fields, "w2_p50_min");
        r.w2_p50_max = to_double(fields, "w2_p50_max");
        r.w2_p99_min = to_double(fields, "w2_p99_min");
        r.w2_p99_max = to_double(fields, "w2_p99_max");
        peers.push_back(std::move(r));
    }
    if (peers.empty()) {
        fail("no `result` line in " + path);
    }
    return peers;
}

// ---------------------------------------------------------------------------------------------
// The Markdown table and the goals.

std::string implementation_cell(const Result& r, const Settings& settings)
{
    std::string cell = r.label;
    if (r.id == "std_async") {
        cell += " (N = " + grouped(r.w1_n) + ")";
    } else if (!r.is_cpp && r.workers != settings.workers) {
        cell += " (" + std::to_string(r.workers) + " workers!)";
    }
    return cell;
}

void print_table(std::ostream& out, const std::vector<Result>& results, const Settings& settings)
{
    const Result* futura = nullptr;
    for (const auto& r : results) {
        if (r.id == "futura") {
            futura = &r;
        }
    }
    const auto ratio = [](double mine, double theirs) {
        return mine > 0 && theirs > 0 ? fixed(mine / theirs, 2) : std::string("—");
    };

    out << "| workload | implementation | median | spread (min–max) | futura/peer |\n";
    out << "|---|---|---:|---:|---:|\n";
    if (settings.run_w1) {
        for (const auto& r : results) {
            if (r.w1_median <= 0) {
                continue;
            }
            out << "| W1 throughput, tasks/s | " << implementation_cell(r, settings) << " | "
                << grouped(r.w1_median) << " | " << grouped(r.w1_min) << "–" << grouped(r.w1_max)
                << " | " << (futura ? ratio(futura->w1_median, r.w1_median) : "—") << " |\n";
        }
    }
    if (settings.run_w2) {
        for (const auto& r : results) {
            if (r.w2_p50_us <= 0) {
                continue;
            }
            out << "| W2 round trip p50, µs | " << r.label << " | " << fixed(r.w2_p50_us, 1)
                << " | " << fixed(r.w2_p50_min, 1) << "–" << fixed(r.w2_p50_max, 1) << " | "
                << (futura ? ratio(futura->w2_p50_us, r.w2_p50_us) : "—") << " |\n";
        }
        for (const auto& r : results) {
            if (r.w2_p99_us <= 0) {
                continue;
            }
            out << "| W2 round trip p99, µs | " << r.label << " | " << fixed(r.w2_p99_us, 1)
                << " | " << fixed(r.w2_p99_min, 1) << "–" << fixed(r.w2_p99_max, 1) << " | "
                << (futura ? ratio(futura->w2_p99_us, r.w2_p99_us) : "—") << " |\n";
        }
    }
    out << "\nWorkers: " << settings.workers << " per pool (futura::available_cpus()).";
    if (settings.run_w1) {
        out << " W1: N = " << grouped(settings.w1_n)
            << " tasks (std::async: N = " << grouped(settings.async_n)
            << ", one thread per task), median of " << settings.reps
            << " repetitions, each in a fresh pool after a warm-up; higher is better, and "
               "futura/peer > 1 means futura is faster.";
    }
    if (settings.run_w2) {
        out << " W2: " << grouped(settings.w2_n) << " sequential round trips in "
            << settings.w2_rounds << " rounds of " << grouped(settings.w2_n / settings.w2_rounds)
            << " (each in a fresh pool after " << settings.w2_warmup
            << " untimed ones); p50/p99 over all of them, spread over the rounds; lower is "
               "better, and futura/peer < 1 means futura is faster.";
    }
    out << " Floors (no future, no executor, in the same run): W1's tasks each write their result "
           "into a slot of a vector, read once the pool is done; W2's are two threads handing "
           "an int back and forth.";
    out << '\n';
}

void print_goals(std::ostream& out, const std::vector<Result>& results, const Settings& settings)
{
    const Result* futura = nullptr;
    const Result* best_w1_cpp = nullptr; // the fastest C++ peer that hands back a future per task
    const Result* best_w2_cpp = nullptr;
    const Result* python = nullptr;
    for (const auto& r : results) {
        if (r.id == "futura") {
            futura = &r;
        } else if (r.is_cpp && !r.is_floor) {
            if (r.w1_median > 0 && (!best_w1_cpp || r.w1_median > best_w1_cpp->w1_median)) {
                best_w1_cpp = &r;
            }
            if (r.w2_p50_us > 0 && (!best_w2_cpp || r.w2_p50_us < best_w2_cpp->w2_p50_us)) {
                best_w2_cpp = &r;
            }
        } else if (r.id == "python") {
            python = &r;
        }
    }
    if (futura == nullptr) {
        return;
    }
    const auto verdict = [](bool met) { return met ? "**met**" : "**not met**"; };
    out << "\nGoals of the issue, on this run:\n\n";
    if (settings.run_w1 && best_w1_cpp != nullptr) {
        const double ratio = futura->w1_median / best_w1_cpp->w1_median;
        out << "- W1, futura ≥ 1.5× the fastest C++ peer handing back a future per task ("
            << best_w1_cpp->label << ", " << grouped(best_w1_cpp->w1_median)
            << " tasks/s): futura is " << fixed(ratio, 2) << "× — " << verdict(ratio >= 1.5)
            << ".\n";
    }
    if (settings.run_w1) {
        if (python != nullptr && python->w1_median > 0) {
            const double ratio = futura->w1_median / python->w1_median;
            out << "- W1, futura ≥ 40× Python's concurrent.futures (" << grouped(python->w1_median)
                << " tasks/s): futura is " << fixed(ratio, 1) << "× — " << verdict(ratio >= 40)
                << ".\n";
        } else {
            out << "- W1, futura ≥ 40× Python's concurrent.futures: not measured in this run.\n";
        }
    }
    // Issue 17's goals: against the floors of the same run.
    const Result* w1_floor = nullptr; // the fastest no-future floor
    const Result* w2_floor = nullptr; // the quickest ping-pong
    for (const auto& r : results) {
        if (!r.is_floor) {
            continue;
        }
        if (r.w1_median > 0 && (!w1_floor || r.w1_median > w1_floor->w1_median)) {
            w1_floor = &r;
        }
        if (r.w2_p50_us > 0 && (!w2_floor || r.w2_p50_us < w2_floor->w2_p50_us)) {
            w2_floor = &r;
        }
    }
    if (settings.run_w1 && w1_floor != nullptr) {
        const double ratio = futura->w1_median / w1_floor->w1_median;
        out << "- W1, futura ≥ 0.5× the fastest no-future floor (" << w1_floor->label << ", "
            << grouped(w1_floor->w1_median) << " tasks/s): futura is " << fixed(ratio, 2) << "× — "
            << verdict(ratio >= 0.5) << ".\n";
    }
    if (settings.run_w2 && futura->w2_p50_us > 0) {
        const double ratio = futura->w2_p99_us / futura->w2_p50_us;
        out << "- W2, futura's p99 ≤ 2× its p50 (" << fixed(futura->w2_p50_us, 1) << " µs): p99 "
            << fixed(futura->w2_p99_us, 1) << " µs, " << fixed(ratio, 2) << "× — "
            << verdict(ratio <= 2.0);
        if (w2_floor != nullptr) {
            out << "; against the quickest bare ping-pong (" << w2_floor->label << ", p50 "
                << fixed(w2_floor->w2_p50_us, 1) << " µs, p99 " << fixed(w2_floor->w2_p99_us, 1)
                << " µs), futura's p50 is " << fixed(futura->w2_p50_us / w2_floor->w2_p50_us, 2)
                << "×";
        }
        out << ".\n";
    }
    if (futura->idle_cpu_percent >= 0) {
        out << "- W2, no CPU burnt while idle: futura's pool used "
            << fixed(futura->idle_cpu_percent, 2) << "% of a CPU over " << settings.idle_ms
            << " ms with nothing to do (goal: under 1%) — "
            << verdict(futura->idle_cpu_percent < 1.0) << ".\n";
    }
    if (settings.run_w2 && best_w2_cpp != nullptr) {
        const double ratio = futura->w2_p50_us / best_w2_cpp->w2_p50_us;
        out << "- W2, futura's p50 no worse than the best C++ peer's (" << best_w2_cpp->label
            << ", " << fixed(best_w2_cpp->w2_p50_us, 1) << " µs): futura "
            << fixed(futura->w2_p50_us, 1) << " µs, futura/peer " << fixed(ratio, 2) << " — "
            << verdict(ratio <= 1.0);
        // Rounds run in fresh pools: if they disagree this much, one run's verdict is luck.
        if (futura->w2_p50_max > 2 * futura->w2_p50_min) {
            out << ", but unsteady: futura's p50 ranged from " << fixed(futura->w2_p50_min, 1)
                << " to " << fixed(futura->w2_p50_max, 1) << " µs across rounds";
        }
        out << ".\n";
    }
}

// ---------------------------------------------------------------------------------------------
// Command line.

int to_int(std::string_view text, std::string_view option)
{
    const auto value = futura_bench::to_count(text, option);
    if (value > std::numeric_limits<int>::max()) {
        fail("--" + std::string(option) + " is too large: " + std::string(text));
    }
    return static_cast<int>(value);
}

constexpr std::string_view usage = R"(usage: futura_bench_thread_pool [--option=value ...]

  --workers=N        threads per pool (default: futura::available_cpus())
  --w1-n=N           W1 tasks per measurement (default 200000)
  --async-n=N        W1 tasks per measurement for std::async (default 20000)
  --reps=N           W1 repetitions; the median is reported (default 7)
  --w2-n=N           W2 timed round trips in all (default 20000)
  --w2-rounds=N      W2 rounds the round trips are split into (default 4)
  --w2-warmup=N      W2 untimed round trips per round (default 500)
  --idle-ms=N        the idle span over which futura's pool's CPU time is measured, after W2
                     (default 1000)
  --workloads=LIST   W1, W2 or W1,W2 (default)
  --only=LIST        implementations: futura, asio_packaged_task, asio_promise,
                     tbb_task_group, std_async; the floors tbb_floor, asio_floor (W1),
                     cv_pingpong, futex_pingpong (W2) (default: all)
  --peer-results=F   add the `result` lines in file F (the Python peer's) to the table

Prints progress and one `result` line per implementation on stderr, and the Markdown
table with the goals on stdout.
)";

Settings parse(int argc, char** argv)
{
    Settings settings;
    for (int k = 1; k < argc; ++k) {
        const std::string_view arg = argv[k];
        if (arg == "--help" || arg == "-h") {
            settings.help = true;
            return settings;
        }
        const auto eq = arg.find('=');
        if (!arg.starts_with("--") || eq == std::string_view::npos) {
            fail("unknown argument '" + std::string(arg) + "'\n" + std::string(usage));
        }
        const auto key = arg.substr(2, eq - 2);
        const auto value = arg.substr(eq + 1);
        if (key == "workers") {
            settings.workers = static_cast<std::size_t>(to_int(value, key));
        } else if (key == "w1-n") {
            settings.w1_n = to_int(value, key);
        } else if (key == "async-n") {
            settings.async_n = to_int(value, key);
        } else if (key == "reps") {
            settings.reps = to_int(value, key);
        } else if (key == "w2-n") {
            settings.w2_n = to_int(value, key);
        } else if (key == "w2-rounds") {
            settings.w2_rounds = to_int(value, key);
        } else if (key == "w2-warmup") {
            settings.w2_warmup = to_int(value, key);
        } else if (key == "idle-ms") {
            settings.idle_ms = to_int(value, key);
        } else if (key == "workloads") {
            const auto list = split(value);
            settings.run_w1 = std::find(list.begin(), list.end(), "W1") != list.end();
            settings.run_w2 = std::find(list.begin(), list.end(), "W2") != list.end();
        } else if (key == "only") {
            settings.only = split(value);
        } else if (key == "peer-results") {
            settings.peer_results = value;
        } else {
            fail("unknown option '--" + std::string(key) + "'\n" + std::string(usage));
        }
    }
    if (settings.w2_n < settings.w2_rounds) {
        fail("--w2-n must be at least --w2-rounds");
    }
    return settings;
}

} // namespace

int main(int argc, char** argv)
{
    try {
        const Settings settings = parse(argc, argv);
        if (settings.help) {
            std::cout << usage;
            return 0;
        }
        const auto impls = implementations(settings);
        if (impls.empty()) {
            fail("--only selected no implementation");
        }
        // Read first, so that a bad file fails the run before a minute of measuring.
        auto peers = settings.peer_results.empty() ? std::vector<Result>()
                                                   : read_peer_results(settings.peer_results);

        std::vector<Result> results;
        measure(settings, impls, results);
        for (auto& r : results) {
            if (r.id == "futura" && settings.run_w2 && settings.idle_ms > 0) {
                r.idle_cpu_percent =
                    futura_idle_cpu_percent(settings.workers, settings.w2_warmup, settings.idle_ms);
                std::fprintf(stderr, "idle: futura's pool used %.2f%% of a CPU over %d ms\n",
                             r.idle_cpu_percent, settings.idle_ms);
            }
        }
        for (const auto& r : results) {
            print_result_line(std::cerr, r);
        }
        std::move(peers.begin(), peers.end(), std::back_inserter(results));
        print_table(std::cout, results, settings);
        print_goals(std::cout, results, settings);
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "futura_bench_thread_pool: " << e.what() << '\n';
        return 1;
    }
}
