// The process-pool benchmark: futura::ProcessPoolExecutor against Python's process pools
// (bench/peers/process_pool.py) and a bare pipe ping-pong between two processes
// (bench/pipe_pingpong.cpp), each with the same number of worker processes.
//
//   W4  throughput of trivial int -> int tasks: N by `submit` (keeping the futures, then reading
//       every result), by `map` with chunksize 1 and with automatic chunks; and a million tiny
//       tasks by `map` with automatic chunks. Tasks per second.
//   W5  sequential submit -> result round trips: p50 and p99 latency in microseconds.
//   W3  CPU-bound scaling over workload shapes (uniform; short then long; heavy-tailed; many
//       tiny then one long): each shape's tasks run one after the other in this process, then
//       submitted in order to the process pool and to a ThreadPoolExecutor: the speedup, the CPUs
//       kept busy, and when the 300 ms tasks started. The Python peer runs the same durations.
//   W7  start to first result: construct a fresh pool, submit one trivial task and read its
//       result, with each start method. Milliseconds. Its floor, in the same run: a bare
//       posix_spawn + exec of this program, timed to the first byte it writes.
//
// Worker processes are this program itself (futura wraps main), so tasks are plain functions.
// The harness takes medians over repetitions interleaved across implementations; the peers run
// in their own processes and hand their figures over as `result` lines (see harness.hpp), read
// with --peer-results. scripts/bench runs it all; doc/benchmarks.md says how to read the table.
#include <futura/process_pool_executor.hpp>
#include <futura/thread_pool_executor.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <numbers>
#include <numeric>
#include <optional>
#include <spawn.h>
#include <string>
#include <string_view>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include "harness.hpp"

namespace {

using namespace futura_bench;

// ---------------------------------------------------------------------------------------------
// The tasks: plain functions, since they run in worker processes.

/// W4, W5 and W7's trivial task.
int add_one(int i) { return i + 1; }

/// W3's CPU-bound task: `iterations` steps of a multiply-xorshift chain from `seed`. Each step
/// depends on the last and is not linear, so the compiler can neither fold nor vectorise it.
std::uint64_t burn(std::uint64_t seed, std::uint64_t iterations)
{
    std::uint64_t x = seed;
    for (std::uint64_t k = 0; k < iterations; ++k) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        x ^= x >> 29;
    }
    return x;
}

/// An optimisation barrier: the compiler must assume `value` is read and changed here, so a
/// computation producing or consuming it cannot move across the clock readings around it (GCC
/// otherwise sinks an inlined, side-effect-free `burn` loop past the second reading).
template <class T>
void opaque(T& value)
{
    __asm__ volatile("" : "+r"(value) : : "memory");
}

// ---------------------------------------------------------------------------------------------
// Settings and the groups of the table.

struct Settings
{
    int workers = static_cast<int>(futura::available_cpus());
    int reps = 5;             // W4 repetitions
    int w4_n = 20'000;        // W4 tasks (submit, map)
    int w4_big_n = 1'000'000; // W4's million tiny tasks (map, automatic chunks)
    int w4_warmup = 1'000;    // W4 untimed tasks per fresh pool
    int w5_n = 2'000;         // W5 timed round trips in all
    int w5_rounds = 8;
    int w5_warmup = 100; // per round
    int w3_reps = 5;
    std::vector<std::string> w3_shapes = {"uniform", "short_long", "heavy_tail", "tiny_long"};
    int w7_reps = 11;
    std::vector<std::string> workloads = {"W4", "W5", "W3", "W7"};
    std::vector<std::string> only; // futura implementation ids; empty: all
    std::vector<std::string> peer_results;
    bool help = false;

    [[nodiscard]] bool runs(std::string_view workload) const
    {
        return std::find(workloads.begin(), workloads.end(), workload) != workloads.end();
    }
    [[nodiscard]] bool runs_impl(std::string_view impl) const
    {
        return only.empty() || std::find(only.begin(), only.end(), impl) != only.end();
    }
};

// ---------------------------------------------------------------------------------------------
// W3's workload shapes. bench/peers/process_pool.py builds the same durations, to the
// microsecond: the heavy tail's draws come from the same generator (splitmix64, then
// Box-Muller with the C library's log, cos, sqrt and exp, which Python's math module calls
// too), rounded to whole microseconds. Each side prints a fingerprint of every shape (a
// `w3_shape` line), and the harness checks that the peer's match its own.

constexpr std::uint64_t w3_seed = 8; // issue 8
constexpr double w3_tail_median_ms = 2.0;
constexpr double w3_tail_sigma = 1.5; // of the natural log of the duration
constexpr double w3_tail_cap_ms = 200.0;
constexpr std::int64_t w3_long_us = 300'000; // the tasks whose start is reported
constexpr std::int64_t w3_tiny_us = 10;

struct W3Shape
{
    std::string id;               // uniform, short_long, heavy_tail, tiny_long
    std::string name;             // as the table says it
    std::string what;             // the tasks, in submission order
    std::vector<std::int64_t> us; // their durations, in microseconds

    [[nodiscard]] double total_ms() const
    {
        return static_cast<double>(std::accumulate(us.begin(), us.end(), std::int64_t{0})) / 1e3;
    }
    [[nodiscard]] double longest_ms() const
    {
        return static_cast<double>(*std::max_element(us.begin(), us.end())) / 1e3;
    }
    [[nodiscard]] bool is_long(std::size_t k) const { return us[k] == w3_long_us; }
    [[nodiscard]] bool has_long() const
    {
        return std::find(us.begin(), us.end(), w3_long_us) != us.end();
    }
    /// The best speedup any pool of `workers` could reach: no schedule takes less than the
    /// total over the workers, nor less than the longest task.
    [[nodiscard]] double bound(int workers) const
    {
        return total_ms() / std::max(total_ms() / workers, longest_ms());
    }
    /// The line both sides print: the durations' count, sum and a polynomial hash of them.
    [[nodiscard]] std::string fingerprint() const
    {
        std::uint64_t hash = 0;
        for (const auto d : us) {
            hash = hash * 1'000'003ULL + static_cast<std::uint64_t>(d);
        }
        return "w3_shape name=" + id + " tasks=" + std::to_string(us.size()) +
               " total_us=" + std::to_string(std::accumulate(us.begin(), us.end(), 0LL)) +
               " hash=" + std::to_string(hash);
    }
};

std::uint64_t splitmix64(std::uint64_t& state)
{
    state += 0x9E3779B97F4A7C15ULL;
    std::uint64_t z = state;
    z = (z ^ (z >> 30U)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27U)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31U);
}

