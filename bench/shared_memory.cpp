// W6: a large int64 array (default 400 MB) sent to one worker process that doubles it, and back.
// Wall time of the round trip and peak memory of the whole process tree, for futura's three
// ways (SharedArray, automatic sharing of a std::vector, the copy through the channel with
// sharing off), the same work in one process, a bare memcpy into fresh memory (the floor of any
// copy), and Python's (bench/peers/shared_memory.py): ProcessPoolExecutor pickling numpy,
// multiprocessing.shared_memory, joblib's automatic memmapping.
//
// Each repetition of each variant runs in a fresh process (this program with --variant=NAME,
// or the Python peer), so that every peak is its own. That process creates the data, starts
// and warms up its pool, times the round trip, checks every element, and prints `seconds=S`.
// Meanwhile this harness samples, every 5 ms, /proc/PID/smaps_rollup of the process and
// of all its descendants, and keeps the peak of two sums:
//   - Pss: each page counted once, shared pages split between the processes mapping them: the
//     physical memory the tree uses (the figure the goals are about);
//   - Rss: shared pages counted in every process that maps them (what `ps` and ru_maxrss show).
// The data size is 10^6 * --mb bytes.
#include <futura/process_pool_executor.hpp>
#include <futura/shared_array.hpp>
#include <futura/shared_vector.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <numeric>
#include <optional>
#include <poll.h>
#include <spawn.h>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "harness.hpp"

extern char** environ;

namespace {

using namespace futura_bench;

constexpr std::string_view usage =
    "usage: futura_bench_shared_memory [--mb=400] [--w6b-mb=800] [--reps=3]\n"
    "                                  [--python-list-divisor=10] [--python=/usr/bin/python3]\n"
    "                                  [--peer=bench/peers/shared_memory.py]";

// ---- the variants, each run in a process of its own ------------------------------------------

void noop() {}

void double_shared(futura::SharedArray<std::int64_t> data)
{
    for (auto& x : data) {
        x *= 2;
    }
}

std::vector<std::int64_t> doubled(std::vector<std::int64_t> data)
{
    for (auto& x : data) {
        x *= 2;
    }
    return data;
}

template <class Range>
void check_doubled(const Range& data, std::size_t n)
{
    if (data.size() != n) {
        fail("wrong result size");
    }
    for (std::size_t i = 0; i < n; ++i) {
        if (data[i] != 2 * static_cast<std::int64_t>(i)) {
            fail("wrong result at " + std::to_string(i));
        }
    }
}

void double_vector(futura::SharedVector<std::int64_t> data)
{
    for (auto& x : data) {
        x *= 2;
    }
}

double run_shared_vector(std::size_t n)
{
    futura::SharedVector<std::int64_t> data;
    data.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        data.push_back(static_cast<std::int64_t>(i));
    }
    futura::ProcessPoolExecutor pool{{.max_workers = 1}};
    pool.submit(noop).result();
    const auto start = Clock::now();
    pool.submit(double_vector, data).result();
    const double seconds = seconds_since(start);
    check_doubled(data, n);
    return seconds;
}

double run_shared_array(std::size_t n)
{
    const futura::SharedArray<std::int64_t> data(n);
    std::iota(data.begin(), data.end(), std::int64_t{0});
    futura::ProcessPoolExecutor pool{{.max_workers = 1}};
    pool.submit(noop).result();
    const auto start = Clock::now();
    pool.submit(double_shared, data).result();
    const double seconds = seconds_since(start);
    check_doubled(data, n);
    return seconds;
}

// The vector is moved into the task: submit decay-copies its arguments, and a caller who cares
// about 400 MB does not want a copy made before the encoding even starts.
double run_vector(std::size_t n, std::size_t share_threshold)
{
    std::vector<std::int64_t> data(n);
    std::iota(data.begin(), data.end(), std::int64_t{0});
    futura::ProcessPoolExecutor pool{{.max_workers = 1, .share_threshold = share_threshold}};
    pool.submit(noop).result();
    const auto start = Clock::now();
    const auto result = pool.submit(doubled, std::move(data)).result();
    const double seconds = seconds_since(start);
    check_doubled(result, n);
    return seconds;
}

