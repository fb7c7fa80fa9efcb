// Composing futures: futura's then and when_all against Boost.Thread's futures
// (BOOST_THREAD_VERSION 5: future::then with an executor, when_all, boost::basic_thread_pool)
// and a hand-written std::promise chain.
//
//   chain     --chain links, each adding 1 to its antecedent's value, built on a pool task and
//             waited for at its end (the links run one after another on the pool)
//   when_all  --futures tasks submitted to the pool, gathered by one when_all, summed
//   fan       --groups groups of --group-size tasks: each group gathered by when_all and summed
//             by a continuation, the groups gathered by a final when_all
//
// Every repetition of every row runs in a fresh process forked from this one (which never starts
// a thread), so that its peak memory (the child's maximum resident set, from wait4) is its own.
// Rows run interleaved, --reps times each; the table shows medians of operations per second
// (links, futures, tasks), the spread, and the median peak memory.

#define BOOST_THREAD_VERSION 5
#include <futura/asio.hpp>
#include <futura/compose.hpp>
#include <futura/inline_executor.hpp>
#include <futura/thread_pool_executor.hpp>

#include <boost/asio/post.hpp>
#include <boost/thread/executors/basic_thread_pool.hpp>
#include <boost/thread/future.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <future>
#include <iostream>
#include <map>
#include <string>
#include <string_view>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "harness.hpp"

using namespace futura_bench;