/// A uniform draw in (0, 1]: 53 random bits, exact in a double (and in a Python float).
double unit_draw(std::uint64_t& state)
{
    return static_cast<double>((splitmix64(state) >> 11U) + 1) * 0x1p-53;
}

std::int64_t whole_us(double ms) { return static_cast<std::int64_t>(std::floor(ms * 1e3 + 0.5)); }

/// `count` durations from a log-normal of median w3_tail_median_ms, capped at w3_tail_cap_ms.
std::vector<std::int64_t> heavy_tail_us(int count)
{
    std::uint64_t state = w3_seed;
    std::vector<std::int64_t> us;
    for (int k = 0; k < count; ++k) {
        const double u1 = unit_draw(state);
        const double u2 = unit_draw(state);
        const double normal =
            std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
        us.push_back(whole_us(
            std::min(w3_tail_cap_ms, w3_tail_median_ms * std::exp(w3_tail_sigma * normal))));
    }
    return us;
}

/// The shapes of issue 8, in the order of `ids`.
std::vector<W3Shape> w3_shapes(const std::vector<std::string>& ids)
{
    const auto repeat = [](W3Shape& shape, int count, std::int64_t us) {
        shape.us.insert(shape.us.end(), static_cast<std::size_t>(count), us);
    };
    std::vector<W3Shape> shapes;
    for (const auto& id : ids) {
        W3Shape shape{id, "", "", {}};
        if (id == "uniform") {
            shape.name = "uniform";
            shape.what = "20 × 50 ms";
            repeat(shape, 20, 50'000);
        } else if (id == "short_long") {
            shape.name = "short then long";
            shape.what = "100 × 10 µs, 2 × 300 ms, 20 × 50 ms";
            repeat(shape, 100, w3_tiny_us);
            repeat(shape, 2, w3_long_us);
            repeat(shape, 20, 50'000);
        } else if (id == "heavy_tail") {
            shape.name = "heavy-tailed";
            shape.what = "log-normal, median 2 ms, σ 1.5, at most 200 ms";
            shape.us = heavy_tail_us(400);
        } else if (id == "tiny_long") {
            shape.name = "tiny then long";
            shape.what = "1,000 × 10 µs, 1 × 300 ms";
            repeat(shape, 1000, w3_tiny_us);
            repeat(shape, 1, w3_long_us);
        } else {
            fail("unknown W3 shape '" + id + "' (uniform, short_long, heavy_tail, tiny_long)");
        }
        shapes.push_back(std::move(shape));
    }
    return shapes;
}

/// Fails unless every `w3_shape` line of the files `paths` (the peers') matches ours.
void check_w3_shapes(const std::vector<std::string>& paths, const std::vector<W3Shape>& shapes)
{
    for (const auto& path : paths) {
        std::ifstream in(path);
        std::string line;
        while (std::getline(in, line)) {
            if (!line.starts_with("w3_shape ")) {
                continue;
            }
            for (const auto& shape : shapes) {
                if (line.starts_with("w3_shape name=" + shape.id + " ") &&
                    line != shape.fingerprint()) {
                    fail("W3: the peer's shape differs from ours:\n  " + line + "\n  " +
                         shape.fingerprint());
                }
            }
        }
    }
}

/// One comparison of the table: its rows share a unit, and each is compared with the subject.
struct Group
{
    std::string id;
    std::string title;
    int decimals;
    std::string subject; // the futura implementation the others are compared with
};

std::vector<Group> groups(const Settings& s)
{
    const auto n = grouped(s.w4_n);
    std::vector<Group> w3;
    for (const auto& shape : w3_shapes(s.w3_shapes)) {
        const auto& id = shape.id;
        w3.push_back(
            {"w3_speedup_" + id,
             "W3 speedup, " + shape.name + ", N = " + grouped(shape.us.size()) + ": " + shape.what,
             2, "futura_process"});
        w3.push_back({"w3_cpus_" + id, "W3 CPUs kept busy, " + shape.name, 2, "futura_process"});
        if (shape.has_long()) {
            w3.push_back(
                {"w3_long_start_" + id,
                 "W3 start of the last 300 ms task, " + shape.name + ", ms after the first submit",
                 1, "futura_process"});
        }
        w3.push_back({"w3_sequential_" + id, "W3 one after the other, " + shape.name + ", s", 3,
                      "sequential"});
    }
    std::vector<Group> all{
        {"w4_submit", "W4 submit, N = " + n + ", tasks/s", 0, "futura_submit"},
        {"w4_map_1", "W4 map chunksize 1, N = " + n + ", tasks/s", 0, "futura_map_1"},
        {"w4_map", "W4 map chunked, N = " + n + ", tasks/s", 0, "futura_map_auto"},
        {"w4_map_big", "W4 map chunked, N = " + grouped(s.w4_big_n) + ", tasks/s", 0,
         "futura_map_auto"},
        {"w5_p50", "W5 round trip p50, µs", 1, "futura"},
        {"w5_p99", "W5 round trip p99, µs", 1, "futura"},
    };
    all.insert(all.end(), w3.begin(), w3.end());
    all.push_back({"w7_start", "W7 start to first result, ms", 1, "futura_spawn"});
    return all;
}

futura::ProcessPoolOptions pool_options(const Settings& s,
                                        futura::StartMethod method = futura::StartMethod::spawn)
{
    return {.max_workers = s.workers, .start_method = method};
}

// ---------------------------------------------------------------------------------------------
// The workloads.

/// Runs `count` trivial tasks submitted at once, so that the pool starts all its workers (one
/// per waiting task, up to max_workers) and they have run something before timing starts.
template <class Pool>
void warm_up(Pool& pool, int count)
{
    std::vector<futura::Future<int>> futures;
    futures.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        futures.push_back(pool.submit(add_one, i));
    }
    for (int i = 0; i < count; ++i) {
        if (futures[static_cast<std::size_t>(i)].result() != i + 1) {
            fail("warm-up: wrong result for " + std::to_string(i));
        }
    }
}

void check_sum(std::string_view what, std::int64_t sum, std::int64_t n)
{
    if (sum != n * (n + 1) / 2) {
        fail(std::string(what) + ": wrong sum of results: " + std::to_string(sum) + " instead of " +
             std::to_string(n * (n + 1) / 2));
    }
}

/// One W4 `submit` measurement in a fresh, warmed-up pool. @return tasks per second; the timed
/// span covers submitting, reading every result and dropping the futures.
double w4_submit_once(const Settings& s)
{
    std::vector<futura::Future<int>> futures;
    futures.reserve(static_cast<std::size_t>(s.w4_n));
    futura::ProcessPoolExecutor pool(pool_options(s));
    warm_up(pool, s.w4_warmup);
    const auto start = Clock::now();
    for (int i = 0; i < s.w4_n; ++i) {
        futures.push_back(pool.submit(add_one, i));
    }
    std::int64_t sum = 0;
    for (const auto& future : futures) {
        sum += future.result();
    }
    futures.clear();
    const double rate = s.w4_n / seconds_since(start);
    check_sum("W4 submit", sum, s.w4_n);
    return rate;
}

struct MapMeasurement
{
    double tasks_per_s;
    std::size_t messages; // tasks the map submitted: one per chunk
};

/// One W4 `map` measurement of `inputs` in a fresh, warmed-up pool. The timed span covers the
/// call, reading every result and destroying the range of results.
MapMeasurement w4_map_once(const Settings& s, const std::vector<int>& inputs, std::size_t chunksize)
{
    futura::ProcessPoolExecutor pool(pool_options(s));
    warm_up(pool, s.w4_warmup);
    const auto submitted_before = pool.stats().submitted;
    const auto start = Clock::now();
    std::int64_t sum = 0;
    {
        auto results = pool.map(add_one, inputs, {.chunksize = chunksize});
        for (const int r : results) {
            sum += r;
        }
    }
    const double seconds = seconds_since(start);
    check_sum("W4 map", sum, static_cast<std::int64_t>(inputs.size()));
    return {static_cast<double>(inputs.size()) / seconds,
            pool.stats().submitted - submitted_before};
}

/// One W5 round in a fresh pool: `warmup` untimed round trips, then `n` timed ones, each from
/// just before `submit` to just after its result is read.
std::vector<double> w5_round(const Settings& s, int n, int warmup)
{
    std::vector<double> samples;
    samples.reserve(static_cast<std::size_t>(n));
    futura::ProcessPoolExecutor pool(pool_options(s));
    for (int i = 0; i < warmup + n; ++i) {
        const auto start = Clock::now();
        auto future = pool.submit(add_one, i);
        const int result = future.result();
        const auto stop = Clock::now();
        if (result != i + 1) {
            fail("W5: wrong result " + std::to_string(result) + " for " + std::to_string(i));
        }
        if (i >= warmup) {
            samples.push_back(micros(stop - start));
        }
    }
    return samples;
}

/// CPU time this thread has used, in seconds.
double thread_cpu_seconds()
{
    timespec t{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

/// Iterations of `burn` that take about `ms` milliseconds of CPU here: the fastest of a few
/// trials. Timed in CPU time, not elapsed time, so that a busy machine, which gives this
/// process only part of a CPU, does not make the tasks shorter (the Python peer does the same).
std::uint64_t calibrate_burn(int ms)
{
    constexpr std::uint64_t trial = 2'000'000;
    double best = 1e9;
    for (std::uint64_t k = 1; k <= 5; ++k) {
        const double start = thread_cpu_seconds();
        std::uint64_t seed = k;
        opaque(seed);
        std::uint64_t result = burn(seed, trial);
        opaque(result);
        best = std::min(best, thread_cpu_seconds() - start);
    }
    return static_cast<std::uint64_t>(static_cast<double>(trial) * (ms / 1e3) / best);
}

/// CPU time used so far by this process (`RUSAGE_SELF`) or by its reaped children
/// (`RUSAGE_CHILDREN`), in seconds.
double cpu_seconds(int who)
{
    rusage usage{};
    ::getrusage(who, &usage);
    const auto seconds = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

/// What a W3 task hands back: its result, and when it started, in nanoseconds of steady_clock
/// (CLOCK_MONOTONIC: one clock for every process of the machine).
struct BurnResult
{
    std::uint64_t value;
    std::int64_t started_ns;
};

std::int64_t nanoseconds(Clock::time_point t)
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

/// W3's task: `burn`, saying when it started. Every task of every shape is this one function,
/// tiny or long, as in a map whose last elements cost more: the pool cannot tell them apart
/// by the callable.
BurnResult timed_burn(std::uint64_t seed, std::uint64_t iterations)
{
    const auto started = Clock::now();
    return {burn(seed, iterations), nanoseconds(started)};
}

/// One way of running one shape's tasks: how long it took, how many CPUs it kept busy on
/// average meanwhile (CPU time over elapsed time), when its last 300 ms task started, and the
/// combined results (which every way must agree on).
struct W3Run
{
    double seconds = 0;
    double cpus = 0;
    double long_start_ms = 0; // after the first submit; 0 if the shape has no 300 ms task
    std::uint64_t combined = 0;
};

/// `burn` iterations for each of the shape's tasks, at `per_ms` iterations a millisecond.
std::vector<std::uint64_t> w3_iterations(const W3Shape& shape, double per_ms)
{
    std::vector<std::uint64_t> iterations;
    for (const auto us : shape.us) {
        iterations.push_back(static_cast<std::uint64_t>(
            std::max(1LL, std::llround(static_cast<double>(us) / 1e3 * per_ms))));
    }
    return iterations;
}

/// The shape's tasks one after the other in this process.
W3Run w3_sequential(const std::vector<std::uint64_t>& iterations)
{
    W3Run run;
    const double cpu = cpu_seconds(RUSAGE_SELF);
    const auto start = Clock::now();
    for (std::size_t k = 0; k < iterations.size(); ++k) {
        std::uint64_t seed = k + 1;
        opaque(seed);
        std::uint64_t value = burn(seed, iterations[k]);
        opaque(value);
        run.combined ^= value;
    }
    run.seconds = seconds_since(start);
    run.cpus = (cpu_seconds(RUSAGE_SELF) - cpu) / run.seconds;
    return run;
}

/// Submits the shape's tasks to `pool` in order, then reads every result. The timed span runs
/// from the first submit to the last result read.
template <class Pool>
W3Run w3_on(Pool& pool, const W3Shape& shape, const std::vector<std::uint64_t>& iterations)
{
    std::vector<futura::Future<BurnResult>> futures;
    futures.reserve(iterations.size());
    const auto start = Clock::now();
    for (std::size_t k = 0; k < iterations.size(); ++k) {
        futures.push_back(pool.submit(timed_burn, std::uint64_t{k + 1}, iterations[k]));
    }
    W3Run run;
    std::int64_t long_started = 0;
    for (std::size_t k = 0; k < futures.size(); ++k) {
        const BurnResult result = futures[k].result();
        run.combined ^= result.value;
        if (shape.is_long(k)) {
            long_started = std::max(long_started, result.started_ns);
        }
    }
    run.seconds = seconds_since(start);
    if (long_started != 0) {
        run.long_start_ms = static_cast<double>(long_started - nanoseconds(start)) / 1e6;
    }
    return run;
}

/// The shape on a fresh process pool, whose workers have started and run 2 × workers trivial
/// tasks before the clock starts. The workers' CPU time counts once they are reaped, when the
/// pool is destroyed: it includes their start and the warm-up, a few milliseconds.
W3Run w3_process(const Settings& s, const W3Shape& shape,
                 const std::vector<std::uint64_t>& iterations)
{
    const double cpu = cpu_seconds(RUSAGE_CHILDREN);
    W3Run run;
    {
        futura::ProcessPoolExecutor pool(pool_options(s));
        warm_up(pool, 2 * s.workers);
        run = w3_on(pool, shape, iterations);
    }
    run.cpus = (cpu_seconds(RUSAGE_CHILDREN) - cpu) / run.seconds;
    return run;
}

/// The shape on a fresh thread pool, warmed up like the process pool.
W3Run w3_thread(const Settings& s, const W3Shape& shape,
                const std::vector<std::uint64_t>& iterations)
{
    futura::ThreadPoolExecutor pool(futura::ThreadPoolOptions{.max_workers = s.workers});
    warm_up(pool, 2 * s.workers);
    const double cpu = cpu_seconds(RUSAGE_SELF);
    W3Run run = w3_on(pool, shape, iterations);
    run.cpus = (cpu_seconds(RUSAGE_SELF) - cpu) / run.seconds;
    return run;
}

/// One W7 measurement: milliseconds from constructing a pool to holding its first result (the
/// pool's shutdown afterwards is not timed).
double w7_once(const Settings& s, futura::StartMethod method)
{
    const auto start = Clock::now();
    futura::ProcessPoolExecutor pool(pool_options(s, method));
    auto future = pool.submit(add_one, 41);
    const int result = future.result();
    const double ms = seconds_since(start) * 1e3;
    if (result != 42) {
        fail("W7: wrong result");
    }
    return ms;
}

/// What a spawned copy of this program does when its first argument is this: write one byte to
/// its standard output and end, before parsing anything (W7's floor).
constexpr std::string_view spawn_floor_argument = "--spawn-floor-child";

/// One measurement of W7's floor: milliseconds from posix_spawn of this program (as futura's
/// spawn start method runs it, with the same environment) to the first byte it writes, read
/// from a pipe. Reaping it is not timed.
double w7_spawn_floor_once()
{
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
        fail("W7 floor: pipe2: " + std::string(std::strerror(errno)));
    }
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
    std::string program = "/proc/self/exe";
    std::string argument(spawn_floor_argument);
    char* child_argv[] = {program.data(), argument.data(), nullptr};
    pid_t child = 0;
    const auto start = Clock::now();
    const int error =
        ::posix_spawn(&child, program.c_str(), &actions, nullptr, child_argv, environ);
    ::posix_spawn_file_actions_destroy(&actions);
    ::close(pipe_fds[1]);
    if (error != 0) {
        ::close(pipe_fds[0]);
        fail("W7 floor: posix_spawn: " + std::string(std::strerror(error)));
    }
    char byte = 0;
    ssize_t n = 0;
    while ((n = ::read(pipe_fds[0], &byte, 1)) < 0 && errno == EINTR) {
    }
    const double ms = seconds_since(start) * 1e3;
    ::close(pipe_fds[0]);
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    if (n != 1 || byte != '!') {
        fail("W7 floor: the spawned program wrote nothing");
    }
    return ms;
}

// ---------------------------------------------------------------------------------------------
// Measuring: each workload's implementations in turn, interleaved over repetitions.

/// A futura implementation of one workload: one repetition gives one figure.
struct Measured
{
    std::string group;
    std::string impl;
    std::string label;
    long long n;
    std::function<double()> once;
    std::vector<double> values = {};
};

/// Runs every measurement `reps` times, rotating their order each time so that a burst of
/// outside load does not always fall on the same one; appends a row per measurement.
void run_interleaved(std::vector<Measured> measured, int reps, const char* unit,
                     std::vector<Row>& rows)
{
    std::erase_if(measured, [](const Measured& m) { return !m.once; });
    for (int rep = 0; rep < reps; ++rep) {
        for (std::size_t k = 0; k < measured.size(); ++k) {
            auto& m = measured[(k + static_cast<std::size_t>(rep)) % measured.size()];
            m.values.push_back(m.once());
            std::fprintf(stderr, "%s rep %d/%d  %-18s %14.1f %s\n", m.group.c_str(), rep + 1, reps,
                         m.impl.c_str(), m.values.back(), unit);
        }
    }
    for (auto& m : measured) {
        Row row = summarise(m.group, m.impl, m.label, m.n, m.values);
        row.is_futura = true;
        rows.push_back(std::move(row));
    }
}

void measure_w4(const Settings& s, std::vector<Row>& rows)
{
    std::vector<int> inputs(static_cast<std::size_t>(s.w4_n));
    std::iota(inputs.begin(), inputs.end(), 0);
    std::vector<int> big_inputs(static_cast<std::size_t>(s.w4_big_n));
    std::iota(big_inputs.begin(), big_inputs.end(), 0);
    // map's automatic chunks: how many messages each map took, for the labels.
    std::vector<std::size_t> auto_messages;
    std::vector<std::size_t> big_messages;
    const auto when = [&](const char* impl, std::function<double()> once) {
        return s.runs_impl(impl) ? std::move(once) : std::function<double()>();
    };
    std::vector<Measured> measured{
        {"w4_submit", "futura_submit", "futura::ProcessPoolExecutor, submit", s.w4_n,
         when("futura_submit", [&] { return w4_submit_once(s); })},
        {"w4_map_1", "futura_map_1", "futura::ProcessPoolExecutor, map chunksize 1", s.w4_n,
         when("futura_map_1", [&] { return w4_map_once(s, inputs, 1).tasks_per_s; })},
        {"w4_map", "futura_map_auto", "", s.w4_n,
         when("futura_map_auto",
              [&] {
                  const auto m = w4_map_once(s, inputs, 0);
                  auto_messages.push_back(m.messages);
                  std::fprintf(stderr, "(%zu chunks) ", m.messages);
                  return m.tasks_per_s;
              })},
        {"w4_map_big", "futura_map_auto", "", s.w4_big_n,
         when("futura_map_auto",
              [&] {
                  const auto m = w4_map_once(s, big_inputs, 0);
                  big_messages.push_back(m.messages);
                  std::fprintf(stderr, "(%zu chunks) ", m.messages);
                  return m.tasks_per_s;
              })},
    };
    run_interleaved(std::move(measured), s.reps, "tasks/s", rows);
    // The automatic chunk size depends on task durations measured during the warm-up: say what
    // it came to.
    const auto auto_label = [](const std::vector<std::size_t>& messages, int n) {
        std::string label = "futura::ProcessPoolExecutor, map automatic chunksize";
        if (!messages.empty()) {
            // Inputs per chunk, from the fewest and most chunks a repetition used.
            const auto [fewest, most] = std::minmax_element(messages.begin(), messages.end());
            const auto per_chunk = [n](std::size_t chunks) {
                return grouped(static_cast<double>(n) / static_cast<double>(chunks));
            };
            label += " (chunks of " +
                     (*fewest == *most ? per_chunk(*most)
                                       : "about " + per_chunk(*most) + "–" + per_chunk(*fewest)) +
                     ")";
        }
        return label;
    };
    for (auto& row : rows) {
        if (row.impl == "futura_map_auto") {
            row.label = row.group == "w4_map" ? auto_label(auto_messages, s.w4_n)
                                              : auto_label(big_messages, s.w4_big_n);
        }
    }
}

void measure_w5(const Settings& s, std::vector<Row>& rows)
{
    if (!s.runs_impl("futura")) {
        return;
    }
    std::vector<double> all;
    std::vector<double> p50s;
    std::vector<double> p99s;
    const int per_round = s.w5_n / s.w5_rounds;
    for (int round = 0; round < s.w5_rounds; ++round) {
        const auto samples = w5_round(s, per_round, s.w5_warmup);
        p50s.push_back(percentile(samples, 0.5));
        p99s.push_back(percentile(samples, 0.99));
        std::fprintf(stderr, "w5 round %d/%d  futura p50 %8.2f us  p99 %8.2f us\n", round + 1,
                     s.w5_rounds, p50s.back(), p99s.back());
        all.insert(all.end(), samples.begin(), samples.end());
    }
    const auto n = static_cast<long long>(all.size());
    const std::string label = "futura::ProcessPoolExecutor, submit + result";
    Row p50 = summarise("w5_p50", "futura", label, n, p50s);
    p50.median = percentile(all, 0.5); // pooled over all rounds; the spread is over rounds
    Row p99 = summarise("w5_p99", "futura", label, n, p99s);
    p99.median = percentile(all, 0.99);
    p50.is_futura = p99.is_futura = true;
    rows.push_back(std::move(p50));
    rows.push_back(std::move(p99));
}

void measure_w3(const Settings& s, std::vector<Row>& rows)
{
    const double per_ms = static_cast<double>(calibrate_burn(1000)) / 1e3;
    std::fprintf(stderr, "w3: %.0f iterations of burn a millisecond here\n", per_ms);
    const auto shapes = w3_shapes(s.w3_shapes);
    struct Way
    {
        const char* impl;
        const char* label;
        std::function<W3Run(const W3Shape&, const std::vector<std::uint64_t>&)> run;
    };
    const std::vector<Way> ways{
        {"sequential", "in-process, one after the other",
         [](const W3Shape&, const std::vector<std::uint64_t>& it) { return w3_sequential(it); }},
        {"futura_process", "futura::ProcessPoolExecutor, submit",
         [&](const W3Shape& shape, const std::vector<std::uint64_t>& it) {
             return w3_process(s, shape, it);
         }},
        {"futura_thread", "futura::ThreadPoolExecutor, submit (reference)",
         [&](const W3Shape& shape, const std::vector<std::uint64_t>& it) {
             return w3_thread(s, shape, it);
         }},
    };
    // runs[shape][way]: one W3Run per repetition.
    std::vector<std::vector<std::vector<W3Run>>> runs(shapes.size(),
                                                      std::vector<std::vector<W3Run>>(ways.size()));
    std::vector<std::vector<std::uint64_t>> iterations;
    for (const auto& shape : shapes) {
        iterations.push_back(w3_iterations(shape, per_ms));
        std::fprintf(stderr, "%s  (%.1f ms in all, the longest %.1f ms)\n",
                     shape.fingerprint().c_str(), shape.total_ms(), shape.longest_ms());
    }
    for (int rep = 0; rep < s.w3_reps; ++rep) {
        for (std::size_t i = 0; i < shapes.size(); ++i) {
            // The order of the ways rotates with the repetition and the shape, so that a burst
            // of outside load does not always fall on the same one.
            std::uint64_t expected = 0;
            for (std::size_t k = 0; k < ways.size(); ++k) {
                const auto w = (k + i + static_cast<std::size_t>(rep)) % ways.size();
                const W3Run run = ways[w].run(shapes[i], iterations[i]);
                if (expected != 0 && run.combined != expected) {
                    fail("W3 " + shapes[i].id + ": " + ways[w].impl + " computed something else");
                }
                expected = run.combined;
                runs[i][w].push_back(run);
            }
            const auto& r = runs[i];
            const double sequential = r[0].back().seconds;
            std::fprintf(stderr,
                         "w3 rep %d/%d  %-10s  sequential %.3f s  process pool %.3f s (%.2fx, "
                         "%.2f CPUs)  thread pool %.3f s (%.2fx, %.2f CPUs)",
                         rep + 1, s.w3_reps, shapes[i].id.c_str(), sequential, r[1].back().seconds,
                         sequential / r[1].back().seconds, r[1].back().cpus, r[2].back().seconds,
                         sequential / r[2].back().seconds, r[2].back().cpus);
            if (shapes[i].has_long()) {
                std::fprintf(stderr, "  300 ms task started at %.1f / %.1f ms",
                             r[1].back().long_start_ms, r[2].back().long_start_ms);
            }
            std::fprintf(stderr, "\n");
        }
    }
    for (std::size_t i = 0; i < shapes.size(); ++i) {
        const auto& shape = shapes[i];
        const auto n = static_cast<long long>(shape.us.size());
        const auto add = [&](const std::string& group, const Way& way, std::vector<double> values) {
            Row row = summarise(group, way.impl, way.label, n, values);
            row.is_futura = true;
            rows.push_back(std::move(row));
        };
        const auto each = [&](std::size_t w, const auto& figure) {
            std::vector<double> values;
            for (std::size_t rep = 0; rep < runs[i][w].size(); ++rep) {
                values.push_back(figure(runs[i][0][rep], runs[i][w][rep]));
            }
            return values;
        };
        for (std::size_t w = 1; w < ways.size(); ++w) {
            // Speedups are paired: each pool's time over the sequential run of its repetition.
            add("w3_speedup_" + shape.id, ways[w], each(w, [](const W3Run& seq, const W3Run& run) {
                    return seq.seconds / run.seconds;
                }));
        }
        const double bound = shape.bound(s.workers);
        Row best = summarise("w3_speedup_" + shape.id, "bound",
                             "the bound: total ÷ max(total ÷ " + std::to_string(s.workers) +
                                 ", longest task) (reference)",
                             n, {bound});
        best.is_futura = true;
        rows.push_back(std::move(best));
        for (std::size_t w = 1; w < ways.size(); ++w) {
            add("w3_cpus_" + shape.id, ways[w],
                each(w, [](const W3Run&, const W3Run& run) { return run.cpus; }));
        }
        if (shape.has_long()) {
            for (std::size_t w = 1; w < ways.size(); ++w) {
                add("w3_long_start_" + shape.id, ways[w],
                    each(w, [](const W3Run&, const W3Run& run) { return run.long_start_ms; }));
            }
        }
        add("w3_sequential_" + shape.id, ways[0],
            each(0, [](const W3Run&, const W3Run& run) { return run.seconds; }));
    }
}

void measure_w7(const Settings& s, std::vector<Row>& rows)
{
    const auto when = [&](const char* impl, std::function<double()> once) {
        return s.runs_impl(impl) ? std::move(once) : std::function<double()>();
    };
    std::vector<Measured> measured{
        {"w7_start", "futura_spawn", "futura::ProcessPoolExecutor, StartMethod::spawn", 1,
         when("futura_spawn", [&] { return w7_once(s, futura::StartMethod::spawn); })},
        {"w7_start", "futura_fork", "futura::ProcessPoolExecutor, StartMethod::fork", 1,
         when("futura_fork", [&] { return w7_once(s, futura::StartMethod::fork); })},
        {"w7_start", "spawn_floor", "bare posix_spawn + exec of this program, to its first write",
         1, when("spawn_floor", [] { return w7_spawn_floor_once(); })},
    };
    run_interleaved(std::move(measured), s.w7_reps, "ms", rows);
    for (auto& row : rows) {
        if (row.impl == "spawn_floor") {
            row.is_futura = false; // the floor, measured here: listed after futura's rows
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The Markdown table and the goals.

const Row* find_row(const std::vector<Row>& rows, std::string_view group, std::string_view impl)
{
    for (const auto& row : rows) {
        if (row.group == group && row.impl == impl) {
            return &row;
        }
    }
    return nullptr;
}

/// The Python row of `group` with the highest median, if any.
const Row* best_python(const std::vector<Row>& rows, std::string_view group)
{
    const Row* best = nullptr;
    for (const auto& row : rows) {
        if (row.group == group && !row.is_futura && row.impl.starts_with("python") &&
            (best == nullptr || row.median > best->median)) {
            best = &row;
        }
    }
    return best;
}

/// W3 at a glance: a row per shape, a column per implementation (median speedups), and the
/// ratios the goals name.
void print_w3_summary(std::ostream& out, const std::vector<Row>& rows, const Settings& s)
{
    const std::pair<const char*, const char*> columns[] = {
        {"bound", "bound"},
        {"futura_process", "futura process pool"},
        {"futura_thread", "futura thread pool"},
        {"python_submit", "Python ProcessPoolExecutor.submit"},
        {"python_map", "Python ProcessPoolExecutor.map"},
        {"python_imap_unordered", "Python Pool.imap_unordered"},
    };
    out << "\nW3 speedups at a glance (medians; " << s.workers
        << " workers; bound: the most any pool could reach):\n\n| shape |";
    for (const auto& [impl, title] : columns) {
        out << ' ' << title << " |";
    }
    out << " process ÷ thread (goal ≥ 0.97) | process ÷ best Python (goal ≥ 1) |\n|---|";
    for (std::size_t k = 0; k < std::size(columns) + 2; ++k) {
        out << "---:|";
    }
    out << '\n';
    for (const auto& shape : w3_shapes(s.w3_shapes)) {
        const std::string group = "w3_speedup_" + shape.id;
        out << "| " << shape.name << " |";
        for (const auto& [impl, title] : columns) {
            const Row* row = find_row(rows, group, impl);
            out << ' ' << (row != nullptr ? fixed(row->median, 2) : "—") << " |";
        }
        const Row* futura = find_row(rows, group, "futura_process");
        const Row* threads = find_row(rows, group, "futura_thread");
        const Row* python = best_python(rows, group);
        const auto ratio = [&](const Row* other) {
            return futura != nullptr && other != nullptr ? fixed(futura->median / other->median, 2)
                                                         : std::string("—");
        };
        out << ' ' << ratio(threads) << " | " << ratio(python) << " |\n";
    }
}

void print_table(std::ostream& out, const std::vector<Row>& rows, const Settings& s)
{
    out << "| workload | implementation | median | spread (min–max) | futura/peer |\n";
    out << "|---|---|---:|---:|---:|\n";
    for (const auto& group : groups(s)) {
        const Row* subject = find_row(rows, group.id, group.subject);
        const auto number = [&](double value) {
            return group.decimals == 0 ? grouped(value) : fixed(value, group.decimals);
        };
        // futura's rows first, in the order measured; then the peers'.
        for (const bool futura : {true, false}) {
            for (const auto& row : rows) {
                if (row.group != group.id || row.is_futura != futura || row.median <= 0) {
                    continue;
                }
                const std::string ratio = subject != nullptr && subject->median > 0
                                              ? fixed(subject->median / row.median, 2)
                                              : "—";
                out << "| " << group.title << " | " << row.label << " | " << number(row.median)
                    << " | " << number(row.min) << "–" << number(row.max) << " | " << ratio
                    << " |\n";
            }
        }
    }
    out << "\nWorkers: " << s.workers << " processes per pool (futura::available_cpus()).";
    if (s.runs("W4")) {
        out << " W4: median of " << s.reps << " repetitions, each in a fresh pool after "
            << grouped(s.w4_warmup) << " untimed tasks.";
    }
    if (s.runs("W5")) {
        out << " W5: " << grouped(s.w5_n) << " round trips in " << s.w5_rounds << " rounds of "
            << grouped(s.w5_n / s.w5_rounds) << ", each in a fresh pool after " << s.w5_warmup
            << " untimed ones; p50/p99 over all, spread over the rounds.";
    }
    if (s.runs("W3")) {
        out << " W3: median of " << s.w3_reps
            << " repetitions; each repetition runs each shape one after the other in-process and "
               "on a fresh pool of each kind (the order rotating), every pool's workers started "
               "and warmed up by 2 × workers trivial tasks before the clock starts (the Python "
               "peer's likewise); a speedup is that repetition's in-process time over the pool's "
               "time, from the first submit to the last result; CPUs kept busy are the workers' "
               "CPU time over that time (for process pools, reaped at shutdown, so with their "
               "start and warm-up).";
    }
    if (s.runs("W7")) {
        out << " W7: median of " << s.w7_reps << " fresh pools.";
    }
    out << " futura/peer divides the figure of the group's first futura row by the row's: "
           "above 1 is better for tasks/s and speedups, below 1 for µs, s and ms.\n";
    if (s.runs("W3")) {
        print_w3_summary(out, rows, s);
    }
}

void print_goals(std::ostream& out, const std::vector<Row>& rows, const Settings& s)
{
    const auto verdict = [](bool met) { return met ? "**met**" : "**not met**"; };
    const auto missing = [&](const std::string& goal) {
        out << "- " << goal << ": not measured in this run.\n";
    };
    out << "\nGoals of the issue, on this run:\n\n";

    if (const Row* futura = find_row(rows, "w4_submit", "futura_submit"),
        *python = find_row(rows, "w4_submit", "python_submit");
        futura != nullptr && python != nullptr) {
        const double ratio = futura->median / python->median;
        out << "- W4 submit ≥ 20× Python's ProcessPoolExecutor.submit (" << grouped(python->median)
            << " tasks/s): futura " << grouped(futura->median) << " tasks/s, " << fixed(ratio, 1)
            << "× — " << verdict(ratio >= 20) << ".\n";
    } else {
        missing("W4 submit ≥ 20× Python's ProcessPoolExecutor.submit");
    }
    // Issue 17: the goals against the floor.
    if (const Row* futura = find_row(rows, "w4_submit", "futura_submit")) {
        out << "- W4 submit ≥ 1,000,000 tasks/s: futura " << grouped(futura->median)
            << " tasks/s — " << verdict(futura->median >= 1e6);
        if (const Row* floor = find_row(rows, "w4_submit", "socket_batched")) {
            out << "; the bytes alone (" << floor->label << ") move " << grouped(floor->median)
                << " tasks/s, futura is " << fixed(futura->median / floor->median, 2) << "× that";
        }
        out << ".\n";
        if (const Row* python = find_row(rows, "w4_submit", "python_submit")) {
            const double ratio = futura->median / python->median;
            out << "- W4 submit ≥ 100× Python's ProcessPoolExecutor.submit: " << fixed(ratio, 1)
                << "× — " << verdict(ratio >= 100) << ".\n";
        } else {
            missing("W4 submit ≥ 100× Python's ProcessPoolExecutor.submit");
        }
    } else {
        missing("W4 submit ≥ 1,000,000 tasks/s");
    }

    for (const char* group : {"w4_map", "w4_map_big"}) {
        const Row* futura = find_row(rows, group, "futura_map_auto");
        const Row* best = nullptr; // Python's fastest map
        for (const auto& row : rows) {
            if (row.group == group && !row.is_futura && row.impl.starts_with("python") &&
                (best == nullptr || row.median > best->median)) {
                best = &row;
            }
        }
        const std::string goal =
            "W4 automatic map (N = " +
            grouped(std::string_view(group) == "w4_map" ? s.w4_n : s.w4_big_n) +
            ") at least as fast as Python's fastest map";
        if (futura == nullptr || best == nullptr) {
            missing(goal);
            continue;
        }
        const double ratio = futura->median / best->median;
        out << "- " << goal << " (" << best->label << ", " << grouped(best->median)
            << " tasks/s): futura " << grouped(futura->median) << " tasks/s, " << fixed(ratio, 2)
            << "× — " << verdict(ratio >= 1.0) << ".\n";
    }

    if (const Row* futura = find_row(rows, "w5_p50", "futura")) {
        const auto unsteady = [&](const Row& row) {
            return row.max > 2 * row.min ? " (unsteady: p50 ranged " + fixed(row.min, 1) + "–" +
                                               fixed(row.max, 1) + " µs across rounds)"
                                         : std::string();
        };
        if (const Row* pipe = find_row(rows, "w5_p50", "pipe_pinned")) {
            const double ratio = futura->median / pipe->median;
            out << "- W5 p50 ≤ 2× the bare pipe ping-pong (" << fixed(pipe->median, 1)
                << " µs, pinned): futura " << fixed(futura->median, 1) << " µs" << unsteady(*futura)
                << ", " << fixed(ratio, 2) << "× — " << verdict(ratio <= 2.0);
            // futura's processes are not pinned: the unpinned ping-pong runs as they do.
            if (const Row* unpinned = find_row(rows, "w5_p50", "pipe_unpinned")) {
                out << "; against the unpinned ping-pong (" << fixed(unpinned->median, 1)
                    << " µs), futura is " << fixed(futura->median / unpinned->median, 2) << "×";
            }
            out << ".\n";
        } else {
            missing("W5 p50 ≤ 2× the bare pipe ping-pong");
        }
        if (const Row* python = find_row(rows, "w5_p50", "python_roundtrip")) {
            const double ratio = futura->median / python->median;
            out << "- W5 p50 ≤ 0.5× Python's submit().result() (" << fixed(python->median, 1)
                << " µs): futura " << fixed(futura->median, 1) << " µs, " << fixed(ratio, 2)
                << "× — " << verdict(ratio <= 0.5) << ".\n";
        } else {
            missing("W5 p50 ≤ 0.5× Python's submit().result()");
        }
    } else {
        missing("W5 p50 goals");
    }

    if (s.runs("W3")) {
        for (const auto& shape : w3_shapes(s.w3_shapes)) {
            const std::string group = "w3_speedup_" + shape.id;
            const Row* futura = find_row(rows, group, "futura_process");
            const Row* threads = find_row(rows, group, "futura_thread");
            const Row* python = best_python(rows, group);
            if (futura == nullptr || threads == nullptr) {
                missing("W3 " + shape.name + ": process pool ≥ 0.97× the thread pool");
                continue;
            }
            const double to_threads = futura->median / threads->median;
            out << "- W3 " << shape.name << " (at most " << fixed(shape.bound(s.workers), 2)
                << "× on " << s.workers << " workers): futura's process pool "
                << fixed(futura->median, 2) << "× (spread " << fixed(futura->min, 2) << "–"
                << fixed(futura->max, 2) << "); ≥ 0.97× the thread pool's "
                << fixed(threads->median, 2) << "×: " << fixed(to_threads, 2) << " — "
                << verdict(to_threads >= 0.97);
            if (python != nullptr) {
                const double to_python = futura->median / python->median;
                out << "; ≥ Python's best (" << python->label << ", " << fixed(python->median, 2)
                    << "×): " << fixed(to_python, 2) << " — " << verdict(to_python >= 1.0);
            } else {
                out << "; against Python: not measured in this run";
            }
            if (const Row* cpus = find_row(rows, "w3_cpus_" + shape.id, "futura_process")) {
                out << "; its workers kept " << fixed(cpus->median, 2) << " CPUs busy";
            }
            out << ".\n";
        }
    } else {
        missing("W3 goals");
    }

    if (const Row* futura = find_row(rows, "w7_start", "futura_spawn"),
        *python = find_row(rows, "w7_start", "python_fork");
        futura != nullptr && python != nullptr) {
        const double ratio = futura->median / python->median;
        out << "- W7 spawn start to first result no slower than Python's fork context ("
            << fixed(python->median, 1) << " ms): futura " << fixed(futura->median, 1) << " ms, "
            << fixed(ratio, 2) << "× — " << verdict(ratio <= 1.0) << ".\n";
    } else {
        missing("W7 spawn no slower than Python's fork context");
    }
    if (const Row* futura = find_row(rows, "w7_start", "futura_spawn"),
        *floor = find_row(rows, "w7_start", "spawn_floor");
        futura != nullptr && floor != nullptr) {
        const double ratio = futura->median / floor->median;
        out << "- W7 spawn start to first result ≤ 3× a bare posix_spawn + exec of the same "
               "program to its first write ("
            << fixed(floor->median, 1) << " ms): futura " << fixed(futura->median, 1) << " ms, "
            << fixed(ratio, 2) << "× — " << verdict(ratio <= 3.0) << ".\n";
    } else {
        missing("W7 spawn ≤ 3× the bare spawn");
    }
}

// ---------------------------------------------------------------------------------------------
// Command line.

constexpr std::string_view usage = R"(usage: futura_bench_process_pool [--option=value ...]

  --workers=N         worker processes per pool (default: futura::available_cpus())
  --reps=N            W4 repetitions; the median is reported (default 5)
  --w4-n=N            W4 tasks for submit and map (default 20000)
  --w4-big-n=N        W4 tasks for the big automatic map (default 1000000)
  --w4-warmup=N       W4 untimed tasks in each fresh pool (default 1000)
  --w5-n=N            W5 timed round trips in all (default 2000)
  --w5-rounds=N       W5 rounds, each in a fresh pool (default 8)
  --w5-warmup=N       W5 untimed round trips per round (default 100)
  --w3-reps=N         W3 repetitions of every shape (default 5)
  --w3-shapes=LIST    some of uniform,short_long,heavy_tail,tiny_long (default: all)
  --w7-reps=N         W7 fresh pools per start method (default 11)
  --workloads=LIST    some of W4,W5,W3,W7 (default: all)
  --only=LIST         futura implementations: futura_submit, futura_map_1, futura_map_auto
                      (W4), futura (W5), futura_spawn, futura_fork and the floor spawn_floor
                      (W7); W3 always runs all
  --peer-results=LIST files of `result` lines (the Python peer's, the pipe ping-pong's) to
                      add to the table

Prints progress and futura's `result` lines on stderr, and the Markdown table with the goals on
stdout.
)";

Settings parse(int argc, char** argv)
{
    Settings s;
    const auto count = [](const std::string& value, const std::string& key) {
        return static_cast<int>(to_count(value, key));
    };
    for (const auto& [key, value] : options(argc, argv, usage)) {
        if (key == "help") {
            s.help = true;
        } else if (key == "workers") {
            s.workers = count(value, key);
        } else if (key == "reps") {
            s.reps = count(value, key);
        } else if (key == "w4-n") {
            s.w4_n = count(value, key);
        } else if (key == "w4-big-n") {
            s.w4_big_n = count(value, key);
        } else if (key == "w4-warmup") {
            s.w4_warmup = count(value, key);
        } else if (key == "w5-n") {
            s.w5_n = count(value, key);
        } else if (key == "w5-rounds") {
            s.w5_rounds = count(value, key);
        } else if (key == "w5-warmup") {
            s.w5_warmup = count(value, key);
        } else if (key == "w3-reps") {
            s.w3_reps = count(value, key);
        } else if (key == "w3-shapes") {
            s.w3_shapes = split(value);
            static_cast<void>(w3_shapes(s.w3_shapes)); // fails on an unknown one
        } else if (key == "w7-reps") {
            s.w7_reps = count(value, key);
        } else if (key == "workloads") {
            s.workloads = split(value);
            for (const auto& w : s.workloads) {
                if (w != "W3" && w != "W4" && w != "W5" && w != "W7") {
                    fail("unknown workload '" + w + "' (W3, W4, W5, W7)");
                }
            }
        } else if (key == "only") {
            s.only = split(value);
        } else if (key == "peer-results") {
            s.peer_results = split(value);
        } else {
            fail("unknown option '--" + key + "'\n" + std::string(usage));
        }
    }
    if (s.w5_n < s.w5_rounds) {
        fail("--w5-n must be at least --w5-rounds");
    }
    return s;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc == 2 && argv[1] == spawn_floor_argument) {
        return ::write(STDOUT_FILENO, "!", 1) == 1 ? 0 : 1;
    }
    try {
        const Settings s = parse(argc, argv);
        if (s.help) {
            std::cout << usage;
            return 0;
        }
        // Read first, so that a bad file fails the run before minutes of measuring.
        std::vector<Row> peers;
        for (const auto& path : s.peer_results) {
            auto more = read_rows(path);
            std::move(more.begin(), more.end(), std::back_inserter(peers));
        }
        if (s.runs("W3")) {
            check_w3_shapes(s.peer_results, w3_shapes(s.w3_shapes));
        }
        std::vector<Row> rows;
        if (s.runs("W4")) {
            measure_w4(s, rows);
        }
        if (s.runs("W5")) {
            measure_w5(s, rows);
        }
        if (s.runs("W3")) {
            measure_w3(s, rows);
        }
        if (s.runs("W7")) {
            measure_w7(s, rows);
        }
        for (const auto& row : rows) {
            print_row(std::cerr, row);
        }
        std::move(peers.begin(), peers.end(), std::back_inserter(rows));
        print_table(std::cout, rows, s);
        print_goals(std::cout, rows, s);
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "futura_bench_process_pool: " << e.what() << '\n';
        return 1;
    }
}
