// The floor of the process pool's round-trip latency (W5): two processes passing one int back
// and forth over a pair of pipes, with nothing else (no executor, no framing, no I/O thread).
//
// A round forks a fresh child, which answers each int it reads with that int plus one; the
// parent times each write -> read. Rounds alternate between the two processes pinned to two
// different CPUs (the floor the goal is stated against: no CPU is shared, so every message is a
// cross-CPU wake-up) and left to the scheduler (for reference).
//
// Also the floor of the process pool's throughput (W4 submit): N small frames written over a
// Unix socket to a forked child in batches (many frames per write), the child answering each
// with a smaller frame, its answers to one read written at once; the parent reads them all.
// The bytes alone, both ways, with no executor, no encoding and no scheduling (issue 17).
//
// Prints progress on stderr and `result` lines (bench/harness.hpp) on stdout, which
// futura_bench_process_pool reads with --peer-results. Not linked with futura.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <iostream>
#include <optional>
#include <poll.h>
#include <sched.h>
#include <string>
#include <sys/socket.h>
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

// ---- W4's floor: batched frames -------------------------------------------------------------

// About the size of futura's frames for W4's call and answer (a 32-byte header and a short
// payload each way).
constexpr std::size_t call_frame_bytes = 64;
constexpr std::size_t answer_frame_bytes = 48;
constexpr std::size_t frames_per_write = 64; // what the parent writes at once

/// The child's side: reads call frames (an int in the first bytes of each), appends an answer
/// frame for each complete one, and writes the answers to one read at once, or, `one_by_one`,
/// each answer in a write of its own, as a futura worker must (an answer is out before the next
/// call starts, so that a crash in that call is charged to it alone). Ends at end of input.
[[noreturn]] void answer_frames(int fd, bool one_by_one)
{
    std::vector<char> in(64 * 1024);
    std::vector<char> out;
    std::size_t have = 0;
    for (;;) {
        const ssize_t n = ::read(fd, in.data() + have, in.size() - have);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            std::_Exit(n == 0 ? 0 : 1);
        }
        have += static_cast<std::size_t>(n);
        std::size_t at = 0;
        out.clear();
        for (; have - at >= call_frame_bytes; at += call_frame_bytes) {
            int value = 0;
            std::memcpy(&value, in.data() + at, sizeof value);
            ++value;
            const std::size_t end = out.size();
            out.resize(end + answer_frame_bytes);
            std::memcpy(out.data() + end, &value, sizeof value);
        }
        std::memmove(in.data(), in.data() + at, have - at);
        have -= at;
        const std::size_t step = one_by_one ? answer_frame_bytes : out.size();
        for (std::size_t written = 0; written < out.size();) {
            const std::size_t end = std::min(out.size(), (written / step + 1) * step);
            const ssize_t w = ::write(fd, out.data() + written, end - written);
            if (w < 0 && errno == EINTR) {
                continue;
            }
            if (w <= 0) {
                std::_Exit(1);
            }
            written += static_cast<std::size_t>(w);
        }
    }
}

