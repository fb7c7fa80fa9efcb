// The floor of the process pool's round-trip latency (W5): two processes passing one int back
// and forth over a pair of pipes, with nothing else (no executor, no framing, no I/O thread).
//
// A round forks a fresh child, which answers each int it reads with that int plus one; the
// parent times each write -> read. Rounds alternate between the two processes pinned to two
// different CPUs (the floor the goal is stated against: no CPU is shared, so every message is a
// cross-CPU wake-up) and left to the scheduler (for reference).
//
// Prints progress on stderr and `result` lines (bench/harness.hpp) on stdout, which
// futura_bench_process_pool reads with --peer-results. Not linked with futura.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <iostream>
#include <optional>
#include <sched.h>
#include <string>
#include <sys/wait.h>
#include <tuple>
#include <unistd.h>
#include <utility>
#include <vector>

#include "harness.hpp"

namespace {

using namespace futura_bench;

void write_int(int fd, int value)
{
    const auto n = ::write(fd, &value, sizeof value);
    if (n != static_cast<ssize_t>(sizeof value)) {
        fail("pipe write failed: " + std::string(n < 0 ? std::strerror(errno) : "short write"));
    }
}

/// Reads one int; nothing at end of input.
std::optional<int> read_int(int fd)
{
    int value = 0;
    ssize_t n = 0;
    while ((n = ::read(fd, &value, sizeof value)) < 0 && errno == EINTR) {
    }
    if (n == 0) {
        return std::nullopt;
    }
    if (n != static_cast<ssize_t>(sizeof value)) {
        fail("pipe read failed: " + std::string(n < 0 ? std::strerror(errno) : "short read"));
    }
    return value;
}

void pin_to(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(static_cast<std::size_t>(cpu), &set);
    if (::sched_setaffinity(0, sizeof set, &set) != 0) {
        fail("sched_setaffinity: " + std::string(std::strerror(errno)));
    }
}

/// One round in a fresh child: `warmup` untimed round trips, then `n` timed ones (µs each). With
/// `cpus`, the parent runs on the first and the child on the second.
std::vector<double> round_trips(int n, int warmup, std::optional<std::pair<int, int>> cpus)
{
    int to_child[2];
    int to_parent[2];
    if (::pipe2(to_child, O_CLOEXEC) != 0 || ::pipe2(to_parent, O_CLOEXEC) != 0) {
        fail("pipe2: " + std::string(std::strerror(errno)));
    }
    cpu_set_t original;
    if (::sched_getaffinity(0, sizeof original, &original) != 0) {
        fail("sched_getaffinity: " + std::string(std::strerror(errno)));
    }
    const pid_t child = ::fork();
    if (child < 0) {
        fail("fork: " + std::string(std::strerror(errno)));
    }
    if (child == 0) {
        ::close(to_child[1]);
        ::close(to_parent[0]);
        if (cpus) {
            pin_to(cpus->second);
        }
        while (const auto value = read_int(to_child[0])) {
            write_int(to_parent[1], *value + 1);
        }
        std::_Exit(0);
    }
    ::close(to_child[0]);
    ::close(to_parent[1]);
    if (cpus) {
        pin_to(cpus->first);
    }
    std::vector<double> samples;
    samples.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < warmup + n; ++i) {
        const auto start = Clock::now();
        write_int(to_child[1], i);
        const auto answer = read_int(to_parent[0]);
        const auto stop = Clock::now();
        if (answer != i + 1) {
            fail("wrong answer from the child for " + std::to_string(i));
        }
        if (i >= warmup) {
            samples.push_back(micros(stop - start));
        }
    }
    ::close(to_child[1]); // the child sees end of input and exits
    ::close(to_parent[0]);
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    ::sched_setaffinity(0, sizeof original, &original);
    return samples;
}