// The same vector as an lvalue: submit keeps a copy of it in the task, which is what the
// parent's peak memory shows.
double run_vector_lvalue(std::size_t n)
{
    std::vector<std::int64_t> data(n);
    std::iota(data.begin(), data.end(), std::int64_t{0});
    futura::ProcessPoolExecutor pool{{.max_workers = 1}};
    pool.submit(noop).result();
    const auto start = Clock::now();
    const auto result = pool.submit(doubled, data).result();
    const double seconds = seconds_since(start);
    check_doubled(result, n);
    return seconds;
}

// A second round trip of the same size in the same pool, with a cache large enough for it: the
// segments' pages are warm (the pool's for the argument, the worker's for the result).
double run_vector_warm(std::size_t n)
{
    std::vector<std::int64_t> data(n);
    std::iota(data.begin(), data.end(), std::int64_t{0});
    futura::ProcessPoolExecutor pool{
        {.max_workers = 1, .segment_cache_bytes = 2 * n * sizeof(std::int64_t) + (1 << 20)}};
    pool.submit(noop).result();
    auto first = pool.submit(doubled, data).result(); // warms both caches
    first.clear();
    first.shrink_to_fit();
    const auto start = Clock::now();
    const auto result = pool.submit(doubled, std::move(data)).result();
    const double seconds = seconds_since(start);
    check_doubled(result, n);
    return seconds;
}

double run_memcpy_warm(std::size_t n)
{
    std::vector<std::int64_t> data(n);
    std::iota(data.begin(), data.end(), std::int64_t{0});
    std::vector<std::int64_t> copy(n, 1); // touched: a warm destination
    const auto start = Clock::now();
    std::memcpy(copy.data(), data.data(), n * sizeof(std::int64_t));
    const double seconds = seconds_since(start);
    if (copy[n - 1] != static_cast<std::int64_t>(n - 1)) {
        fail("wrong copy");
    }
    return seconds;
}

double run_in_process(std::size_t n)
{
    std::vector<std::int64_t> data(n);
    std::iota(data.begin(), data.end(), std::int64_t{0});
    const auto start = Clock::now();
    for (auto& x : data) {
        x *= 2;
    }
    const double seconds = seconds_since(start);
    check_doubled(data, n);
    return seconds;
}

double run_memcpy(std::size_t n)
{
    std::vector<std::int64_t> data(n);
    std::iota(data.begin(), data.end(), std::int64_t{0});
    const auto start = Clock::now();
    // Fresh memory, as a receiver's: its page faults are part of any copy into new memory.
    const std::unique_ptr<std::int64_t[]> copy(new std::int64_t[n]);
    std::memcpy(copy.get(), data.data(), n * sizeof(std::int64_t));
    const double seconds = seconds_since(start);
    if (copy[n - 1] != static_cast<std::int64_t>(n - 1)) {
        fail("wrong copy");
    }
    return seconds;
}

int run_variant(const std::string& variant, std::size_t n)
{
    double seconds = 0;
    if (variant == "shared_array") {
        seconds = run_shared_array(n);
    } else if (variant == "auto_vector") {
        seconds = run_vector(n, futura::ProcessPoolOptions{}.share_threshold);
    } else if (variant == "copy_vector") {
        seconds = run_vector(n, 0);
    } else if (variant == "auto_vector_lvalue") {
        seconds = run_vector_lvalue(n);
    } else if (variant == "auto_vector_warm") {
        seconds = run_vector_warm(n);
    } else if (variant == "memcpy_warm") {
        seconds = run_memcpy_warm(n);
    } else if (variant == "shared_vector") {
        seconds = run_shared_vector(n);
    } else if (variant == "in_process") {
        seconds = run_in_process(n);
    } else if (variant == "memcpy") {
        seconds = run_memcpy(n);
    } else {
        fail("unknown variant " + variant);
    }
    // Minor page faults of this process and of its workers (reaped by the pool's destructor).
    rusage self{};
    rusage children{};
    ::getrusage(RUSAGE_SELF, &self);
    ::getrusage(RUSAGE_CHILDREN, &children);
    std::printf("seconds=%.9f\nfaults=%ld\n", seconds, self.ru_minflt + children.ru_minflt);
    return 0;
}

