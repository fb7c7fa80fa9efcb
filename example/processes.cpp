// The code of doc/process_pool.md: the same CPU-bound work run sequentially, on threads and on
// processes; then what crosses the process boundary, a crash, a time limit and a kill.
//
// The lines between `// [name]` and `// [name-end]` are shown in the docs verbatim
// (scripts/check-docs keeps them in sync). The program is a test: its exit status is 0 when the
// three runs agree and every check passed, 1 otherwise. About 0.2 s of work per run, so it stays
// fast in CI; the timings it prints are for reading, not checked.

#include <futura/futura.hpp>

#include <boost/serialization/string.hpp>
#include <boost/serialization/vector.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/resource.h>
#include <thread>
#include <tuple>
#include <vector>

using namespace std::chrono_literals;
using namespace std::string_literals;

namespace {

int failed_checks = 0;

void check(bool ok, const char* what)
{
    if (!ok) {
        std::cerr << "processes: check failed: " << what << '\n';
        ++failed_checks;
    }
}

void heading(const char* title) { std::cout << "\n== " << title << '\n'; }

// [count-primes]
// CPU-bound and data-dependent: larger numbers take longer, so equal pieces cost unequal time.
std::uint64_t count_primes(std::uint64_t begin, std::uint64_t end)
{
    std::uint64_t count = 0;
    for (std::uint64_t n = std::max<std::uint64_t>(begin, 2); n < end; ++n) {
        bool prime = true;
        for (std::uint64_t d = 2; d <= n / d; ++d) {
            if (n % d == 0) {
                prime = false;
                break;
            }
        }
        count += prime ? 1 : 0;
    }
    return count;
}
// [count-primes-end]

// [parallel]
// Written once, against the interface: the executor decides where the pieces run.
std::uint64_t count_primes_below(futura::Executor& executor, std::uint64_t limit,
                                 std::uint64_t pieces)
{
    std::vector<futura::Future<std::uint64_t>> counts;
    for (std::uint64_t i = 0; i < pieces; ++i) {
        counts.push_back(
            executor.submit(count_primes, limit * i / pieces, limit * (i + 1) / pieces));
    }
    std::uint64_t total = 0;
    for (const auto& count : counts) {
        total += count.result();
    }
    return total;
}
// [parallel-end]

/// Seconds since the last lap (or since construction).
class Stopwatch
{
public:
    double lap()
    {
        const auto now = std::chrono::steady_clock::now();
        const std::chrono::duration<double> elapsed = now - last_;
        last_ = now;
        return elapsed.count();
    }

private:
    std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

bool compare_executors()
{
    heading("the same work: sequentially, on threads, on processes");
    // [compare]
    const std::uint64_t limit = 400'000; // about 0.2 s of work on one core
    const std::uint64_t pieces = 32;     // more pieces than workers, so that uneven ones even out

    Stopwatch watch;
    const std::uint64_t sequential = count_primes(0, limit);
    const double sequential_seconds = watch.lap();

    futura::ThreadPoolExecutor threads;
    const std::uint64_t on_threads = count_primes_below(threads, limit, pieces);
    const double threads_seconds = watch.lap();

    futura::ProcessPoolExecutor processes; // the only change: another executor
    const std::uint64_t on_processes = count_primes_below(processes, limit, pieces);
    const double processes_seconds = watch.lap(); // including starting the worker processes

    std::cout << std::fixed << std::setprecision(3) << "primes below " << limit << ": "
              << sequential << " sequentially in " << sequential_seconds << " s, " << on_threads
              << " on " << threads.max_workers() << " threads in " << threads_seconds << " s, "
              << on_processes << " on " << processes.max_workers() << " processes in "
              << processes_seconds << " s\n";
    // [compare-end]
    const bool agree = on_threads == sequential && on_processes == sequential;
    if (!agree) {
        std::cerr << "processes: the three runs disagree: " << sequential << ", " << on_threads
                  << ", " << on_processes << '\n';
    }
    check(sequential == 33'860, "count_primes: pi(400000) = 33860");
    return agree;
}

// Not clang-formatted: it would take `archive & label` for a declaration.
// clang-format off
// [summary]
// A user type travels through Boost.Serialization: a serialize() is all it needs.
struct Summary
{
    std::string label;
    std::size_t count = 0;
    double mean = 0;
    std::vector<int> largest; // the three largest values, largest first

    template <class Archive>
    void serialize(Archive& archive, unsigned /*version*/)
    {
        archive & label & count & mean & largest;
    }
};
static_assert(futura::transferable<Summary>);
// [summary-end]
// clang-format on

// [summarize]
Summary summarize(std::string label, std::vector<int> values)
{
    Summary summary{std::move(label), values.size(), 0.0, {}};
    if (!values.empty()) {
        summary.mean =
            std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
    }
    std::ranges::sort(values, std::greater<>());
    values.resize(std::min<std::size_t>(values.size(), 3));
    summary.largest = std::move(values);
    return summary;
}

std::string describe(const Summary& summary)
{
    std::ostringstream text;
    text << summary.label << ": " << summary.count << " values, mean " << summary.mean
         << ", largest";
    for (const int value : summary.largest) {
        text << ' ' << value;
    }
    return std::move(text).str();
}
// [summarize-end]

void boundary()
{
    heading("what crosses the process boundary");
    // [boundary]
    futura::ProcessPoolExecutor pool{{.max_workers = 2}};
    // In: a std::string and a std::vector<int>. Out: a Summary, a struct with serialize().
    // ("samples" without the s would be a const char*, a pointer: it could not travel.)
    futura::Future<Summary> summary =
        pool.submit(summarize, "samples"s, std::vector<int>{4, 8, 15, 16, 23, 42});
    // The Summary goes to a worker again, and a std::string comes back.
    futura::Future<std::string> text = pool.submit(describe, summary.result());
    std::cout << text.result() << '\n'; // samples: 6 values, mean 18, largest 42 23 16
    // [boundary-end]
    check(text.result() == "samples: 6 values, mean 18, largest 42 23 16", "boundary: describe");
    check(summary.result().largest == std::vector<int>{42, 23, 16}, "boundary: summarize");

    // [not-transferable]
    futura::Executor& executor = pool; // the compiler no longer knows it is a process pool
    const int offset = 1;
    auto capturing = executor.submit([offset](int x) { return x + offset; }, 41);
    try {
        std::cout << capturing.result() << '\n';
    } catch (const std::invalid_argument& e) { // a capture cannot travel to another process
        std::cout << e.what() << '\n';
    }
    // [not-transferable-end]
    check(capturing.exception() != nullptr, "boundary: a capturing lambda fails its future");
}

// [fragile]
// Counts the primes of one piece of a range, but dies on a bad piece, as native code with a bug
// does: the whole process goes, not just the call.
std::uint64_t fragile_count(std::uint64_t piece)
{
    if (piece == 3) {
        std::fprintf(stderr, "fragile_count(%d): corrupted input, aborting\n",
                     static_cast<int>(piece));
        std::abort();
    }
    return count_primes(piece * 20'000, (piece + 1) * 20'000);
}
// [fragile-end]

void crash()
{
    heading("a crash fails only its own task");
    // [crash]
    futura::ProcessPoolExecutor pool{{.max_workers = 2}};
    std::vector<futura::Future<std::uint64_t>> futures;
    for (std::uint64_t piece = 0; piece < 6; ++piece) {
        futures.push_back(pool.submit(fragile_count, piece));
    }
    for (std::size_t piece = 0; piece < futures.size(); ++piece) {
        try {
            const std::uint64_t primes = futures[piece].result();
            std::cout << "piece " << piece << ": " << primes << " primes\n";
        } catch (const futura::WorkerCrashed& e) { // the worker died: which signal, and more
            std::cout << "piece " << piece << " crashed its worker: " << e.what() << '\n';
        }
    }
    // [crash-end]
    for (std::uint64_t piece = 0; piece < futures.size(); ++piece) {
        if (piece == 3) {
            bool crashed = false;
            try {
                futures[piece].result();
            } catch (const futura::WorkerCrashed& e) {
                crashed = std::string(e.what()).find("corrupted input") != std::string::npos;
            }
            check(crashed, "crash: piece 3 fails with WorkerCrashed and its last stderr line");
        } else {
            check(!futures[piece].exception() &&
                      futures[piece].result() == count_primes(piece * 20'000, (piece + 1) * 20'000),
                  "crash: the other pieces complete");
        }
    }
    check(pool.submit(fragile_count, 7).result() == count_primes(140'000, 160'000),
          "crash: the pool still works");
}

// [nap]
int nap(int milliseconds)
{
    std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
    return milliseconds;
}
// [nap-end]

void time_limit()
{
    heading("a time limit per task");
    // [timeout]
    futura::ProcessPoolExecutor pool{{.max_workers = 1, .task_timeout = 100ms}};
    auto stuck = pool.submit(nap, 60'000); // a minute, far over the limit
    auto quick = pool.submit(nap, 10);
    try {
        std::cout << stuck.result() << '\n';
    } catch (const futura::TimeoutError& e) { // its worker was killed at 100 ms
        std::cout << e.what() << '\n';
    }
    std::cout << quick.result() << '\n'; // 10: run by the worker that replaced it
    // [timeout-end]
    check(stuck.exception() != nullptr, "timeout: the stuck task fails");
    check(quick.result() == 10, "timeout: the next task runs");
}

void kill_running_task()
{
    heading("killing a running task");
    // [kill]
    futura::ProcessPoolExecutor pool{{.max_workers = 1}};
    auto job = pool.submit(nap, 60'000);
    std::this_thread::sleep_for(50ms);
    // cancel() would return false for a running task; kill() stops its worker.
    std::cout << "killed: " << pool.kill(job) << ", cancelled: " << job.cancelled() << '\n';
    std::cout << pool.submit(nap, 1).result() << '\n'; // 1: a new worker took over
    // [kill-end]
    check(job.cancelled(), "kill: the future is cancelled");
}

void options()
{
    heading("options");
    // [options]
    futura::ProcessPoolExecutor pool{{
        .max_workers = 2,                           // default: the CPUs this process may use
        .max_tasks_per_child = 100,                 // a new worker every 100 tasks; default: never
        .start_method = futura::StartMethod::spawn, // the default
        .task_timeout = 30s,                        // per task; default: none
        .environment = {{"LOG_LEVEL", "warn"}},     // on top of the parent's environment
        .working_directory = "/tmp",                // default: the parent's
        .inner_max_num_threads = 1,                 // OMP_NUM_THREADS and the like, per worker
    }};
    auto level = pool.submit([] {
        const char* value = std::getenv("LOG_LEVEL");
        return std::string(value != nullptr ? value : "");
    });
    std::cout << "LOG_LEVEL in a worker: " << level.result() << '\n'; // warn
    // [options-end]
    check(level.result() == "warn", "options: the environment reaches the workers");
    auto directory = pool.submit([] { return std::filesystem::current_path().string(); });
    check(directory.result() == "/tmp", "options: the working directory");
}

// [python-habits-tasks]
void tick(futura::SharedValue<long> calls, int /*x*/) { calls.fetch_add(1); } // returns nothing

double row_mean(futura::MappedArray<double> rows) // a block of rows, shape included
{
    double sum = 0;
    for (double x : rows) {
        sum += x;
    }
    return sum / static_cast<double>(rows.size());
}

double checked_sqrt(double x)
{
    if (x < 0) {
        throw std::domain_error("checked_sqrt of a negative number");
    }
    return std::sqrt(x);
}

// initializer=open_log, initargs=(prefix, workers): runs first in each worker.
std::string log_prefix;
void open_log(std::string prefix, futura::SharedValue<long> workers)
{
    log_prefix = std::move(prefix);
    workers.fetch_add(1);
}

// current_process().name and os.getpid(), as a task sees them.
std::string who_runs_me(int x)
{
    const auto worker = futura::current_worker(); // std::nullopt outside any worker
    return log_prefix + worker->name + " (pid " + std::to_string(worker->pid) + ") got " +
           std::to_string(x);
}
// [python-habits-tasks-end]

void python_habits()
{
    heading("Python habits");
    futura::ProcessPoolExecutor pool{{.max_workers = 2}};
    // [python-habits]
    // list(pool.map(f, xs)): the results in a std::vector, in one expression.
    std::vector<double> roots = pool.map(checked_sqrt, std::vector{1.0, 4.0, 9.0}).to_vector();

    // pool.starmap(tick, ...) of a function that returns nothing: one std::monostate per call.
    // 2,025 tuples hold one SharedValue: it travels once per chunk, whatever the chunk size.
    const futura::SharedValue<long> calls;
    std::vector<std::tuple<futura::SharedValue<long>, int>> inputs;
    for (int i = 0; i < 2025; ++i) {
        inputs.emplace_back(calls, i);
    }
    const auto done = pool.starmap(tick, inputs).to_vector();               // waits for every call
    std::cout << done.size() << " calls, counter " << calls.load() << '\n'; // 2025, 2025

    // joblib: dump(data, path), then load(path, mmap_mode="r+"); np.memmap's shape=(rows, cols)
    std::vector<double> data(6000, 1.0);
    const auto path = std::filesystem::temp_directory_path() / "futura-example-table.f64";
    const auto table = futura::MappedArray<double>::dump(path, data, 60); // 100 rows of 60
    table(0, 0) = 61.0;                                                   // table[0, 0] = 61
    const bool shared = futura::has_shareable_memory(table.row(0));       // joblib's check
    auto first_half = pool.submit(row_mean, table.rows(0, 50));           // table[:50]

    // A worker's exception keeps its type, and says where it was thrown.
    auto failed = pool.submit(checked_sqrt, -1.0);
    try {
        failed.result();
    } catch (const std::domain_error&) {
        std::cerr << futura::describe(std::current_exception()); // type, message, worker's stack
    }

    // ProcessPoolExecutor(initializer=open_log, initargs=("[app] ", workers))
    const futura::SharedValue<long> workers;
    futura::ProcessPoolExecutor logged{
        {.max_workers = 2, .initializer = open_log, .initargs = std::tuple{"[app] ", workers}}};
    const std::string line = logged.submit(who_runs_me, 7).result();
    std::cout << line << '\n'; // [app] futura-worker-0 (pid 12345) got 7
    // [python-habits-end]
    check(roots == std::vector{1.0, 2.0, 3.0}, "habits: to_vector");
    check(done.size() == 2025 && calls.load() == 2025, "habits: starmap of a void function");
    check(shared, "habits: a mapped file is shareable memory");
    check(first_half.result() == (3000.0 + 60.0) / 3000.0, "habits: a block of rows");
    check(futura::remote_stack_trace(failed.exception()).has_value(), "habits: remote trace");
    check(line.starts_with("[app] futura-worker-") && workers.load() >= 1,
          "habits: initargs and current_worker");
    std::filesystem::remove(path);
}

} // namespace

int main()
{
    // The crash below is deliberate: no core file for it (workers inherit this limit).
    const rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    std::cout << std::boolalpha;
    bool agree = false;
    try {
        agree = compare_executors();
        boundary();
        crash();
        time_limit();
        kill_running_task();
        options();
        python_habits();
    } catch (const std::exception& e) {
        std::cerr << "processes: unexpected exception: " << e.what() << '\n';
        return 1;
    }
    if (!agree || failed_checks != 0) {
        std::cerr << "processes: " << failed_checks << " check(s) failed"
                  << (agree ? "" : "; the runs disagree") << '\n';
        return 1;
    }
    std::cout << "\nprocesses: all checks passed\n";
    return 0;
}