namespace {

constexpr std::string_view usage =
    "usage: futura_bench_compose [--chain=100000] [--futures=100000] [--groups=1000]\n"
    "                            [--group-size=100] [--reps=11] [--workers=2]\n"
    "                            [--only=GROUP/IMPL,...]: only these rows, e.g. chain/futura\n";

struct Sizes
{
    long long chain = 100'000;
    long long futures = 100'000;
    long long groups = 1'000;
    long long group_size = 100;
    std::size_t workers = 2;
};

int one() { return 1; }

void check(long long got, long long expected, const char* what)
{
    if (got != expected) {
        fail(std::string(what) + ": got " + std::to_string(got) + ", expected " +
             std::to_string(expected));
    }
}

futura::ThreadPoolOptions pool_options(const Sizes& sizes)
{
    return {.max_workers = static_cast<int>(sizes.workers)};
}

// ----- (a) chain ---------------------------------------------------------------------------

long long chain_futura(const Sizes& sizes)
{
    futura::ThreadPoolExecutor pool(pool_options(sizes));
    auto future = pool.submit([] { return 0LL; });
    for (long long i = 0; i < sizes.chain; ++i) {
        future = future.then([](long long v) { return v + 1; });
    }
    return future.result();
}

long long chain_futura_inline(const Sizes& sizes)
{
    futura::ThreadPoolExecutor pool(pool_options(sizes));
    futura::InlineExecutor inline_executor;
    auto future = pool.submit([] { return 0LL; });
    for (long long i = 0; i < sizes.chain; ++i) {
        future = future.then([](long long v) { return v + 1; }, {.executor = &inline_executor});
    }
    return future.result();
}

/// By hand: a std::promise per link, made up front as the links of a chain would be; each link
/// runs on the pool, sets its promise and posts the next link. No futures library in between.
long long chain_promises(const Sizes& sizes)
{
    futura::ThreadPoolExecutor pool(pool_options(sizes));
    struct Chain
    {
        futura::ThreadPoolExecutor::AsioExecutor executor;
        std::vector<std::promise<long long>> promises;
        std::vector<std::future<long long>> futures;

        void step(std::size_t link, long long value)
        {
            promises[link].set_value(value + 1);
            if (link + 1 < promises.size()) {
                boost::asio::post(executor, [this, link, value] { step(link + 1, value + 1); });
            }
        }
    };
    const auto links = static_cast<std::size_t>(sizes.chain);
    Chain chain{pool.get_executor(), std::vector<std::promise<long long>>(links), {}};
    chain.futures.reserve(links);
    for (auto& promise : chain.promises) {
        chain.futures.push_back(promise.get_future());
    }
    boost::asio::post(chain.executor, [&chain] { chain.step(0, 0); });
    return chain.futures.back().get();
}

long long chain_boost(const Sizes& sizes)
{
    boost::basic_thread_pool pool(static_cast<unsigned>(sizes.workers));
    auto future = boost::async(pool, [] { return 0LL; });
    for (long long i = 0; i < sizes.chain; ++i) {
        future = future.then(pool, [](boost::future<long long> f) { return f.get() + 1; });
    }
    const long long result = future.get();
    pool.close();
    pool.join();
    return result;
}

// ----- (b) when_all ------------------------------------------------------------------------

long long when_all_futura(const Sizes& sizes)
{
    futura::ThreadPoolExecutor pool(pool_options(sizes));
    std::vector<futura::Future<int>> futures;
    futures.reserve(static_cast<std::size_t>(sizes.futures));
    for (long long i = 0; i < sizes.futures; ++i) {
        futures.push_back(pool.submit(one));
    }
    long long sum = 0;
    for (int v : futura::when_all(std::move(futures)).result()) {
        sum += v;
    }
    return sum;
}

/// The floor: the same tasks, waited for one after another (no when_all).
long long when_all_futura_each(const Sizes& sizes)
{
    futura::ThreadPoolExecutor pool(pool_options(sizes));
    std::vector<futura::Future<int>> futures;
    futures.reserve(static_cast<std::size_t>(sizes.futures));
    for (long long i = 0; i < sizes.futures; ++i) {
        futures.push_back(pool.submit(one));
    }
    long long sum = 0;
    for (auto& future : futures) {
        sum += future.result();
    }
    return sum;
}

long long when_all_boost(const Sizes& sizes)
{
    boost::basic_thread_pool pool(static_cast<unsigned>(sizes.workers));
    std::vector<boost::future<int>> futures;
    futures.reserve(static_cast<std::size_t>(sizes.futures));
    for (long long i = 0; i < sizes.futures; ++i) {
        futures.push_back(boost::async(pool, one));
    }
    auto all = boost::when_all(futures.begin(), futures.end()).get();
    long long sum = 0;
    for (auto& future : all) {
        sum += future.get();
    }
    pool.close();
    pool.join();
    return sum;
}

// ----- (c) fan-out/fan-in ------------------------------------------------------------------

long long fan_futura(const Sizes& sizes)
{
    futura::ThreadPoolExecutor pool(pool_options(sizes));
    std::vector<futura::Future<long long>> groups;
    groups.reserve(static_cast<std::size_t>(sizes.groups));
    for (long long g = 0; g < sizes.groups; ++g) {
        std::vector<futura::Future<int>> tasks;
        tasks.reserve(static_cast<std::size_t>(sizes.group_size));
        for (long long t = 0; t < sizes.group_size; ++t) {
            tasks.push_back(pool.submit(one));
        }
        groups.push_back(futura::when_all(std::move(tasks)).then([](std::vector<int> values) {
            long long sum = 0;
            for (int v : values) {
                sum += v;
            }
            return sum;
        }));
    }
    long long sum = 0;
    for (long long v : futura::when_all(std::move(groups)).result()) {
        sum += v;
    }
    return sum;
}

long long fan_boost(const Sizes& sizes)
{
    boost::basic_thread_pool pool(static_cast<unsigned>(sizes.workers));
    std::vector<boost::future<long long>> groups;
    groups.reserve(static_cast<std::size_t>(sizes.groups));
    for (long long g = 0; g < sizes.groups; ++g) {
        std::vector<boost::future<int>> tasks;
        tasks.reserve(static_cast<std::size_t>(sizes.group_size));
        for (long long t = 0; t < sizes.group_size; ++t) {
            tasks.push_back(boost::async(pool, one));
        }
        using All = boost::csbl::vector<boost::future<int>>;
        groups.push_back(
            boost::when_all(tasks.begin(), tasks.end()).then(pool, [](boost::future<All> all) {
                long long sum = 0;
                for (auto& f : all.get()) {
                    sum += f.get();
                }
                return sum;
            }));
    }
    long long sum = 0;
    for (auto& f : boost::when_all(groups.begin(), groups.end()).get()) {
        sum += f.get();
    }
    pool.close();
    pool.join();
    return sum;
}

// ----- the harness -------------------------------------------------------------------------

struct Variant
{
    std::string group;
    std::string impl;
    std::string label;
    bool is_futura;
    long long (*run)(const Sizes&);
    long long operations; // per repetition: links, futures, tasks
    long long expected;
};

struct Sample
{
    double seconds = 0;
    double peak_mb = 0;
};

/// Runs `variant` once in a forked child. @throws BenchError if it failed.
Sample run_in_child(const Variant& variant, const Sizes& sizes)
{
    int pipe_fds[2];
    if (::pipe(pipe_fds) != 0) {
        fail(std::string("pipe: ") + std::strerror(errno));
    }
    std::fflush(nullptr);
    const pid_t child = ::fork();
    if (child < 0) {
        fail(std::string("fork: ") + std::strerror(errno));
    }
    if (child == 0) {
        ::close(pipe_fds[0]);
        double seconds = -1;
        try {
            const auto start = Clock::now();
            const long long got = variant.run(sizes);
            seconds = seconds_since(start);
            check(got, variant.expected, variant.label.c_str());
        } catch (const std::exception& e) {
            std::fprintf(stderr, "%s/%s: %s\n", variant.group.c_str(), variant.impl.c_str(),
                         e.what());
            seconds = -1;
        }
        (void)!::write(pipe_fds[1], &seconds, sizeof seconds);
        ::_exit(seconds < 0 ? 1 : 0); // no destructors: the figures are taken
    }
    ::close(pipe_fds[1]);
    double seconds = -1;
    const auto got = ::read(pipe_fds[0], &seconds, sizeof seconds);
    ::close(pipe_fds[0]);
    int status = 0;
    rusage usage_of_child{};
    if (::wait4(child, &status, 0, &usage_of_child) != child) {
        fail(std::string("wait4: ") + std::strerror(errno));
    }
    if (got != static_cast<ssize_t>(sizeof seconds) || seconds < 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        fail(variant.group + "/" + variant.impl + " failed (status " + std::to_string(status) +
             ")");
    }
    return {seconds, static_cast<double>(usage_of_child.ru_maxrss) / 1024.0};
}

} // namespace