// ---- the harness: one child per measurement, its tree's memory sampled from /proc ------------

struct Memory
{
    long long pss_kb = 0;
    long long rss_kb = 0;
    long long private_kb = 0; // Pss_Anon + Pss_File: the tree's own memory, shared memory aside
};

void add_tree(int pid, Memory& total)
{
    std::ifstream rollup("/proc/" + std::to_string(pid) + "/smaps_rollup");
    std::string key;
    long long value = 0;
    std::string unit;
    while (rollup >> key) {
        if (key == "Rss:" && rollup >> value >> unit) {
            total.rss_kb += value;
        } else if (key == "Pss:" && rollup >> value >> unit) {
            total.pss_kb += value;
        } else if ((key == "Pss_Anon:" || key == "Pss_File:") && rollup >> value >> unit) {
            total.private_kb += value;
        }
    }
    std::error_code ec;
    for (const auto& task :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
        std::ifstream children(task.path() / "children");
        int child = 0;
        while (children >> child) {
            add_tree(child, total);
        }
    }
}

/// "Shmem:" of /proc/meminfo, in kB: all shared memory of the machine, mapped or not. A memfd
/// segment that no process maps (a vector in flight, a cached segment) is in no PSS, but here.
long long shmem_kb()
{
    std::ifstream meminfo("/proc/meminfo");
    std::string key;
    long long value = 0;
    std::string unit;
    while (meminfo >> key >> value >> unit) {
        if (key == "Shmem:") {
            return value;
        }
    }
    return 0;
}

struct Measurement
{
    double seconds = 0;
    long long faults = 0;
    Memory peak;
    long long peak_total_kb = 0; // Pss_Anon + Pss_File of the tree + the growth of Shmem
};

Measurement measure(std::vector<std::string> command)
{
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
        fail("pipe2 failed");
    }
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    std::vector<char*> argv;
    for (auto& word : command) {
        argv.push_back(word.data());
    }
    argv.push_back(nullptr);
    const long long shmem_before = shmem_kb();
    pid_t pid = -1;
    const int error = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    if (error != 0) {
        ::close(out[0]);
        fail("cannot start " + command[0] + ": " + std::strerror(error));
    }
    Measurement measurement;
    std::string text;
    for (bool open = true; open;) {
        Memory now;
        add_tree(pid, now);
        measurement.peak.pss_kb = std::max(measurement.peak.pss_kb, now.pss_kb);
        measurement.peak.rss_kb = std::max(measurement.peak.rss_kb, now.rss_kb);
        measurement.peak_total_kb = std::max(
            measurement.peak_total_kb, now.private_kb + std::max(0LL, shmem_kb() - shmem_before));
        pollfd ready{out[0], POLLIN, 0};
        // 5 ms: every peak here lasts far longer, and the sampler must not take much of a CPU
        // from the tree it measures (reading smaps_rollup walks a process's page tables).
        if (::poll(&ready, 1, 5) > 0) {
            char buffer[512];
            const auto got = ::read(out[0], buffer, sizeof buffer);
            open = got > 0;
            if (got > 0) {
                text.append(buffer, static_cast<std::size_t>(got));
            }
        }
    }
    ::close(out[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    const auto at = text.find("seconds=");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || at == std::string::npos) {
        fail(command[0] + " " + command.back() + " failed: " + text);
    }
    measurement.seconds = std::stod(text.substr(at + 8));
    if (const auto faults = text.find("faults="); faults != std::string::npos) {
        measurement.faults = std::stoll(text.substr(faults + 7));
    }
    return measurement;
}

