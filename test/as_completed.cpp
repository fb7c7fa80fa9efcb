// futura::as_completed: each distinct future once, in the order they finish.
//
// Ported from CPython's Lib/test/test_concurrent_futures/test_as_completed.py
// (AsCompletedTests, run there once per executor: here a typed test per factory of support.hpp).
#include <futura/as_completed.hpp>
#include <futura/thread_pool_executor.hpp>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <iterator>
#include <latch>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "support.hpp"

using namespace futura_test;
using namespace std::chrono_literals;

namespace {

using Futures = std::vector<futura::Future<int>>;

static_assert(std::ranges::input_range<futura::AsCompleted<int>>);
static_assert(std::input_iterator<futura::AsCompleted<int>::iterator>);
static_assert(std::sentinel_for<std::default_sentinel_t, futura::AsCompleted<int>::iterator>);
static_assert(
    std::same_as<std::ranges::range_value_t<futura::AsCompleted<int>>, futura::Future<int>>);

/// Everything the range yields until it ends or throws; `error` gets what it threw.
template <class Range>
Futures collect(Range&& range, std::string* error = nullptr)
{
    Futures yielded;
    try {
        for (const auto& future : range) {
            yielded.push_back(future);
        }
    } catch (const futura::TimeoutError& e) {
        if (error == nullptr) {
            throw;
        }
        *error = e.what();
    }
    return yielded;
}

std::set<futura::Future<int>> as_set(const Futures& futures)
{
    return {futures.begin(), futures.end()};
}

} // namespace

BOOST_AUTO_TEST_SUITE(as_completed)

// ---------------------------------------------------------------------------------------------
// CPython's AsCompletedTests, once per executor.