int main(int argc, char** argv)
{
    try {
        Sizes sizes;
        std::size_t reps = 11;
        std::vector<std::string> only;
        for (const auto& [key, value] : options(argc, argv, usage)) {
            if (key == "help") {
                std::cout << usage;
                return 0;
            }
            if (key == "chain") {
                sizes.chain = to_count(value, key);
            } else if (key == "futures") {
                sizes.futures = to_count(value, key);
            } else if (key == "groups") {
                sizes.groups = to_count(value, key);
            } else if (key == "group-size") {
                sizes.group_size = to_count(value, key);
            } else if (key == "reps") {
                reps = static_cast<std::size_t>(to_count(value, key));
            } else if (key == "workers") {
                sizes.workers = static_cast<std::size_t>(to_count(value, key));
            } else if (key == "only") {
                only = split(value);
            } else {
                fail("unknown option --" + key + "\n" + std::string(usage));
            }
        }
        const long long fan_tasks = sizes.groups * sizes.group_size;
        std::vector<Variant> variants = {
            {"chain", "promises", "by hand: std::promise per link, each link posts the next", false,
             chain_promises, sizes.chain, sizes.chain},
            {"chain", "futura", "futura: f = f.then(add_one) (continuations on the pool)", true,
             chain_futura, sizes.chain, sizes.chain},
            {"chain", "futura_inline", "futura: f.then(add_one, {.executor = &inline_executor})",
             true, chain_futura_inline, sizes.chain, sizes.chain},
            {"chain", "boost", "Boost.Thread: f = f.then(pool, add_one)", false, chain_boost,
             sizes.chain, sizes.chain},
            {"when_all", "futura_each", "futura: submit, then result() of each in turn (floor)",
             true, when_all_futura_each, sizes.futures, sizes.futures},
            {"when_all", "futura", "futura: submit, then when_all(futures).result()", true,
             when_all_futura, sizes.futures, sizes.futures},
            {"when_all", "boost", "Boost.Thread: async(pool, f), then when_all(begin, end).get()",
             false, when_all_boost, sizes.futures, sizes.futures},
            {"fan", "futura", "futura: when_all(group).then(sum) per group, when_all(groups)", true,
             fan_futura, fan_tasks, fan_tasks},
            {"fan", "boost", "Boost.Thread: when_all(group).then(pool, sum), when_all(groups)",
             false, fan_boost, fan_tasks, fan_tasks},
        };
        if (!only.empty()) {
            std::erase_if(variants, [&](const Variant& v) {
                return std::find(only.begin(), only.end(), v.group + "/" + v.impl) == only.end();
            });
        }
        std::map<std::string, std::vector<double>> rates;
        std::map<std::string, std::vector<double>> peaks;
        for (std::size_t rep = 0; rep < reps; ++rep) {
            for (const auto& variant : variants) {
                const auto sample = run_in_child(variant, sizes);
                const auto id = variant.group + "/" + variant.impl;
                rates[id].push_back(static_cast<double>(variant.operations) / sample.seconds);
                peaks[id].push_back(sample.peak_mb);
                std::cerr << id << ": " << grouped(rates[id].back()) << "/s, "
                          << fixed(sample.peak_mb, 1) << " MB\n";
            }
        }
        std::cout << "Operations per second (chain: links; when_all: futures; fan: tasks), "
                  << "median of " << reps << " interleaved repetitions (min–max), each in a "
                  << "fresh process; pools of " << sizes.workers
                  << " threads. chain: " << sizes.chain << " links; when_all: " << sizes.futures
                  << " futures; fan: " << sizes.groups << " groups × " << sizes.group_size
                  << " tasks. Peak: the process's maximum resident set (median), whole process "
                     "included. Ratios: futura's rate over the row's (higher is better for "
                     "futura; goals ≥ 5 against Boost.Thread on chain and when_all, ≥ 1/1.2 = "
                     "0.83 against the hand-written chain).\n\n";
        std::cout << "| workload | implementation | ops/s | min–max | peak MB | futura ÷ this |\n";
        std::cout << "| --- | --- | ---: | ---: | ---: | ---: |\n";
        for (const auto& variant : variants) {
            const auto id = variant.group + "/" + variant.impl;
            const auto row = summarise(variant.group, variant.impl, variant.label,
                                       variant.operations, rates[id]);
            const auto futura_id = variant.group + "/futura";
            std::string ratio = "";
            if (id == futura_id) {
                ratio = "1.00";
            } else if (rates.count(futura_id) != 0) {
                ratio = fixed(median(rates[futura_id]) / row.median, 2);
            }
            std::cout << "| " << variant.group << " | " << variant.label << " | "
                      << grouped(row.median) << " | " << grouped(row.min) << "–" << grouped(row.max)
                      << " | " << fixed(median(peaks[id]), 1) << " | " << ratio << " |\n";
        }
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "futura_bench_compose: " << e.what() << '\n';
        return 1;
    }
}