/// One W4 floor measurement with a child started beforehand: `n` call frames out, in writes of
/// `frames_per_write`, and their `n` answers back. @return frames per second.
double batched_frames_once(int fd, int n)
{
    std::vector<char> batch(frames_per_write * call_frame_bytes);
    std::vector<char> in(64 * 1024);
    std::size_t have = 0;
    int sent = 0;
    int received = 0;
    std::int64_t sum = 0;
    const auto start = Clock::now();
    while (received < n) {
        pollfd events{fd, static_cast<short>(POLLIN | (sent < n ? POLLOUT : 0)), 0};
        if (::poll(&events, 1, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            fail("poll: " + std::string(std::strerror(errno)));
        }
        if ((events.revents & POLLOUT) != 0 && sent < n) {
            const int count = std::min(n - sent, static_cast<int>(frames_per_write));
            for (int k = 0; k < count; ++k) {
                const int value = sent + k;
                std::memcpy(batch.data() + static_cast<std::size_t>(k) * call_frame_bytes, &value,
                            sizeof value);
            }
            const auto bytes = static_cast<std::size_t>(count) * call_frame_bytes;
            // Non-blocking: a short write sends whole frames only if it is a multiple of a
            // frame; keep what is left and write it on.
            std::size_t written = 0;
            while (written < bytes) {
                const ssize_t w = ::send(fd, batch.data() + written, bytes - written, 0);
                if (w < 0 && errno == EINTR) {
                    continue;
                }
                if (w < 0 && errno == EAGAIN) {
                    pollfd out{fd, POLLOUT, 0};
                    ::poll(&out, 1, -1);
                    continue;
                }
                if (w <= 0) {
                    fail("send: " + std::string(std::strerror(errno)));
                }
                written += static_cast<std::size_t>(w);
            }
            sent += count;
        }
        if ((events.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            const ssize_t r = ::recv(fd, in.data() + have, in.size() - have, MSG_DONTWAIT);
            if (r == 0) {
                fail("the child ended early");
            }
            if (r > 0) {
                have += static_cast<std::size_t>(r);
                std::size_t at = 0;
                for (; have - at >= answer_frame_bytes; at += answer_frame_bytes) {
                    int value = 0;
                    std::memcpy(&value, in.data() + at, sizeof value);
                    sum += value;
                    ++received;
                }
                std::memmove(in.data(), in.data() + at, have - at);
                have -= at;
            }
        }
    }
    const double rate = n / seconds_since(start);
    if (sum != static_cast<std::int64_t>(n) * (n + 1) / 2) {
        fail("W4 floor: wrong sum of answers");
    }
    return rate;
}

/// W4's floor: `reps` measurements of `n` frames each way with one child, after `warmup` frames.
std::vector<double> batched_frames(int n, int reps, int warmup, bool one_by_one)
{
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        fail("socketpair: " + std::string(std::strerror(errno)));
    }
    const pid_t child = ::fork();
    if (child < 0) {
        fail("fork: " + std::string(std::strerror(errno)));
    }
    if (child == 0) {
        ::close(fds[0]);
        answer_frames(fds[1], one_by_one);
    }
    ::close(fds[1]);
    if (::fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0) {
        fail("fcntl: " + std::string(std::strerror(errno)));
    }
    batched_frames_once(fds[0], warmup);
    std::vector<double> rates;
    for (int rep = 0; rep < reps; ++rep) {
        rates.push_back(batched_frames_once(fds[0], n));
        std::fprintf(stderr, "W4 rep %d/%d  %s %14.0f frames/s\n", rep + 1, reps,
                     one_by_one ? "socket_one_by_one" : "socket_batched", rates.back());
    }
    ::close(fds[0]); // the child sees end of input and ends
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    return rates;
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
  --w4-n=N        frames each way per W4 floor measurement (default 20000)
  --reps=N        W4 floor measurements; the median is reported (default 5)
  --w4-warmup=N   untimed frames before them (default 1000)

Prints progress on stderr, and on stdout `result` lines for the groups w5_p50 and w5_p99:
impl=pipe_pinned (the two processes on two different CPUs) and impl=pipe_unpinned; and for
w4_submit: impl=socket_batched (answers to one read in one write) and impl=socket_one_by_one
(each answer in a write of its own).
)";

} // namespace

int main(int argc, char** argv)
{
    try {
        int total = 2000;
        int rounds = 8;
        int warmup = 100;
        int w4_n = 20'000;
        int w4_reps = 5;
        int w4_warmup = 1'000;
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
            } else if (key == "w4-n") {
                w4_n = static_cast<int>(to_count(value, key));
            } else if (key == "reps") {
                w4_reps = static_cast<int>(to_count(value, key));
            } else if (key == "w4-warmup") {
                w4_warmup = static_cast<int>(to_count(value, key));
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
        if (w4_n > 0 && w4_reps > 0) {
            for (const bool one_by_one : {false, true}) {
                const auto rates = batched_frames(w4_n, w4_reps, w4_warmup, one_by_one);
                print_row(
                    std::cout,
                    summarise("w4_submit", one_by_one ? "socket_one_by_one" : "socket_batched",
                              "bare Unix socket, frames of " + std::to_string(call_frame_bytes) +
                                  " bytes out, " + std::to_string(frames_per_write) +
                                  " per write, and " + std::to_string(answer_frame_bytes) +
                                  " back, " +
                                  (one_by_one ? "one per write" : "all of a read's in one write") +
                                  " (the bytes alone)",
                              w4_n, rates));
            }
        }
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "futura_bench_pipe_pingpong: " << e.what() << '\n';
        return 1;
    }
}