/// The first two CPUs this process may run on, if it may run on two.
std::optional<std::pair<int, int>> two_cpus()
{
    cpu_set_t set;
    if (::sched_getaffinity(0, sizeof set, &set) != 0) {
        return std::nullopt;
    }
    std::vector<int> cpus;
    for (int cpu = 0; cpu < CPU_SETSIZE && cpus.size() < 2; ++cpu) {
        if (CPU_ISSET(static_cast<std::size_t>(cpu), &set)) {
            cpus.push_back(cpu);
        }
    }
    if (cpus.size() < 2) {
        return std::nullopt;
    }
    return std::pair{cpus[0], cpus[1]};
}

constexpr std::string_view usage = R"(usage: futura_bench_pipe_pingpong [--option=value ...]

  --w5-n=N        timed round trips in all, per variant (default 2000)
  --w5-rounds=N   rounds they are split into, each with a fresh child (default 8)
  --w5-warmup=N   untimed round trips per round (default 100)

Prints progress on stderr, and on stdout `result` lines for the groups w5_p50 and w5_p99:
impl=pipe_pinned (the two processes on two different CPUs) and impl=pipe_unpinned.
)";

} // namespace

int main(int argc, char** argv)
{
    try {
        int total = 2000;
        int rounds = 8;
        int warmup = 100;
        for (const auto& [key, value] : options(argc, argv, usage)) {
            if (key == "help") {
                std::cout << usage;
                return 0;
            }
            if (key == "w5-n") {
                total = static_cast<int>(to_count(value, key));
            } else if (key == "w5-rounds") {
                rounds = static_cast<int>(to_count(value, key));
            } else if (key == "w5-warmup") {
                warmup = static_cast<int>(to_count(value, key));
            } else {
                fail("unknown option '--" + key + "'\n" + std::string(usage));
            }
        }
        if (total < rounds) {
            fail("--w5-n must be at least --w5-rounds");
        }
        const auto cpus = two_cpus();
        if (!cpus) {
            std::fprintf(stderr, "pipe ping-pong: fewer than 2 CPUs allowed, no pinned variant\n");
        }
        struct Variant
        {
            std::string impl;
            std::string label;
            std::optional<std::pair<int, int>> cpus;
            std::vector<std::vector<double>> rounds;
        };
        std::vector<Variant> variants;
        if (cpus) {
            variants.push_back({"pipe_pinned",
                                "bare pipe ping-pong, 2 processes pinned to CPUs " +
                                    std::to_string(cpus->first) + " and " +
                                    std::to_string(cpus->second),
                                cpus,
                                {}});
        }
        variants.push_back(
            {"pipe_unpinned", "bare pipe ping-pong, 2 processes, not pinned", std::nullopt, {}});
        const int per_round = total / rounds;
        for (int round = 0; round < rounds; ++round) {
            for (auto& variant : variants) {
                variant.rounds.push_back(round_trips(per_round, warmup, variant.cpus));
                const auto& samples = variant.rounds.back();
                std::fprintf(stderr, "W5 round %d/%d  %-20s p50 %8.2f us  p99 %8.2f us\n",
                             round + 1, rounds, variant.impl.c_str(), percentile(samples, 0.5),
                             percentile(samples, 0.99));
            }
        }
        // As the harness reports latency: percentiles over all round trips, spread over rounds.
        for (const auto& variant : variants) {
            std::vector<double> all;
            std::vector<double> p50s;
            std::vector<double> p99s;
            for (const auto& samples : variant.rounds) {
                all.insert(all.end(), samples.begin(), samples.end());
                p50s.push_back(percentile(samples, 0.5));
                p99s.push_back(percentile(samples, 0.99));
            }
            const auto n = static_cast<long long>(all.size());
            for (const auto& [group, p, per] :
                 {std::tuple{"w5_p50", 0.5, &p50s}, std::tuple{"w5_p99", 0.99, &p99s}}) {
                Row row = summarise(group, variant.impl, variant.label, n, *per);
                row.median = percentile(all, p);
                print_row(std::cout, row);
            }
        }
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "futura_bench_pipe_pingpong: " << e.what() << '\n';
        return 1;
    }
}