struct Variant
{
    std::string id;
    std::string label;
    bool is_futura;
    bool python;
    std::vector<Measurement> runs;
    long long mb = 0; // the data size this variant ran with (Python's list may be smaller)
};

std::string megabytes(double kb) { return grouped(kb * 1024 / 1e6) + " MB"; }

struct Settings
{
    std::string self;
    std::string python;
    std::string peer;
    long long reps = 3;
};

/// Runs every variant `reps` times, interleaved (a slow phase of the machine spreads over all
/// variants), each in a fresh process tree.
void run_all(const Settings& settings, std::vector<Variant>& variants, const char* name)
{
    for (long long rep = 0; rep < settings.reps; ++rep) {
        for (auto& variant : variants) {
            std::cerr << name << " rep " << rep + 1 << "/" << settings.reps << ": " << variant.id
                      << "\n";
            std::vector<std::string> command =
                variant.python
                    ? std::vector<std::string>{settings.python, settings.peer,
                                               "--mb=" + std::to_string(variant.mb),
                                               "--variant=" + variant.id}
                    : std::vector<std::string>{settings.self, "--mb=" + std::to_string(variant.mb),
                                               "--variant=" + variant.id};
            variant.runs.push_back(measure(command));
        }
    }
}

std::vector<double> seconds_of(const Variant& variant)
{
    std::vector<double> values;
    for (const auto& run : variant.runs) {
        values.push_back(run.seconds);
    }
    return values;
}

double median_of(const Variant& variant, long long Measurement::*field)
{
    std::vector<double> values;
    for (const auto& run : variant.runs) {
        values.push_back(static_cast<double>(run.*field));
    }
    return median(values);
}

double peak_of(const Variant& variant, bool pss)
{
    std::vector<double> values;
    for (const auto& run : variant.runs) {
        values.push_back(static_cast<double>(pss ? run.peak.pss_kb : run.peak.rss_kb));
    }
    return median(values);
}

const Variant& find(const std::vector<Variant>& variants, std::string_view id)
{
    for (const auto& variant : variants) {
        if (variant.id == id) {
            return variant;
        }
    }
    fail("no variant " + std::string(id));
}

const char* ok(bool met) { return met ? "met" : "**not met**"; }

