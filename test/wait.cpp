// futura::wait over futures of one executor, of several, and of promises.
//
// Ported from CPython's Lib/test/test_concurrent_futures/test_wait.py (WaitTests, run there once
// per executor: here a typed test per factory of support.hpp), plus what C++ adds (ranges,
// initializer lists, input order of the result).
#include <futura/wait.hpp>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <deque>
#include <latch>
#include <list>
#include <ranges>
#include <set>
#include <span>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <unordered_set>
#include <vector>

#include "support.hpp"

using namespace futura_test;
using namespace std::chrono_literals;

namespace {

using Futures = std::vector<futura::Future<int>>;

futura::Future<void> ready_void()
{
    futura::Promise<void> promise;
    promise.set_result();
    return promise.get_future();
}

/// Whether `got` holds exactly the futures of `expected`, in that order.
bool same(const Futures& got, const Futures& expected) { return got == expected; }

} // namespace

BOOST_AUTO_TEST_SUITE(wait)

// ---------------------------------------------------------------------------------------------
// CPython's WaitTests, once per executor. Futures that must stay pending come from promises, so
// that the suite also runs on executors that complete every call in submit.

BOOST_AUTO_TEST_CASE_TEMPLATE(duplicates_are_counted_once, Factory, ExecutorFactories)
{
    // test_20369
    const auto owner = Factory::make(2);
    auto future = owner->submit(mul, 1, 2);
    auto [done, not_done] =
        futura::wait(Futures{future, future}, {.return_when = futura::ReturnWhen::all_completed});
    BOOST_TEST(same(done, {future}));
    BOOST_TEST(not_done.empty());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(first_completed_returns_the_finished_future, Factory,
                              ExecutorFactories)
{
    // test_first_completed
    const auto owner = Factory::make(2);
    futura::Promise<int> never;
    const auto pending = never.get_future();
    auto future1 = owner->submit(mul, 21, 2);
    auto [done, not_done] = futura::wait(Futures{pending, future1},
                                         {.return_when = futura::ReturnWhen::first_completed});
    BOOST_TEST(same(done, {future1}));
    BOOST_TEST(same(not_done, {pending}));
    BOOST_TEST(future1.result() == 42);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(first_completed_with_some_already_completed, Factory,
                              ExecutorFactories)
{
    // test_first_completed_some_already_completed
    const auto owner = Factory::make(2);
    const auto cancelled = cancelled_future<int>();
    const auto successful = owner->submit(mul, 6, 7);
    successful.wait();
    futura::Promise<int> never;
    const auto pending = never.get_future();
    auto [done, not_done] = futura::wait(Futures{cancelled, successful, pending},
                                         {.return_when = futura::ReturnWhen::first_completed});
    BOOST_TEST(same(done, {cancelled, successful}));
    BOOST_TEST(same(not_done, {pending}));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(first_exception_returns_once_one_fails, Factory, ExecutorFactories)
{
    // test_first_exception: future1 succeeds, then future2 fails; future3 never finishes.
    const auto owner = Factory::make(2);
    auto future1 = owner->submit(mul, 2, 21);
    futura::Promise<int> raiser;
    const auto future2 = raiser.get_future();
    futura::Promise<int> never;
    const auto future3 = never.get_future();
    std::jthread wait_for_future1([&] {
        future1.wait();
        raiser.set_exception(std::make_exception_ptr(std::runtime_error("this is an exception")));
    });
    auto [done, not_done] = futura::wait(Futures{future1, future2, future3},
                                         {.return_when = futura::ReturnWhen::first_exception});
    BOOST_TEST(same(done, {future1, future2}));
    BOOST_TEST(same(not_done, {future3}));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(first_exception_with_some_already_complete, Factory,
                              ExecutorFactories)
{
    // test_first_exception_some_already_complete
    const auto owner = Factory::make(2);
    const auto successful = ready_future(42);
    const auto cancelled = cancelled_future<int>();
    auto future1 = owner->submit(divide, 21, 0);
    futura::Promise<int> never;
    const auto future2 = never.get_future();
    auto [done, not_done] = futura::wait(Futures{successful, cancelled, future1, future2},
                                         {.return_when = futura::ReturnWhen::first_exception});
    BOOST_TEST(same(done, {successful, cancelled, future1}));
    BOOST_TEST(same(not_done, {future2}));
    BOOST_CHECK_THROW(future1.result(), std::domain_error);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(first_exception_with_one_already_failed, Factory, ExecutorFactories)
{
    // test_first_exception_one_already_failed
    const auto owner = Factory::make(2);
    auto failed = owner->submit(divide, 1, 0);
    failed.wait();
    futura::Promise<int> never;
    const auto pending = never.get_future();
    auto [done, not_done] = futura::wait(Futures{failed, pending},
                                         {.return_when = futura::ReturnWhen::first_exception});
    BOOST_TEST(same(done, {failed}));
    BOOST_TEST(same(not_done, {pending}));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(all_completed_waits_for_every_future, Factory, ExecutorFactories)
{
    // test_all_completed
    const auto owner = Factory::make(2);
    const auto successful = ready_future(42);
    const auto cancelled = cancelled_future<int>();
    const auto failed =
        failed_future<int>(std::system_error(std::make_error_code(std::errc::io_error)));
    auto future1 = owner->submit(divide, 2, 0);
    auto future2 = owner->submit(mul, 2, 21);
    const Futures all{successful, cancelled, failed, future1, future2};
    auto [done, not_done] = futura::wait(all, {.return_when = futura::ReturnWhen::all_completed});
    BOOST_TEST(same(done, all));
    BOOST_TEST(not_done.empty());
    // all_completed is the default.
    auto [done2, not_done2] = futura::wait(all);
    BOOST_TEST(same(done2, all));
    BOOST_TEST(not_done2.empty());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(timeout_returns_what_is_done_without_throwing, Factory,
                              ExecutorFactories)
{
    // test_timeout
    const auto owner = Factory::make(2);
    const auto cancelled = cancelled_future<int>();
    const auto failed = owner->submit(divide, 1, 0);
    const auto successful = owner->submit(mul, 6, 7);
    failed.wait();
    successful.wait();
    futura::Promise<int> never;
    const auto pending = never.get_future();
    const auto start = Clock::now();
    futura::WaitResult<int> result;
    BOOST_CHECK_NO_THROW(result = futura::wait(Futures{cancelled, failed, successful, pending},
                                               {.timeout = expected_timeout,
                                                .return_when = futura::ReturnWhen::all_completed}));
    BOOST_TEST((Clock::now() - start >= expected_timeout));
    BOOST_TEST(same(result.done, {cancelled, failed, successful}));
    BOOST_TEST(same(result.not_done, {pending}));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(pending_calls_race, Factory, ExecutorFactories)
{
    // ThreadPoolWaitTests.test_pending_calls_race: many calls finishing together.
    if constexpr (Factory::concurrent) {
        const auto owner = Factory::make(4);
        FileGate gate;
        FileGate::Opener open_gate(gate);
        std::unordered_set<futura::Future<bool>> futures;
        for (int i = 0; i < 100; ++i) {
            futures.insert(owner->submit(wait_at_gate, gate.path()));
        }
        gate.open();
        auto [done, not_done] = futura::wait(futures, {.timeout = should_happen});
        BOOST_TEST(done.size() == 100U);
        BOOST_TEST(not_done.empty());
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(futures_of_another_executor_mix_in, Factory, ExecutorFactories)
{
    const auto owner = Factory::make(2);
    futura::InlineExecutor inline_executor;
    futura::Promise<int> later;
    const Futures all{owner->submit(square, 2), inline_executor.submit(square, 3),
                      later.get_future()};
    std::jthread setter([&] { later.set_result(16); });
    auto [done, not_done] = futura::wait(all, {.timeout = should_happen});
    BOOST_TEST(same(done, all));
    BOOST_TEST(not_done.empty());
    BOOST_TEST(done[0].result() + done[1].result() + done[2].result() == 4 + 9 + 16);
}

// ---------------------------------------------------------------------------------------------
// Beyond CPython's tests

BOOST_AUTO_TEST_CASE(empty_input_returns_at_once_for_every_return_when)
{
    for (const auto when :
         {futura::ReturnWhen::first_completed, futura::ReturnWhen::first_exception,
          futura::ReturnWhen::all_completed}) {
        auto [done, not_done] = futura::wait(Futures{}, {.return_when = when});
        BOOST_TEST(done.empty());
        BOOST_TEST(not_done.empty());
    }
}

BOOST_AUTO_TEST_CASE(initializer_list_form)
{
    const auto a = ready_future(1);
    futura::Promise<int> never;
    const auto b = never.get_future();
    auto [done, not_done] = futura::wait({a, b}, {.timeout = 0s});
    BOOST_TEST(same(done, {a}));
    BOOST_TEST(same(not_done, {b}));
    auto first = futura::wait({b, a}, {.return_when = futura::ReturnWhen::first_completed});
    BOOST_TEST(same(first.done, {a}));
}

BOOST_AUTO_TEST_CASE(accepts_any_range_of_futures)
{
    const auto a = ready_future(1);
    const auto b = ready_future(2);
    BOOST_TEST(futura::wait(std::list{a, b}).done.size() == 2U);
    BOOST_TEST(futura::wait(std::deque{a, b, a}).done.size() == 2U);
    BOOST_TEST(futura::wait(std::set{a, b}).done.size() == 2U);
    BOOST_TEST(futura::wait(std::unordered_set{a, b}).done.size() == 2U);
    const Futures vector{a, b};
    BOOST_TEST(futura::wait(vector | std::views::take(1)).done.size() == 1U);
    BOOST_TEST(futura::wait(std::span(vector)).done.size() == 2U);
}

BOOST_AUTO_TEST_CASE(parts_keep_the_input_order)
{
    std::vector<futura::Promise<int>> promises(6);
    Futures all;
    for (auto& promise : promises) {
        all.push_back(promise.get_future());
    }
    for (std::size_t i : {4U, 1U, 2U}) {
        promises[i].set_result(0);
    }
    auto [done, not_done] = futura::wait(all, {.timeout = 0s});
    BOOST_TEST(same(done, {all[1], all[2], all[4]}));
    BOOST_TEST(same(not_done, {all[0], all[3], all[5]}));
}

BOOST_AUTO_TEST_CASE(already_done_inputs_return_at_once)
{
    const Futures all{ready_future(1), failed_future<int>(std::runtime_error("x")),
                      cancelled_future<int>()};
    for (const auto when :
         {futura::ReturnWhen::first_completed, futura::ReturnWhen::first_exception,
          futura::ReturnWhen::all_completed}) {
        auto [done, not_done] = futura::wait(all, {.return_when = when});
        BOOST_TEST(same(done, all));
        BOOST_TEST(not_done.empty());
    }
}

BOOST_AUTO_TEST_CASE(cancelled_futures_count_as_done_not_as_exceptions)
{
    futura::Promise<int> never;
    const auto pending = never.get_future();
    const auto cancelled = cancelled_future<int>();
    // first_completed: a cancelled future is done.
    auto first = futura::wait(Futures{pending, cancelled},
                              {.return_when = futura::ReturnWhen::first_completed});
    BOOST_TEST(same(first.done, {cancelled}));
    // first_exception: cancellation is no exception, so it keeps waiting (here: to the timeout).
    auto failed_first = futura::wait(
        Futures{pending, cancelled},
        {.timeout = expected_timeout, .return_when = futura::ReturnWhen::first_exception});
    BOOST_TEST(same(failed_first.done, {cancelled}));
    BOOST_TEST(same(failed_first.not_done, {pending}));
}

BOOST_AUTO_TEST_CASE(cancelling_while_waiting_wakes_the_waiter)
{
    futura::Promise<int> p1;
    futura::Promise<int> p2;
    const Futures all{p1.get_future(), p2.get_future()};
    std::latch start(2);
    std::jthread canceller([&] {
        start.arrive_and_wait();
        all[0].cancel();
        all[1].cancel();
    });
    start.arrive_and_wait();
    auto [done, not_done] = futura::wait(
        all, {.timeout = should_happen, .return_when = futura::ReturnWhen::first_exception});
    BOOST_TEST(same(done, all)); // no exception: it waited for all
    BOOST_TEST(not_done.empty());
}

BOOST_AUTO_TEST_CASE(first_completed_wakes_when_another_thread_completes_one)
{
    std::vector<futura::Promise<int>> promises(5);
    Futures all;
    for (auto& promise : promises) {
        all.push_back(promise.get_future());
    }
    std::latch start(2);
    std::jthread setter([&] {
        start.arrive_and_wait();
        promises[3].set_result(3);
    });
    start.arrive_and_wait();
    auto [done, not_done] = futura::wait(
        all, {.timeout = should_happen, .return_when = futura::ReturnWhen::first_completed});
    BOOST_TEST(same(done, {all[3]}));
    BOOST_TEST(not_done.size() == 4U);
}

BOOST_AUTO_TEST_CASE(first_exception_without_exceptions_waits_for_all)
{
    std::vector<futura::Promise<int>> promises(4);
    Futures all;
    for (auto& promise : promises) {
        all.push_back(promise.get_future());
    }
    std::latch start(2);
    std::jthread setter([&] {
        start.arrive_and_wait();
        for (int i = 3; i >= 0; --i) {
            promises[static_cast<std::size_t>(i)].set_result(i);
        }
    });
    start.arrive_and_wait();
    auto [done, not_done] = futura::wait(
        all, {.timeout = should_happen, .return_when = futura::ReturnWhen::first_exception});
    BOOST_TEST(same(done, all));
    BOOST_TEST(not_done.empty());
}

BOOST_AUTO_TEST_CASE(first_exception_wakes_on_a_failure_among_successes)
{
    std::vector<futura::Promise<int>> promises(4);
    Futures all;
    for (auto& promise : promises) {
        all.push_back(promise.get_future());
    }
    std::latch start(2);
    std::jthread setter([&] {
        start.arrive_and_wait();
        promises[0].set_result(0);
        promises[2].set_exception(std::make_exception_ptr(std::runtime_error("boom")));
    });
    start.arrive_and_wait();
    auto [done, not_done] = futura::wait(
        all, {.timeout = should_happen, .return_when = futura::ReturnWhen::first_exception});
    BOOST_TEST(same(done, {all[0], all[2]}));
    BOOST_TEST(same(not_done, {all[1], all[3]}));
}

BOOST_AUTO_TEST_CASE(timeout_is_one_deadline_for_all_futures)
{
    // Three pending futures and one timeout: the wait ends after about one timeout, not three.
    std::vector<futura::Promise<int>> promises(3);
    Futures all;
    for (auto& promise : promises) {
        all.push_back(promise.get_future());
    }
    constexpr auto timeout = 200ms;
    const auto start = Clock::now();
    auto [done, not_done] = futura::wait(all, {.timeout = timeout});
    const auto elapsed = Clock::now() - start;
    BOOST_TEST(done.empty());
    BOOST_TEST(not_done.size() == 3U);
    BOOST_TEST((elapsed >= timeout));
    BOOST_TEST((elapsed < 3 * timeout - 50ms));
}

BOOST_AUTO_TEST_CASE(zero_and_negative_timeouts_poll)
{
    futura::Promise<int> never;
    const Futures all{ready_future(1), never.get_future()};
    for (const auto timeout :
         {std::chrono::duration<double>(0), std::chrono::duration<double>(-1)}) {
        for (const auto when :
             {futura::ReturnWhen::first_exception, futura::ReturnWhen::all_completed}) {
            auto [done, not_done] = futura::wait(all, {.timeout = timeout, .return_when = when});
            BOOST_TEST(same(done, {all[0]}));
            BOOST_TEST(same(not_done, {all[1]}));
        }
    }
}

BOOST_AUTO_TEST_CASE(many_futures_completed_concurrently)
{
    constexpr int count = 1000;
    std::vector<futura::Promise<int>> promises(count);
    Futures all;
    for (auto& promise : promises) {
        all.push_back(promise.get_future());
    }
    std::latch start(3);
    {
        std::jthread evens([&] {
            start.arrive_and_wait();
            for (std::size_t i = 0; i < count; i += 2) {
                promises[i].set_result(1);
            }
        });
        std::jthread odds([&] {
            start.arrive_and_wait();
            for (std::size_t i = 1; i < count; i += 2) {
                promises[i].set_result(1);
            }
        });
        start.arrive_and_wait();
        auto first = futura::wait(
            all, {.timeout = should_happen, .return_when = futura::ReturnWhen::first_completed});
        BOOST_TEST(!first.done.empty());
        auto [done, not_done] = futura::wait(all, {.timeout = should_happen});
        BOOST_TEST(done.size() == static_cast<std::size_t>(count));
        BOOST_TEST(not_done.empty());
    }
}

BOOST_AUTO_TEST_CASE(void_futures)
{
    futura::Promise<void> promise;
    const std::vector<futura::Future<void>> all{promise.get_future(), ready_void()};
    auto first = futura::wait(all, {.return_when = futura::ReturnWhen::first_completed});
    BOOST_TEST((first.done == std::vector{all[1]}));
    promise.set_result();
    BOOST_TEST(futura::wait(all).done.size() == 2U);
}

BOOST_AUTO_TEST_CASE(future_without_state_throws_invalid_state)
{
    BOOST_CHECK_THROW((void)futura::wait(Futures{ready_future(1), futura::Future<int>()}),
                      futura::InvalidStateError);
}

BOOST_AUTO_TEST_SUITE_END()
