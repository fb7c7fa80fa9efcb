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
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "harness.hpp"

extern char** environ;

namespace {

using namespace futura_bench;

constexpr std::string_view usage =
    "usage: futura_bench_shared_memory [--mb=400] [--reps=3] [--python=/usr/bin/python3]\n"
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
    } else if (variant == "in_process") {
        seconds = run_in_process(n);
    } else if (variant == "memcpy") {
        seconds = run_memcpy(n);
    } else {
        fail("unknown variant " + variant);
    }
    std::printf("seconds=%.9f\n", seconds);
    return 0;
}

// ---- the harness: one child per measurement, its tree's memory sampled from /proc ------------

struct Memory
{
    long long pss_kb = 0;
    long long rss_kb = 0;
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

struct Measurement
{
    double seconds = 0;
    Memory peak;
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
    return measurement;
}

struct Variant
{
    std::string id;
    std::string label;
    bool is_futura;
    bool python;
    std::vector<Measurement> runs;
};

std::string megabytes(double kb) { return grouped(kb * 1024 / 1e6) + " MB"; }

int run_harness(const std::vector<std::pair<std::string, std::string>>& parsed)
{
    long long mb = 400;
    long long reps = 3;
    std::string python = "/usr/bin/python3";
    std::string peer = "bench/peers/shared_memory.py";
    for (const auto& [key, value] : parsed) {
        if (key == "mb") {
            mb = to_count(value, key);
        } else if (key == "reps") {
            reps = to_count(value, key);
        } else if (key == "python") {
            python = value;
        } else if (key == "peer") {
            peer = value;
        } else {
            fail("unknown option --" + key + "\n" + std::string(usage));
        }
    }
    const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    std::vector<Variant> variants{
        {"shared_array", "futura SharedArray (a handle)", true, false, {}},
        {"auto_vector", "futura std::vector, automatic sharing (1 MiB threshold)", true, false, {}},
        {"copy_vector",
         "futura std::vector, sharing off (copied through the socket)",
         true,
         false,
         {}},
        {"in_process", "the same doubling in one process (no transfer)", false, false, {}},
        {"memcpy",
         "bare memcpy into fresh memory (one copy, the floor of any copy)",
         false,
         false,
         {}},
        {"pickle", "Python ProcessPoolExecutor, pickling numpy", false, true, {}},
        {"shared_memory", "Python multiprocessing.shared_memory", false, true, {}},
        {"joblib", "Python joblib, automatic memmapping", false, true, {}},
    };
    // Interleaved repetitions: a slow phase of the machine spreads over all variants.
    for (long long rep = 0; rep < reps; ++rep) {
        for (auto& variant : variants) {
            std::cerr << "W6 rep " << rep + 1 << "/" << reps << ": " << variant.id << "\n";
            std::vector<std::string> command =
                variant.python
                    ? std::vector<std::string>{python, peer, "--mb=" + std::to_string(mb),
                                               "--variant=" + variant.id}
                    : std::vector<std::string>{self, "--mb=" + std::to_string(mb),
                                               "--variant=" + variant.id};
            variant.runs.push_back(measure(command));
        }
    }
    const auto seconds_of = [](const Variant& variant) {
        std::vector<double> values;
        for (const auto& run : variant.runs) {
            values.push_back(run.seconds);
        }
        return values;
    };
    const auto peak_of = [](const Variant& variant, bool pss) {
        std::vector<double> values;
        for (const auto& run : variant.runs) {
            values.push_back(static_cast<double>(pss ? run.peak.pss_kb : run.peak.rss_kb));
        }
        return median(values);
    };
    const double data_kb = static_cast<double>(mb) * 1e6 / 1024;
    const auto find = [&](std::string_view id) -> const Variant& {
        for (const auto& variant : variants) {
            if (variant.id == id) {
                return variant;
            }
        }
        fail("no variant " + std::string(id));
    };
    const double shared_array_s = median(seconds_of(find("shared_array")));

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
    const auto s = [&](std::string_view id) { return median(seconds_of(find(id))); };
    const auto ok = [](bool met) { return met ? "met" : "**not met**"; };
    std::cout << "\nGoals (ratios in this run):\n\n";
    std::cout << "- SharedArray no slower than Python's shared_memory: "
              << fixed(s("shared_array") * 1e3, 1) << " ms vs "
              << fixed(s("shared_memory") * 1e3, 1) << " ms, "
              << ok(s("shared_array") <= s("shared_memory")) << ".\n";
    std::cout << "- Automatic sharing no slower than Python's shared_memory: "
              << fixed(s("auto_vector") * 1e3, 1) << " ms vs " << fixed(s("shared_memory") * 1e3, 1)
              << " ms, " << ok(s("auto_vector") <= s("shared_memory")) << ".\n";
    std::cout << "- At least 50× faster than Python's pickling: SharedArray "
              << fixed(s("pickle") / s("shared_array"), 0) << "×, automatic sharing "
              << fixed(s("pickle") / s("auto_vector"), 0) << "×, "
              << ok(s("pickle") >= 50 * std::max(s("shared_array"), s("auto_vector"))) << ".\n";
    std::cout << "- Peak memory within 1.1× of the data (PSS): SharedArray "
              << fixed(peak_of(find("shared_array"), true) / data_kb, 2) << "×, automatic sharing "
              << fixed(peak_of(find("auto_vector"), true) / data_kb, 2) << "× ("
              << ok(peak_of(find("shared_array"), true) <= 1.1 * data_kb) << " for SharedArray, "
              << ok(peak_of(find("auto_vector"), true) <= 1.1 * data_kb)
              << " for automatic sharing); Python pickling "
              << fixed(peak_of(find("pickle"), true) / data_kb, 2) << "×.\n";
    std::cout << "- The copy path within 3× of a memcpy: " << fixed(s("copy_vector") * 1e3, 0)
              << " ms vs " << fixed(s("memcpy") * 1e3, 0) << " ms, "
              << fixed(s("copy_vector") / s("memcpy"), 1) << "×, "
              << ok(s("copy_vector") <= 3 * s("memcpy")) << ".\n";
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