void print_w6(const std::vector<Variant>& variants, long long mb, long long reps)
{
    const double data_kb = static_cast<double>(mb) * 1e6 / 1024;
    const auto s = [&](std::string_view id) { return median(seconds_of(find(variants, id))); };
    const double shared_array_s = s("shared_array");

    std::cout << "W6: a " << mb << " MB array of int64 sent to one worker process that doubles "
              << "it, and back; median of " << reps << " repetitions (each in a fresh process "
              << "tree), min–max in brackets. Peak memory of the whole tree, sampled every "
              << "5 ms from /proc/PID/smaps_rollup of every process in it: PSS (shared "
              << "pages counted once: the physical memory used) and RSS (shared pages counted in "
              << "each process that maps them).\n\n";
    std::cout << "| implementation | round trip | vs SharedArray | peak PSS of the tree | "
                 "× data | peak RSS, summed |\n";
    std::cout << "| --- | ---: | ---: | ---: | ---: | ---: |\n";
    for (const auto& variant : variants) {
        const auto values = seconds_of(variant);
        const auto row = summarise("w6", variant.id, variant.label, 1, values);
        const double pss = peak_of(variant, true);
        std::cout << "| " << (variant.is_futura ? "**" + variant.label + "**" : variant.label)
                  << " | " << fixed(row.median * 1e3, 1) << " ms (" << fixed(row.min * 1e3, 1)
                  << "–" << fixed(row.max * 1e3, 1) << ") | "
                  << fixed(row.median / shared_array_s, 1) << "× | " << megabytes(pss) << " | "
                  << fixed(pss / data_kb, 2) << "× | " << megabytes(peak_of(variant, false))
                  << " |\n";
    }
    std::cout << "\nWhere it goes: minor page faults of the whole tree (getrusage of each "
                 "variant's process and its reaped workers; Python's are not counted), and the "
                 "peak of the tree's own memory plus all shared memory it made, mapped or not "
                 "(Pss_Anon + Pss_File of the tree, plus the growth of Shmem in /proc/meminfo: "
                 "a segment in flight or in a cache is in no PSS).\n\n";
    std::cout << "| variant | minor page faults | pages of the data | peak memory incl. "
                 "unmapped shared memory | × data |\n";
    std::cout << "| --- | ---: | ---: | ---: | ---: |\n";
    const double pages = static_cast<double>(mb) * 1e6 / 4096;
    for (const auto& variant : variants) {
        const double total = median_of(variant, &Measurement::peak_total_kb);
        std::cout << "| " << variant.label << " | "
                  << (variant.python ? std::string("–")
                                     : grouped(median_of(variant, &Measurement::faults)))
                  << " | "
                  << (variant.python
                          ? std::string("–")
                          : fixed(median_of(variant, &Measurement::faults) / pages, 1) + "×")
                  << " | " << megabytes(total) << " | " << fixed(total / data_kb, 2) << "× |\n";
    }
    std::cout << "\nGoals (ratios in this run):\n\n";
    std::cout << "- SharedArray no slower than Python's shared_memory: "
              << fixed(s("shared_array") * 1e3, 1) << " ms vs "
              << fixed(s("shared_memory") * 1e3, 1) << " ms, "
              << fixed(s("shared_array") / s("shared_memory"), 2) << "× (issue 13: ≤ 1.05×), "
              << ok(s("shared_array") <= 1.05 * s("shared_memory")) << ".\n";
    std::cout << "- Automatic sharing ≤ 1.5× a memcpy into fresh memory (issue 13): "
              << fixed(s("auto_vector") * 1e3, 0) << " ms vs " << fixed(s("memcpy") * 1e3, 0)
              << " ms, " << fixed(s("auto_vector") / s("memcpy"), 1) << "×, "
              << ok(s("auto_vector") <= 1.5 * s("memcpy")) << ".\n";
    std::cout << "- Repeated automatic sharing (warm segments) ≤ 1.5× a warm memcpy: "
              << fixed(s("auto_vector_warm") * 1e3, 0) << " ms vs "
              << fixed(s("memcpy_warm") * 1e3, 0) << " ms, "
              << fixed(s("auto_vector_warm") / s("memcpy_warm"), 1) << "×, "
              << ok(s("auto_vector_warm") <= 1.5 * s("memcpy_warm")) << ".\n";
    std::cout << "- The copy path ≤ 3× a memcpy into fresh memory: "
              << fixed(s("copy_vector") * 1e3, 0) << " ms vs " << fixed(s("memcpy") * 1e3, 0)
              << " ms, " << fixed(s("copy_vector") / s("memcpy"), 1) << "×, "
              << ok(s("copy_vector") <= 3 * s("memcpy")) << ".\n";
    const auto total = [&](std::string_view id) {
        return median_of(find(variants, id), &Measurement::peak_total_kb) / data_kb;
    };
    std::cout << "- Peak memory incl. unmapped shared memory: SharedArray "
              << fixed(total("shared_array"), 2)
              << "× (≤ 1.1×: " << ok(total("shared_array") <= 1.1) << "), automatic sharing "
              << fixed(total("auto_vector"), 2) << "× (≤ 2.1×: " << ok(total("auto_vector") <= 2.1)
              << "); Python pickling " << fixed(total("pickle"), 2) << "×.\n";
    std::cout << "- At least 50× faster than Python's pickling: SharedArray "
              << fixed(s("pickle") / s("shared_array"), 0) << "×, automatic sharing "
              << fixed(s("pickle") / s("auto_vector"), 0) << "×.\n";
}

