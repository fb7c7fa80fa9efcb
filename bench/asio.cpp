// Awaiting thread-pool futures from one Asio coroutine, against the floor: a hand-written
// round trip of two asio::post calls (to a pool's thread, and back to the io_context).
//
//   sequential  submit one task, co_await it, repeat (every await waits for a thread hop)
//   batched     submit --batch tasks, then co_await each in turn (most are done by then)
//
// Every task squares an int: the figures are the cost of the machinery, not of the work.
// Variants run interleaved, --reps times each; the table shows medians of awaits per second,
// and the ratio of the floor's rate to futura's (1.00 = as fast as the floor; the goal is
// at most 1.5).

#include <futura/asio.hpp>
#include <futura/thread_pool_executor.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <functional>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "harness.hpp"

namespace asio = boost::asio;
using namespace futura_bench;

namespace {

constexpr std::string_view usage =
    "usage: futura_bench_asio [--n=100000] [--batch=1000] [--reps=11] [--workers=2]\n"
    "                         [--only=GROUP/IMPL,...]: only these rows, e.g. "
    "batched/futura_batched\n";

int square(int x) { return x * x; }

/// The floor: post `square(x)` to `pool`, then post its result back to the handler's executor.
/// Nothing else: no future, no cancellation, no type erasure beyond Asio's own.
template <class PoolExecutor, class Token>
auto post_round_trip(const PoolExecutor& pool, int x, Token&& token)
{
    return asio::async_initiate<Token, void(int)>(
        [](auto handler, const PoolExecutor& ex, int value) {
            auto work = asio::make_work_guard(asio::get_associated_executor(handler));
            asio::post(ex, [handler = std::move(handler), work = std::move(work), value]() mutable {
                const int result = square(value);
                asio::post(work.get_executor(), [handler = std::move(handler), result]() mutable {
                    std::move(handler)(result);
                });
            });
        },
        token, pool, x);
}

/// Runs `body` as the only coroutine of a fresh io_context; returns awaits per second.
double awaits_per_second(long long n, const std::function<asio::awaitable<long long>()>& body)
{
    asio::io_context io;
    long long checksum = -1;
    const auto start = Clock::now();
    asio::co_spawn(io, body(), [&](std::exception_ptr error, long long sum) {
        if (error) {
            std::rethrow_exception(error);
        }
        checksum = sum;
    });
    io.run();
    const double elapsed = seconds_since(start);
    long long expected = 0;
    for (long long i = 0; i < n; ++i) {
        expected += square(static_cast<int>(i % 1000));
    }
    if (checksum != expected) {
        fail("wrong checksum: " + std::to_string(checksum) + " instead of " +
             std::to_string(expected));
    }
    return static_cast<double>(n) / elapsed;
}

/// Waits (in a coroutine) until `done` reaches `target`; `wake` is cancelled by whoever gets it
/// there.
asio::awaitable<void> wait_for_count(asio::steady_timer& wake, const long long& done,
                                     long long target)
{
    while (done < target) {
        co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

struct Variant
{
    std::string group;
    std::string impl;
    std::string label;
    bool is_floor = false;
    std::function<asio::awaitable<long long>()> body;
    std::vector<double> rates;
};

} // namespace

int main(int argc, char** argv)
{
    try {
        long long n = 100'000;
        long long batch = 1000;
        long long reps = 11;
        int workers = 2;
        std::vector<std::string> only;
        for (const auto& [key, value] : options(argc, argv, usage)) {
            if (key == "help") {
                std::cout << usage;
                return 0;
            }
            if (key == "n") {
                n = to_count(value, key);
            } else if (key == "batch") {
                batch = to_count(value, key);
            } else if (key == "reps") {
                reps = to_count(value, key);
            } else if (key == "only") {
                only = split(value);
            } else if (key == "workers") {
                workers = static_cast<int>(to_count(value, key));
            } else {
                fail("unknown option '--" + key + "'\n" + std::string(usage));
            }
        }

        futura::ThreadPoolExecutor pool{{.max_workers = workers}};
        asio::thread_pool asio_pool(static_cast<std::size_t>(workers));
        const auto asio_ex = asio_pool.get_executor();
        const auto pool_ex = pool.get_executor();

        std::vector<Variant> variants;
        variants.push_back({"sequential",
                            "floor_asio_pool",
                            "floor: asio::post to asio::thread_pool and back",
                            true,
                            [&]() -> asio::awaitable<long long> {
                                long long sum = 0;
                                for (long long i = 0; i < n; ++i) {
                                    sum += co_await post_round_trip(
                                        asio_ex, static_cast<int>(i % 1000), asio::use_awaitable);
                                }
                                co_return sum;
                            },
                            {}});
        variants.push_back({"sequential",
                            "floor_futura_pool",
                            "asio::post to ThreadPoolExecutor::get_executor() and back",
                            false,
                            [&]() -> asio::awaitable<long long> {
                                long long sum = 0;
                                for (long long i = 0; i < n; ++i) {
                                    sum += co_await post_round_trip(
                                        pool_ex, static_cast<int>(i % 1000), asio::use_awaitable);
                                }
                                co_return sum;
                            },
                            {}});
        variants.push_back({"sequential",
                            "futura_async_submit",
                            "futura: co_await pool.async_submit(f, x, use_awaitable)",
                            false,
                            [&]() -> asio::awaitable<long long> {
                                long long sum = 0;
                                for (long long i = 0; i < n; ++i) {
                                    sum += co_await pool.async_submit(
                                        square, static_cast<int>(i % 1000), asio::use_awaitable);
                                }
                                co_return sum;
                            },
                            {}});
        variants.push_back(
            {"batched",
             "floor_asio_pool",
             "floor: " + std::to_string(batch) + " posts to asio::thread_pool, each posted back",
             true,
             [&]() -> asio::awaitable<long long> {
                 auto io_ex = co_await asio::this_coro::executor;
                 asio::steady_timer wake(io_ex, asio::steady_timer::time_point::max());
                 long long sum = 0;
                 for (long long first = 0; first < n; first += batch) {
                     const long long count = std::min(batch, n - first);
                     long long done = 0;
                     for (long long i = first; i < first + count; ++i) {
                         post_round_trip(asio_ex, static_cast<int>(i % 1000),
                                         asio::bind_executor(io_ex, [&](int r) {
                                             sum += r;
                                             if (++done == count) {
                                                 wake.cancel();
                                             }
                                         }));
                     }
                     co_await wait_for_count(wake, done, count);
                 }
                 co_return sum;
             },
             {}});
        variants.push_back({"batched",
                            "futura_batched",
                            "futura: submit " + std::to_string(batch) +
                                ", then co_await each f.async_wait(use_awaitable)",
                            false,
                            [&]() -> asio::awaitable<long long> {
                                long long sum = 0;
                                std::vector<futura::Future<int>> futures;
                                futures.reserve(static_cast<std::size_t>(batch));
                                for (long long first = 0; first < n; first += batch) {
                                    const long long count = std::min(batch, n - first);
                                    futures.clear();
                                    for (long long i = first; i < first + count; ++i) {
                                        futures.push_back(
                                            pool.submit(square, static_cast<int>(i % 1000)));
                                    }
                                    for (auto& f : futures) {
                                        sum += co_await f.async_wait(asio::use_awaitable);
                                    }
                                }
                                co_return sum;
                            },
                            {}});
        variants.push_back(
            {"batched",
             "futura_async_as_completed",
             "futura: submit " + std::to_string(batch) +
                 ", then co_await async_as_completed(...).async_next",
             false,
             [&]() -> asio::awaitable<long long> {
                 long long sum = 0;
                 std::vector<futura::Future<int>> futures;
                 futures.reserve(static_cast<std::size_t>(batch));
                 for (long long first = 0; first < n; first += batch) {
                     const long long count = std::min(batch, n - first);
                     futures.clear();
                     for (long long i = first; i < first + count; ++i) {
                         futures.push_back(pool.submit(square, static_cast<int>(i % 1000)));
                     }
                     auto completed = futura::async_as_completed(futures);
                     while (auto f = co_await completed.async_next(asio::use_awaitable)) {
                         sum += f->result();
                     }
                 }
                 co_return sum;
             },
             {}});

        if (!only.empty()) {
            std::erase_if(variants, [&](const Variant& v) {
                return std::find(only.begin(), only.end(), v.group + "/" + v.impl) == only.end();
            });
        }
        for (auto& variant : variants) { // warm-up: threads started, allocators primed
            awaits_per_second(n, variant.body);
        }
        for (long long rep = 0; rep < reps; ++rep) {
            for (auto& variant : variants) {
                variant.rates.push_back(awaits_per_second(n, variant.body));
            }
        }

        std::cout << "Awaits per second from one coroutine on one `io_context` thread, " << n
                  << " awaits per repetition, median of " << reps
                  << " interleaved repetitions (min–max); pools of " << workers
                  << " threads. Ratio: the floor's rate over this row's (lower is better; goal "
                     "≤ 1.5).\n\n";
        std::cout << "| workload | implementation | awaits/s | min–max | ratio to floor |\n";
        std::cout << "| --- | --- | ---: | ---: | ---: |\n";
        for (const auto& variant : variants) {
            const Row row = summarise(variant.group, variant.impl, variant.label, n, variant.rates);
            double floor_rate = 0;
            for (const auto& other : variants) {
                if (other.group == variant.group && other.is_floor) {
                    floor_rate = median(other.rates);
                }
            }
            std::cout << "| " << variant.group << " | " << variant.label << " | "
                      << grouped(row.median) << " | " << grouped(row.min) << "–" << grouped(row.max)
                      << " | "
                      << (variant.is_floor ? std::string("1.00 (floor)")
                          : floor_rate > 0 ? fixed(floor_rate / row.median, 2)
                                           : std::string("–"))
                      << " |\n";
        }
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "futura_bench_asio: " << e.what() << '\n';
        return 1;
    }
}
