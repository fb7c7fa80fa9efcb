// futura::InlineExecutor: each call runs at once, in the submitting thread (joblib's n_jobs=1).
// (What every executor does is in the typed suite, test/executor.cpp.)
#include <futura/inline_executor.hpp>

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <latch>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

using namespace futura_test;

BOOST_AUTO_TEST_SUITE(inline_executor)

BOOST_AUTO_TEST_CASE(runs_each_call_in_the_calling_thread)
{
    futura::InlineExecutor executor;
    const auto caller = std::this_thread::get_id();
    auto future = executor.submit([] { return std::this_thread::get_id(); });
    BOOST_TEST((future.result() == caller));
    for (const auto& id :
         executor.map([](int) { return std::this_thread::get_id(); }, std::vector{1, 2, 3})) {
        BOOST_TEST((id == caller));
    }
}

BOOST_AUTO_TEST_CASE(future_is_done_when_submit_returns)
{
    futura::InlineExecutor executor;
    bool ran = false;
    auto future = executor.submit([&ran] {
        ran = true;
        return 5;
    });
    BOOST_TEST(ran);
    BOOST_TEST(future.done());
    BOOST_TEST(!future.running());
    BOOST_TEST(future.result(std::chrono::seconds(0)) == 5);
    BOOST_TEST(!future.cancel()); // too late: it has run
    BOOST_TEST(!future.cancelled());
}

BOOST_AUTO_TEST_CASE(task_exceptions_are_stored_not_thrown_by_submit)
{
    futura::InlineExecutor executor;
    futura::Future<int> future;
    BOOST_CHECK_NO_THROW(future = executor.submit(divide, 1, 0));
    BOOST_TEST(future.done());
    BOOST_CHECK_THROW(future.result(), std::domain_error);
    futura::Future<void> thrown_int;
    BOOST_CHECK_NO_THROW(thrown_int = executor.submit([] { throw 7; }));
    BOOST_CHECK_THROW(thrown_int.result(), int);
}

BOOST_AUTO_TEST_CASE(calls_run_in_submission_order)
{
    futura::InlineExecutor executor;
    std::vector<int> order;
    for (int i = 0; i < 5; ++i) {
        (void)executor.submit([&order, i] { order.push_back(i); });
    }
    BOOST_TEST(order == (std::vector<int>{0, 1, 2, 3, 4}));
}

BOOST_AUTO_TEST_CASE(nested_submission_runs_inline_too)
{
    futura::InlineExecutor executor;
    std::vector<std::string> trace;
    auto outer = executor.submit([&] {
        trace.emplace_back("outer begins");
        auto inner = executor.submit([&] {
            trace.emplace_back("inner");
            return 2;
        });
        trace.emplace_back("outer ends");
        return inner.result() + 1;
    });
    BOOST_TEST(outer.result() == 3);
    BOOST_TEST(trace == (std::vector<std::string>{"outer begins", "inner", "outer ends"}));
}

BOOST_AUTO_TEST_CASE(done_callback_added_after_submit_runs_at_once)
{
    futura::InlineExecutor executor;
    auto future = executor.submit(square, 4);
    int seen = 0;
    future.add_done_callback([&seen](const futura::Future<int>& f) { seen = f.result(); });
    BOOST_TEST(seen == 16);
}

BOOST_AUTO_TEST_CASE(map_with_buffersize_runs_calls_as_results_are_read)
{
    futura::InlineExecutor executor;
    int calls = 0;
    auto results = executor.map(
        [&calls](int x) {
            ++calls;
            return x;
        },
        std::vector{0, 1, 2, 3, 4}, {.buffersize = 1});
    BOOST_TEST(calls == 1);
    auto it = results.begin();
    BOOST_TEST(*it == 0);
    BOOST_TEST(calls <= 2);
    ++it;
    BOOST_TEST(*it == 1);
    BOOST_TEST(calls <= 3);
}

BOOST_AUTO_TEST_CASE(max_workers_is_one)
{
    futura::InlineExecutor executor;
    BOOST_TEST(executor.max_workers() == 1U);
}

BOOST_AUTO_TEST_CASE(stats_are_exact_at_once)
{
    // With no other thread involved, the counters are exact after every call, not only after
    // shutdown.
    futura::InlineExecutor executor;
    (void)executor.submit(square, 1);
    (void)executor.submit(divide, 1, 0);
    (void)executor.submit(square, 2);
    const auto stats = executor.stats();
    BOOST_TEST(stats.submitted == 3U);
    BOOST_TEST(stats.completed == 2U);
    BOOST_TEST(stats.failed == 1U);
    BOOST_TEST(stats.cancelled == 0U);
    BOOST_TEST(stats.queued == 0U);
    BOOST_TEST(stats.running == 0U);
}

BOOST_AUTO_TEST_CASE(stats_count_a_running_call)
{
    futura::InlineExecutor executor;
    futura::ExecutorStats during;
    (void)executor.submit([&] { during = executor.stats(); });
    BOOST_TEST(during.running == 1U);
    BOOST_TEST(during.submitted == 1U);
    BOOST_TEST(executor.stats().running == 0U);
}

BOOST_AUTO_TEST_CASE(submit_after_shutdown_throws_and_runs_nothing)
{
    futura::InlineExecutor executor;
    executor.shutdown({.wait = false, .cancel_futures = true});
    bool ran = false;
    BOOST_CHECK_THROW((void)executor.submit([&ran] { ran = true; }), futura::ShutdownError);
    BOOST_TEST(!ran);
    BOOST_TEST(executor.stats().submitted == 0U);
}

BOOST_AUTO_TEST_CASE(concurrent_submitters_each_run_their_own_calls)
{
    futura::InlineExecutor executor;
    constexpr int threads = 4;
    constexpr int per_thread = 200;
    std::atomic<int> in_own_thread{0};
    std::latch start(threads);
    {
        std::vector<std::jthread> submitters;
        for (int t = 0; t < threads; ++t) {
            submitters.emplace_back([&] {
                start.arrive_and_wait();
                const auto me = std::this_thread::get_id();
                for (int i = 0; i < per_thread; ++i) {
                    auto future = executor.submit([] { return std::this_thread::get_id(); });
                    in_own_thread += future.result() == me ? 1 : 0;
                }
            });
        }
    }
    BOOST_TEST(in_own_thread.load() == threads * per_thread);
    BOOST_TEST(executor.stats().submitted == static_cast<std::size_t>(threads * per_thread));
    BOOST_TEST(executor.stats().completed == static_cast<std::size_t>(threads * per_thread));
}

BOOST_AUTO_TEST_SUITE_END()