void print_w6b(const std::vector<Variant>& variants, long long mb, long long reps)
{
    const double data_kb = static_cast<double>(mb) * 1e6 / 1024;
    const auto s = [&](std::string_view id) { return median(seconds_of(find(variants, id))); };
    const auto total = [&](std::string_view id) {
        return median_of(find(variants, id), &Measurement::peak_total_kb);
    };
    std::cout << "\nW6b, the posts' own case: " << mb / 8 << " M int64 values (" << mb
              << " MB) doubled in one worker process and returned; median of " << reps
              << " repetitions, each in a fresh process tree. Peak memory of the whole tree: "
                 "Pss_Anon + Pss_File of every process in it plus the growth of the machine's "
                 "Shmem (shared memory counted once, mapped or not), sampled every 5 ms.\n\n";
    std::cout << "| W6b implementation | data | round trip | vs in one process | peak memory "
                 "of the tree | × data | minor page faults |\n";
    std::cout << "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n";
    for (const auto& variant : variants) {
        const auto values = seconds_of(variant);
        const auto row = summarise("w6b", variant.id, variant.label, 1, values);
        const double variant_kb = static_cast<double>(variant.mb) * 1e6 / 1024;
        std::cout << "| " << (variant.is_futura ? "**" + variant.label + "**" : variant.label)
                  << " | " << variant.mb << " MB | " << fixed(row.median, 2) << " s ("
                  << fixed(row.min, 2) << "–" << fixed(row.max, 2) << ") | "
                  << fixed(row.median / s("in_process"), 1) << "× | "
                  << megabytes(total(variant.id)) << " | "
                  << fixed(total(variant.id) / variant_kb, 2) << "× | "
                  << (variant.python ? std::string("–")
                                     : grouped(median_of(variant, &Measurement::faults)))
                  << " |\n";
    }
    std::cout << "\nW6b goals (ratios in this run):\n\n";
    std::cout << "- SharedVector ≤ 1.05× Python's shared_memory: " << fixed(s("shared_vector"), 3)
              << " s vs " << fixed(s("shared_memory"), 3) << " s, "
              << fixed(s("shared_vector") / s("shared_memory"), 2) << "×, "
              << ok(s("shared_vector") <= 1.05 * s("shared_memory")) << "; SharedArray "
              << fixed(s("shared_array") / s("shared_memory"), 2) << "×, "
              << ok(s("shared_array") <= 1.05 * s("shared_memory")) << ".\n";
    std::cout << "- Automatic sharing ≤ 1.5× a memcpy into fresh memory: "
              << fixed(s("auto_vector") / s("memcpy"), 1) << "×, "
              << ok(s("auto_vector") <= 1.5 * s("memcpy"))
              << "; sharing off ≤ 3×: " << fixed(s("copy_vector") / s("memcpy"), 1) << "×, "
              << ok(s("copy_vector") <= 3 * s("memcpy")) << ".\n";
    std::cout << "- Peak memory: automatic sharing " << fixed(total("auto_vector") / data_kb, 2)
              << "× the data (≤ 2.1×: " << ok(total("auto_vector") <= 2.1 * data_kb)
              << "), passed as an lvalue " << fixed(total("auto_vector_lvalue") / data_kb, 2)
              << "×; SharedArray " << fixed(total("shared_array") / data_kb, 2)
              << "×, SharedVector " << fixed(total("shared_vector") / data_kb, 2) << "× (≤ 1.1×: "
              << ok(std::max(total("shared_array"), total("shared_vector")) <= 1.1 * data_kb)
              << ").\n";
    const auto& pool_map = find(variants, "pool_map_list");
    std::cout
        << "- Python's Pool.map of a list ran on " << pool_map.mb / 8 << " M values (a list of "
        << mb / 8 << " M Python ints is too slow and too large for this machine's runs): "
        << fixed(s("pool_map_list"), 2) << " s, "
        << fixed(s("pool_map_list") * static_cast<double>(mb) / static_cast<double>(pool_map.mb), 1)
        << " s scaled linearly to " << mb / 8 << " M, against automatic sharing's "
        << fixed(s("auto_vector"), 2) << " s.\n";
}