BOOST_AUTO_TEST_CASE_TEMPLATE(yields_every_future, Factory, ExecutorFactories)
{
    // test_no_timeout
    const auto owner = Factory::make(2);
    const Futures all{
        cancelled_future<int>(),
        failed_future<int>(std::system_error(std::make_error_code(std::errc::io_error))),
        ready_future(42), owner->submit(mul, 2, 21), owner->submit(mul, 7, 6)};
    const auto yielded = collect(futura::as_completed(all));
    BOOST_TEST(yielded.size() == all.size());
    BOOST_TEST((as_set(yielded) == as_set(all)));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(future_times_out, Factory, ExecutorFactories)
{
    // test_future_times_out: the finished ones are yielded, then TimeoutError.
    const auto owner = Factory::make(2);
    const Futures already_completed{cancelled_future<int>(),
                                    failed_future<int>(std::runtime_error("x")),
                                    owner->submit(mul, 6, 7)};
    already_completed.back().wait();
    futura::Promise<int> never;
    for (const auto timeout : {0ms, 100ms}) {
        Futures all = already_completed;
        all.push_back(never.get_future());
        std::string error;
        const auto yielded = collect(futura::as_completed(all, timeout), &error);
        BOOST_TEST((as_set(yielded) == as_set(already_completed)));
        BOOST_TEST(yielded.size() == 3U);
        BOOST_TEST(error.find("1 (of 4) futures unfinished") != std::string::npos, error);
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(duplicate_futures_are_yielded_once, Factory, ExecutorFactories)
{
    // test_duplicate_futures
    const auto owner = Factory::make(2);
    const auto future = owner->submit(sleep_then_return, 20);
    const auto yielded = collect(futura::as_completed(Futures(3, future)));
    BOOST_TEST(yielded.size() == 1U);
    BOOST_TEST((yielded.front() == future));
    BOOST_TEST(futura::as_completed(Futures(3, future)).size() == 1U);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(timeout_message_names_how_many_are_unfinished, Factory,
                              ExecutorFactories)
{
    // test_correct_timeout_exception_msg
    const auto owner = Factory::make(2);
    futura::Promise<int> pending;
    futura::Promise<int> running;
    running.set_running_or_notify_cancel();
    const auto successful = owner->submit(square, 3);
    successful.wait();
    const Futures all{cancelled_future<int>(), pending.get_future(), running.get_future(),
                      successful};
    std::string error;
    (void)collect(futura::as_completed(all, 0s), &error);
    BOOST_TEST(error.find("2 (of 4) futures unfinished") != std::string::npos, error);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(futures_of_another_executor_mix_in, Factory, ExecutorFactories)
{
    const auto owner = Factory::make(2);
    futura::InlineExecutor inline_executor;
    futura::Promise<int> later;
    const Futures all{owner->submit(square, 2), inline_executor.submit(square, 3),
                      later.get_future()};
    std::jthread setter([&] { later.set_result(16); });
    int sum = 0;
    for (const auto& future : futura::as_completed(all, should_happen)) {
        sum += future.result();
    }
    BOOST_TEST(sum == 4 + 9 + 16);
}

// ---------------------------------------------------------------------------------------------
// Order

BOOST_AUTO_TEST_CASE(already_finished_futures_come_first_in_input_order)
{
    futura::Promise<int> a;
    futura::Promise<int> c;
    const auto b = ready_future(2);
    const auto d = cancelled_future<int>();
    const Futures all{a.get_future(), b, c.get_future(), d};
    auto range = futura::as_completed(all);
    auto it = range.begin();
    BOOST_TEST((*it == b));
    ++it;
    BOOST_TEST((*it == d));
    ++it;
    c.set_result(3);
    BOOST_TEST((*it == all[2]));
    ++it;
    a.set_result(1);
    BOOST_TEST((*it == all[0]));
    ++it;
    BOOST_TEST((it == range.end()));
}

BOOST_AUTO_TEST_CASE(yields_in_completion_order_of_staged_promises)
{
    // One thread completes the promises in a known order, without waiting for the reader: the
    // reader sees exactly that order, whatever the scheduling.
    constexpr std::size_t count = 10;
    const std::vector<std::size_t> order{3, 7, 0, 9, 1, 8, 2, 6, 4, 5};
    std::vector<futura::Promise<int>> promises(count);
    Futures all;
    for (auto& promise : promises) {
        all.push_back(promise.get_future());
    }
    auto range = futura::as_completed(all, should_happen);
    std::latch start(2);
    std::jthread completer([&] {
        start.arrive_and_wait();
        for (std::size_t i : order) {
            promises[i].set_result(static_cast<int>(i));
        }
    });
    start.arrive_and_wait();
    std::vector<std::size_t> seen;
    for (const auto& future : range) {
        seen.push_back(static_cast<std::size_t>(future.result()));
    }
    BOOST_TEST(seen == order);
}

BOOST_AUTO_TEST_CASE(yields_in_completion_order_when_read_step_by_step)
{
    std::vector<futura::Promise<int>> promises(4);
    Futures all;
    for (auto& promise : promises) {
        all.push_back(promise.get_future());
    }
    auto range = futura::as_completed(all);
    auto it = range.begin();
    for (std::size_t i : {2U, 0U, 3U, 1U}) {
        promises[i].set_result(0);
        BOOST_TEST((*it == all[i]));
        ++it;
    }
    BOOST_TEST((it == range.end()));
}

// ---------------------------------------------------------------------------------------------
// Timeouts

BOOST_AUTO_TEST_CASE(zero_timeout_with_all_done_yields_all)
{
    const Futures all{ready_future(1), ready_future(2), cancelled_future<int>()};
    BOOST_TEST(collect(futura::as_completed(all, 0s)).size() == 3U);
    BOOST_TEST(collect(futura::as_completed(all, -1s)).size() == 3U);
}

BOOST_AUTO_TEST_CASE(timeout_counts_from_the_call)
{
    futura::Promise<int> never;
    constexpr auto timeout = 1s;
    auto range = futura::as_completed(Futures{never.get_future()}, timeout);
    const auto called = Clock::now();
    std::this_thread::sleep_until(called + timeout + 100ms);
    const auto read = Clock::now();
    BOOST_CHECK_THROW(*range.begin(), futura::TimeoutError);
    BOOST_TEST((Clock::now() - read < timeout * 0.9)); // not a full timeout from the read
}

BOOST_AUTO_TEST_CASE(timeout_accepts_any_duration_type)
{
    futura::Promise<int> never;
    const Futures all{never.get_future()};
    BOOST_CHECK_THROW(*futura::as_completed(all, std::chrono::microseconds(10)).begin(),
                      futura::TimeoutError);
    BOOST_CHECK_THROW(*futura::as_completed(all, std::chrono::duration<double>(0.001)).begin(),
                      futura::TimeoutError);
    never.set_result(1);
    BOOST_TEST(collect(futura::as_completed(all, std::chrono::hours::max())).size() == 1U);
}

BOOST_AUTO_TEST_CASE(future_finishing_before_the_timeout_is_yielded)
{
    futura::Promise<int> promise;
    const Futures all{promise.get_future()};
    std::latch start(2);
    std::jthread setter([&] {
        start.arrive_and_wait();
        promise.set_result(5);
    });
    start.arrive_and_wait();
    const auto yielded = collect(futura::as_completed(all, should_happen));
    BOOST_REQUIRE(yielded.size() == 1U);
    BOOST_TEST(yielded.front().result() == 5);
}

// ---------------------------------------------------------------------------------------------
// The range

BOOST_AUTO_TEST_CASE(empty_input_yields_nothing)
{
    auto range = futura::as_completed(Futures{});
    BOOST_TEST(range.size() == 0U);
    BOOST_TEST((range.begin() == range.end()));
    auto timed = futura::as_completed(Futures{}, 0s);
    BOOST_TEST((timed.begin() == timed.end()));
}

BOOST_AUTO_TEST_CASE(initializer_list_forms)
{
    const auto a = ready_future(1);
    const auto b = ready_future(2);
    BOOST_TEST(collect(futura::as_completed({a, b})).size() == 2U);
    BOOST_TEST(collect(futura::as_completed({a, b, a}, 1s)).size() == 2U);
}

BOOST_AUTO_TEST_CASE(dereferencing_twice_gives_the_same_future)
{
    const Futures all{ready_future(1), ready_future(2)};
    auto range = futura::as_completed(all);
    auto it = range.begin();
    const futura::Future<int>& first = *it;
    BOOST_TEST((*it == first));
    BOOST_TEST((&*it == &first));
    BOOST_TEST(it->result() == first.result());
    it++;
    BOOST_TEST((*it != first));
}

BOOST_AUTO_TEST_CASE(incrementing_without_reading_skips_a_future)
{
    const Futures all{ready_future(1), ready_future(2), ready_future(3)};
    auto range = futura::as_completed(all);
    auto it = range.begin();
    ++it;
    ++it;
    BOOST_TEST(it->result() == 3);
    ++it;
    BOOST_TEST((it == range.end()));
}

BOOST_AUTO_TEST_CASE(size_counts_distinct_futures)
{
    const auto a = ready_future(1);
    futura::Promise<int> p;
    BOOST_TEST(futura::as_completed(Futures{a, p.get_future(), a, a}).size() == 2U);
}

BOOST_AUTO_TEST_CASE(yielded_futures_give_their_results_and_exceptions)
{
    const Futures all{ready_future(7), failed_future<int>(std::out_of_range("oops"))};
    int values = 0;
    int errors = 0;
    for (const auto& future : futura::as_completed(all)) {
        try {
            values += future.result();
        } catch (const std::out_of_range&) {
            ++errors;
        }
    }
    BOOST_TEST(values == 7);
    BOOST_TEST(errors == 1);
}

BOOST_AUTO_TEST_CASE(void_futures)
{
    futura::Promise<void> a;
    futura::Promise<void> b;
    const std::vector<futura::Future<void>> all{a.get_future(), b.get_future()};
    b.set_result();
    auto range = futura::as_completed(all);
    auto it = range.begin();
    BOOST_TEST((*it == all[1]));
    ++it;
    a.set_result();
    BOOST_TEST((*it == all[0]));
    BOOST_CHECK_NO_THROW(it->result());
}

BOOST_AUTO_TEST_CASE(destroying_an_unfinished_range_is_safe)
{
    // The range stops watching its futures when destroyed; completing them later must not touch
    // it (the ASan run checks).
    std::vector<futura::Promise<int>> promises(3);
    Futures all;
    for (auto& promise : promises) {
        all.push_back(promise.get_future());
    }
    {
        auto range = futura::as_completed(all);
        promises[0].set_result(0);
        BOOST_TEST((*range.begin() == all[0]));
    }
    {
        auto range = futura::as_completed(all, 1ms);
        BOOST_CHECK_NO_THROW((void)*range.begin()); // the finished one
    }
    promises[1].set_result(1);
    promises[2].set_result(2);
    BOOST_TEST(collect(futura::as_completed(all)).size() == 3U);
}

BOOST_AUTO_TEST_CASE(destroying_a_range_while_futures_complete_concurrently)
{
    for (int round = 0; round < 50; ++round) {
        std::vector<futura::Promise<int>> promises(8);
        Futures all;
        for (auto& promise : promises) {
            all.push_back(promise.get_future());
        }
        std::latch start(2);
        std::jthread completer([&] {
            start.arrive_and_wait();
            for (auto& promise : promises) {
                promise.set_result(1);
            }
        });
        {
            auto range = futura::as_completed(all);
            start.arrive_and_wait();
            (void)*range.begin();
        } // destroyed while the completer may still be running callbacks
    }
}

BOOST_AUTO_TEST_CASE(many_futures_of_a_pool_each_yielded_once)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 3}};
    Futures all;
    for (int i = 0; i < 1000; ++i) {
        all.push_back(pool.submit(square, i));
    }
    const auto yielded = collect(futura::as_completed(all, should_happen));
    BOOST_TEST(yielded.size() == all.size());
    BOOST_TEST((as_set(yielded) == as_set(all)));
}

BOOST_AUTO_TEST_CASE(works_from_inside_a_pool_task)
{
    // With one worker the inner futures can only finish if the waiting task helps.
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    auto outer = pool.submit([&pool] {
        Futures inner;
        for (int i = 1; i <= 5; ++i) {
            inner.push_back(pool.submit(square, i));
        }
        int sum = 0;
        for (const auto& future : futura::as_completed(inner, should_happen)) {
            sum += future.result();
        }
        return sum;
    });
    BOOST_TEST(outer.result(2 * should_happen) == 1 + 4 + 9 + 16 + 25);
}

BOOST_AUTO_TEST_CASE(future_without_state_throws_invalid_state)
{
    BOOST_CHECK_THROW((void)futura::as_completed(Futures{futura::Future<int>()}),
                      futura::InvalidStateError);
}

BOOST_AUTO_TEST_SUITE_END()