int run_harness(const std::vector<std::pair<std::string, std::string>>& parsed)
{
    long long mb = 400;
    long long w6b_mb = 800;
    long long list_divisor = 10;
    Settings settings{std::filesystem::read_symlink("/proc/self/exe").string(), "/usr/bin/python3",
                      "bench/peers/shared_memory.py", 3};
    for (const auto& [key, value] : parsed) {
        if (key == "mb") {
            mb = to_count(value, key);
        } else if (key == "w6b-mb") {
            w6b_mb = to_count(value, key);
        } else if (key == "python-list-divisor") {
            list_divisor = to_count(value, key);
        } else if (key == "reps") {
            settings.reps = to_count(value, key);
        } else if (key == "python") {
            settings.python = value;
        } else if (key == "peer") {
            settings.peer = value;
        } else {
            fail("unknown option --" + key + "\n" + std::string(usage));
        }
    }
    std::vector<Variant> w6{
        {"shared_array", "futura SharedArray (a handle)", true, false, {}, mb},
        {"auto_vector",
         "futura std::vector, automatic sharing (1 MiB threshold)",
         true,
         false,
         {},
         mb},
        {"auto_vector_warm",
         "futura std::vector, automatic sharing, repeated (warm cached segments)",
         true,
         false,
         {},
         mb},
        {"copy_vector",
         "futura std::vector, sharing off (copied through the socket)",
         true,
         false,
         {},
         mb},
        {"in_process", "the same doubling in one process (no transfer)", false, false, {}, mb},
        {"memcpy",
         "bare memcpy into fresh memory (one copy, the floor of any copy)",
         false,
         false,
         {},
         mb},
        {"memcpy_warm", "bare memcpy into memory already touched", false, false, {}, mb},
        {"pickle", "Python ProcessPoolExecutor, pickling numpy", false, true, {}, mb},
        {"shared_memory", "Python multiprocessing.shared_memory", false, true, {}, mb},
        {"joblib", "Python joblib, automatic memmapping", false, true, {}, mb},
    };
    run_all(settings, w6, "W6");
    print_w6(w6, mb, settings.reps);

    std::vector<Variant> w6b{
        {"in_process", "in one process (no transfer)", false, false, {}, w6b_mb},
        {"memcpy", "bare memcpy into fresh memory", false, false, {}, w6b_mb},
        {"auto_vector", "futura std::vector moved in, automatic sharing", true, false, {}, w6b_mb},
        {"auto_vector_lvalue",
         "futura std::vector passed as an lvalue, automatic sharing",
         true,
         false,
         {},
         w6b_mb},
        {"copy_vector", "futura std::vector, sharing off", true, false, {}, w6b_mb},
        {"shared_array", "futura SharedArray", true, false, {}, w6b_mb},
        {"shared_vector", "futura SharedVector", true, false, {}, w6b_mb},
        {"shared_memory", "Python multiprocessing.shared_memory (numpy)", false, true, {}, w6b_mb},
        {"pool_map_list",
         "Python multiprocessing.Pool.map of a list",
         false,
         true,
         {},
         std::max(8LL, w6b_mb / list_divisor)},
    };
    run_all(settings, w6b, "W6b");
    print_w6b(w6b, w6b_mb, settings.reps);
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    try {
        const auto parsed = options(argc, argv, usage);
        std::optional<std::string> variant;
        long long mb = 400;
        for (const auto& [key, value] : parsed) {
            if (key == "help") {
                std::cout << usage << "\n";
                return 0;
            }
            if (key == "variant") {
                variant = value;
            } else if (key == "mb") {
                mb = to_count(value, key);
            }
        }
        if (variant) {
            return run_variant(*variant, static_cast<std::size_t>(mb) * 1'000'000 / 8);
        }
        return run_harness(parsed);
    } catch (const std::exception& e) {
        std::cerr << "futura_bench_shared_memory: " << e.what() << "\n";
        return 1;
    }
}
