// futura::Future<T> and futura::Promise<T>: every row of the contract's Future table, and
// CPython's FutureTests (Lib/test/test_concurrent_futures/test_future.py) where they apply.
#include <futura/detail/wait_hook.hpp>
#include <futura/future.hpp>
#include <futura/thread_pool_executor.hpp>

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "support.hpp"

using namespace futura_test;
using namespace std::chrono_literals;

namespace {

struct NotAStdException
{
    int code;
};

/// The states of CPython's test_future.py fixtures, made with a Promise.
struct Fixtures
{
    futura::Promise<int> pending_promise;
    futura::Promise<int> running_promise;
    futura::Future<int> pending = pending_promise.get_future();
    futura::Future<int> running = [this] {
        auto future = running_promise.get_future();
        running_promise.set_running_or_notify_cancel();
        return future;
    }();
    futura::Future<int> cancelled = cancelled_future<int>();
    futura::Future<int> failed = failed_future<int>(std::system_error(
        std::make_error_code(std::errc::io_error), "the OSError of CPython's EXCEPTION_FUTURE"));
    futura::Future<int> successful = ready_future(42);
};

} // namespace

BOOST_AUTO_TEST_SUITE(future)

// ---------------------------------------------------------------------------------------------
// State queries (test_cancelled, test_done, test_running)

BOOST_AUTO_TEST_CASE(cancelled_is_true_only_for_cancelled_futures)
{
    Fixtures f;
    BOOST_TEST(!f.pending.cancelled());
    BOOST_TEST(!f.running.cancelled());
    BOOST_TEST(f.cancelled.cancelled());
    BOOST_TEST(!f.failed.cancelled());
    BOOST_TEST(!f.successful.cancelled());
}

BOOST_AUTO_TEST_CASE(done_is_true_for_finished_failed_and_cancelled_futures)
{
    Fixtures f;
    BOOST_TEST(!f.pending.done());
    BOOST_TEST(!f.running.done());
    BOOST_TEST(f.cancelled.done());
    BOOST_TEST(f.failed.done());
    BOOST_TEST(f.successful.done());
}

BOOST_AUTO_TEST_CASE(running_is_true_only_while_running)
{
    Fixtures f;
    BOOST_TEST(!f.pending.running());
    BOOST_TEST(f.running.running());
    BOOST_TEST(!f.cancelled.running());
    BOOST_TEST(!f.failed.running());
    BOOST_TEST(!f.successful.running());
}

BOOST_AUTO_TEST_CASE(state_queries_never_block_on_a_pending_future)
{
    // Another thread hammers the queries on a future nobody completes; if any blocked, the
    // countdown below would not finish before the deadline.
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    Countdown finished(1);
    std::atomic<int> done_seen{0};
    std::jthread prober([&] {
        for (int i = 0; i < 1000; ++i) {
            done_seen += future.done() || future.cancelled() || future.running() ? 1 : 0;
        }
        finished.count_down();
    });
    BOOST_TEST(finished.wait());
    BOOST_TEST(done_seen.load() == 0);
    promise.set_result(1);
}

// ---------------------------------------------------------------------------------------------
// result()

BOOST_AUTO_TEST_CASE(result_returns_the_value)
{
    BOOST_TEST(ready_future(42).result() == 42);
    const auto future = ready_future(std::string("forty-two"));
    BOOST_TEST(future.result() == "forty-two");
}

BOOST_AUTO_TEST_CASE(result_can_be_called_many_times)
{
    const auto future = ready_future(std::string("again"));
    for (int i = 0; i < 3; ++i) {
        BOOST_TEST(future.result() == "again");
    }
    // On an lvalue it returns a reference to the one stored value.
    BOOST_TEST(&future.result() == &future.result());
}

BOOST_AUTO_TEST_CASE(result_rethrows_the_task_exception_with_its_own_type)
{
    auto future = failed_future<int>(std::out_of_range("index 7"));
    BOOST_CHECK_EXCEPTION(future.result(), std::out_of_range, [](const std::out_of_range& e) {
        return std::string(e.what()) == "index 7";
    });
    // ... every time, and through a copy.
    const auto copy = future;
    BOOST_CHECK_THROW(copy.result(), std::out_of_range);
    BOOST_CHECK_THROW(future.result(std::chrono::seconds(1)), std::out_of_range);
}

BOOST_AUTO_TEST_CASE(result_rethrows_exceptions_not_derived_from_std_exception)
{
    auto future = failed_future<int>(NotAStdException{7});
    BOOST_CHECK_EXCEPTION(future.result(), NotAStdException,
                          [](const NotAStdException& e) { return e.code == 7; });
}

BOOST_AUTO_TEST_CASE(result_of_a_cancelled_future_throws_cancelled_error)
{
    auto future = cancelled_future<int>();
    BOOST_CHECK_THROW(future.result(), futura::CancelledError);
    BOOST_CHECK_THROW(future.result(0s), futura::CancelledError);
    BOOST_CHECK_THROW(std::move(future).result(), futura::CancelledError);
}

BOOST_AUTO_TEST_CASE(result_with_zero_timeout_reports_each_state) // test_result_with_timeout
{
    Fixtures f;
    BOOST_CHECK_THROW(f.pending.result(0s), futura::TimeoutError);
    BOOST_CHECK_THROW(f.running.result(0s), futura::TimeoutError);
    BOOST_CHECK_THROW(f.cancelled.result(0s), futura::CancelledError);
    BOOST_CHECK_THROW(f.failed.result(0s), std::system_error);
    BOOST_TEST(f.successful.result(0s) == 42);
}

BOOST_AUTO_TEST_CASE(result_timeout_accepts_any_duration_type)
{
    futura::Promise<int> promise;
    const auto pending = promise.get_future();
    BOOST_CHECK_THROW(pending.result(std::chrono::nanoseconds(1000)), futura::TimeoutError);
    BOOST_CHECK_THROW(pending.result(std::chrono::microseconds(10)), futura::TimeoutError);
    BOOST_CHECK_THROW(pending.result(1ms), futura::TimeoutError);
    BOOST_CHECK_THROW(pending.result(std::chrono::duration<double>(0.001)), futura::TimeoutError);
    BOOST_CHECK_THROW(pending.result(std::chrono::duration<float, std::milli>(1.5F)),
                      futura::TimeoutError);
    BOOST_CHECK_THROW(pending.result(std::chrono::duration<unsigned, std::micro>(5U)),
                      futura::TimeoutError);
    BOOST_CHECK_THROW(pending.result(std::chrono::duration<int, std::ratio<1, 3>>(0)),
                      futura::TimeoutError);
    // A negative timeout polls, as in Python.
    BOOST_CHECK_THROW(pending.result(-5s), futura::TimeoutError);

    promise.set_result(3);
    // Huge timeouts must not overflow the deadline into the past.
    BOOST_TEST(pending.result(std::chrono::hours::max()) == 3);
    BOOST_TEST(pending.result(std::chrono::nanoseconds::max()) == 3);
    BOOST_TEST(pending.result(std::chrono::duration<double>(1e300)) == 3);
    BOOST_TEST(pending.result(-1s) == 3);
}

BOOST_AUTO_TEST_CASE(result_with_huge_timeout_waits_for_the_value)
{
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    std::latch waiting(1);
    std::jthread setter([&] {
        waiting.wait();
        promise.set_result(9);
    });
    waiting.count_down();
    BOOST_TEST(future.result(std::chrono::hours::max()) == 9);
}

BOOST_AUTO_TEST_CASE(result_timeout_waits_at_least_the_timeout)
{
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    const auto start = Clock::now();
    BOOST_CHECK_THROW(future.result(expected_timeout), futura::TimeoutError);
    BOOST_TEST((Clock::now() - start >= expected_timeout));
}

BOOST_AUTO_TEST_CASE(result_waits_for_a_value_set_by_another_thread) // test_result_with_success
{
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    std::latch start(2);
    std::jthread setter([&] {
        start.arrive_and_wait();
        promise.set_result(42);
    });
    start.arrive_and_wait();
    BOOST_TEST(future.result(should_happen) == 42);
}

BOOST_AUTO_TEST_CASE(result_wakes_with_cancelled_error_when_cancelled) // test_result_with_cancel
{
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    std::latch start(2);
    std::jthread canceller([&] {
        start.arrive_and_wait();
        future.cancel();
    });
    start.arrive_and_wait();
    BOOST_CHECK_THROW(future.result(should_happen), futura::CancelledError);
}

BOOST_AUTO_TEST_CASE(many_threads_waiting_all_get_the_value)
{
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    constexpr int waiters = 4;
    std::latch start(waiters + 1);
    std::atomic<int> got_value{0};
    {
        std::vector<std::jthread> threads;
        for (int i = 0; i < waiters; ++i) {
            threads.emplace_back([&] {
                start.arrive_and_wait();
                try {
                    got_value += future.result(should_happen) == 5 ? 1 : 0;
                } catch (...) {
                }
            });
        }
        start.arrive_and_wait();
        promise.set_result(5);
    }
    BOOST_TEST(got_value.load() == waiters);
}

BOOST_AUTO_TEST_CASE(rvalue_result_moves_the_value_out)
{
    std::vector<int> big(1000, 7);
    const int* buffer = big.data();
    futura::Future<std::vector<int>> future;
    {
        futura::Promise<std::vector<int>> promise;
        future = promise.get_future();
        promise.set_result(std::move(big));
    } // now the future is the only handle
    const std::vector<int> taken = std::move(future).result();
    BOOST_TEST(taken.size() == 1000U);
    BOOST_TEST(taken.data() == buffer); // moved twice, never copied
}

BOOST_AUTO_TEST_CASE(rvalue_result_copies_while_other_handles_exist)
{
    futura::Promise<std::string> promise;
    auto future = promise.get_future();
    const auto other = future;
    promise.set_result(std::string(100, 'x'));
    const std::string taken = std::move(future).result();
    BOOST_TEST(taken == std::string(100, 'x'));
    BOOST_TEST(other.result() == std::string(100, 'x')); // still there for the other copy
}

namespace {

/// An argument whose destruction takes a while: the executor destroys the call's arguments
/// after completing the future and before letting go of its task.
struct SlowToDestroy
{
    SlowToDestroy() = default;
    SlowToDestroy(const SlowToDestroy&) = default;
    SlowToDestroy(SlowToDestroy&& other) noexcept : armed(std::exchange(other.armed, false)) {}
    SlowToDestroy& operator=(const SlowToDestroy&) = delete;
    SlowToDestroy& operator=(SlowToDestroy&&) = delete;
    ~SlowToDestroy()
    {
        if (armed) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
    bool armed = true;
};

std::vector<int> big_result(const SlowToDestroy& /*slow*/) { return std::vector<int>(1000, 7); }

} // namespace

// The executor's thread completes the future, destroys the call, then lets go of its task: a
// waiter woken in between holds the only handle that may read the value, and moves it out.
// It used to see the executor's reference too and copy (400 MB for W6's result).
BOOST_AUTO_TEST_CASE(rvalue_result_moves_even_before_the_executor_lets_go_of_its_task)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    const int* stored = nullptr;
    auto future = pool.submit(big_result, SlowToDestroy{});
    future.wait();
    stored = future.result().data(); // the stored vector's buffer; the call is still held
    const std::vector<int> taken = std::move(future).result();
    BOOST_TEST(taken.size() == 1000U);
    BOOST_TEST(taken.data() == stored); // moved, not copied
}

BOOST_AUTO_TEST_CASE(move_only_result_is_taken_from_an_rvalue_future)
{
    futura::Promise<std::unique_ptr<int>> promise;
    auto future = promise.get_future();
    promise.set_result(std::make_unique<int>(11));
    // On an lvalue: a reference to the stored pointer.
    const std::unique_ptr<int>& stored = future.result();
    BOOST_TEST(*stored == 11);
    // On an rvalue: the pointer itself.
    std::unique_ptr<int> taken = std::move(future).result();
    BOOST_REQUIRE(taken != nullptr);
    BOOST_TEST(*taken == 11);
}

BOOST_AUTO_TEST_CASE(move_only_result_with_timeout_is_taken_from_an_rvalue_future)
{
    futura::Promise<std::unique_ptr<int>> promise;
    auto future = promise.get_future();
    promise.set_result(std::make_unique<int>(12));
    std::unique_ptr<int> taken = std::move(future).result(1s);
    BOOST_REQUIRE(taken != nullptr);
    BOOST_TEST(*taken == 12);
}

BOOST_AUTO_TEST_CASE(void_future_result_returns_or_rethrows)
{
    futura::Promise<void> promise;
    const auto future = promise.get_future();
    static_assert(std::is_void_v<decltype(future.result())>);
    BOOST_CHECK_THROW(future.result(0s), futura::TimeoutError);
    promise.set_result();
    BOOST_CHECK_NO_THROW(future.result());
    BOOST_CHECK_NO_THROW(future.result(0s));
    BOOST_TEST(!future.exception());

    auto failed = failed_future<void>(std::logic_error("void failed"));
    BOOST_CHECK_THROW(failed.result(), std::logic_error);
    BOOST_CHECK_THROW(cancelled_future<void>().result(), futura::CancelledError);
}

// ---------------------------------------------------------------------------------------------
// exception()

BOOST_AUTO_TEST_CASE(exception_with_zero_timeout_reports_each_state) // test_exception_with_timeout
{
    Fixtures f;
    BOOST_CHECK_THROW((void)f.pending.exception(0s), futura::TimeoutError);
    BOOST_CHECK_THROW((void)f.running.exception(0s), futura::TimeoutError);
    BOOST_CHECK_THROW((void)f.cancelled.exception(0s), futura::CancelledError);
    const auto error = f.failed.exception(0s);
    BOOST_REQUIRE(error);
    BOOST_CHECK_THROW(std::rethrow_exception(error), std::system_error);
    BOOST_TEST(!f.successful.exception(0s));
}

BOOST_AUTO_TEST_CASE(exception_returns_the_exception_that_was_set)
{
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    const auto error = std::make_exception_ptr(std::runtime_error("the error"));
    promise.set_exception(error);
    BOOST_TEST((future.exception() == error));
    BOOST_TEST((future.exception() == error)); // any number of times
    BOOST_CHECK_THROW(future.result(), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(exception_of_cancelled_future_throws_cancelled_error)
{
    const auto future = cancelled_future<int>();
    BOOST_CHECK_THROW((void)future.exception(), futura::CancelledError);
}

BOOST_AUTO_TEST_CASE(exception_waits_for_another_thread) // test_exception_with_success
{
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    std::latch start(2);
    std::jthread setter([&] {
        start.arrive_and_wait();
        promise.set_exception(std::make_exception_ptr(std::ios_base::failure("io")));
    });
    start.arrive_and_wait();
    const auto error = future.exception(should_happen);
    BOOST_REQUIRE(error);
    BOOST_CHECK_THROW(std::rethrow_exception(error), std::ios_base::failure);
}

BOOST_AUTO_TEST_CASE(exception_without_timeout_returns_null_on_success)
{
    const auto future = ready_future(1);
    BOOST_TEST(!future.exception());
}

// ---------------------------------------------------------------------------------------------
// cancel() (test_cancel)

BOOST_AUTO_TEST_CASE(cancel_a_pending_future_returns_true_and_cancels_it)
{
    Fixtures f;
    BOOST_TEST(f.pending.cancel());
    BOOST_TEST(f.pending.cancelled());
    BOOST_TEST(f.pending.done());
    BOOST_TEST(!f.pending.running());
}

BOOST_AUTO_TEST_CASE(cancel_an_already_cancelled_future_returns_true)
{
    Fixtures f;
    BOOST_TEST(f.cancelled.cancel());
    BOOST_TEST(f.cancelled.cancel());
    BOOST_TEST(f.cancelled.cancelled());
}

BOOST_AUTO_TEST_CASE(cancel_a_running_future_returns_false_and_leaves_it_running)
{
    Fixtures f;
    BOOST_TEST(!f.running.cancel());
    BOOST_TEST(f.running.running());
    BOOST_TEST(!f.running.cancelled());
    // It can still be completed.
    f.running_promise.set_result(8);
    BOOST_TEST(f.running.result() == 8);
}

BOOST_AUTO_TEST_CASE(cancel_a_finished_future_returns_false_and_keeps_the_result)
{
    Fixtures f;
    BOOST_TEST(!f.failed.cancel());
    BOOST_TEST(!f.failed.cancelled());
    BOOST_CHECK_THROW(f.failed.result(), std::system_error);
    BOOST_TEST(!f.successful.cancel());
    BOOST_TEST(!f.successful.cancelled());
    BOOST_TEST(f.successful.result() == 42);
}

BOOST_AUTO_TEST_CASE(cancel_through_a_copy_cancels_every_copy)
{
    futura::Promise<int> promise;
    const auto a = promise.get_future();
    const auto b = a;
    BOOST_TEST(b.cancel());
    BOOST_TEST(a.cancelled());
    BOOST_CHECK_THROW(a.result(), futura::CancelledError);
}

BOOST_AUTO_TEST_CASE(cancel_races_with_completion_one_winner)
{
    // Cancel and set_result started together: exactly one of them takes effect, and the future
    // ends consistent with the one that won.
    for (int round = 0; round < 200; ++round) {
        futura::Promise<int> promise;
        const auto future = promise.get_future();
        std::latch start(2);
        bool set_ok = false;
        {
            std::jthread setter([&] {
                start.arrive_and_wait();
                try {
                    promise.set_result(round);
                    set_ok = true;
                } catch (const futura::InvalidStateError&) {
                }
            });
            start.arrive_and_wait();
            const bool cancelled = future.cancel();
            setter.join();
            BOOST_TEST(cancelled != set_ok);
        }
        BOOST_TEST(future.done());
        if (set_ok) {
            BOOST_TEST(future.result() == round);
        } else {
            BOOST_TEST(future.cancelled());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// wait(), wait_for()

BOOST_AUTO_TEST_CASE(wait_for_returns_false_until_done_then_true)
{
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    BOOST_TEST(!future.wait_for(0s));
    BOOST_TEST(!future.wait_for(expected_timeout));
    promise.set_result(1);
    BOOST_TEST(future.wait_for(0s));
    BOOST_TEST(future.wait_for(-1s));
    future.wait();
}

BOOST_AUTO_TEST_CASE(wait_returns_once_another_thread_completes)
{
    futura::Promise<void> promise;
    const auto future = promise.get_future();
    std::latch start(2);
    std::jthread setter([&] {
        start.arrive_and_wait();
        promise.set_result();
    });
    start.arrive_and_wait();
    BOOST_TEST(future.wait_for(should_happen));
    future.wait();
    BOOST_TEST(future.done());
}

BOOST_AUTO_TEST_CASE(wait_returns_for_cancelled_and_failed_futures_without_throwing)
{
    BOOST_CHECK_NO_THROW(cancelled_future<int>().wait());
    BOOST_CHECK_NO_THROW(failed_future<int>(std::runtime_error("x")).wait());
    BOOST_TEST(cancelled_future<int>().wait_for(0s));
}

// ---------------------------------------------------------------------------------------------
// add_done_callback (test_done_callback_*)

BOOST_AUTO_TEST_CASE(done_callback_runs_once_done_with_the_result)
{
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    int seen = 0;
    int calls = 0;
    future.add_done_callback([&](const futura::Future<int>& f) {
        seen = f.result();
        ++calls;
    });
    BOOST_TEST(calls == 0);
    promise.set_result(5);
    BOOST_TEST(calls == 1);
    BOOST_TEST(seen == 5);
}

BOOST_AUTO_TEST_CASE(done_callback_receives_the_same_future)
{
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    bool same = false;
    future.add_done_callback([&](futura::Future<int> f) { same = (f == future); });
    promise.set_result(1);
    BOOST_TEST(same);
}

BOOST_AUTO_TEST_CASE(done_callback_sees_the_exception)
{
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    std::string message;
    future.add_done_callback([&](const futura::Future<int>& f) {
        try {
            std::rethrow_exception(f.exception());
        } catch (const std::exception& e) {
            message = e.what();
        }
    });
    promise.set_exception(std::make_exception_ptr(std::runtime_error("test")));
    BOOST_TEST(message == "test");
}

BOOST_AUTO_TEST_CASE(done_callback_runs_on_cancel)
{
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    bool was_cancelled = false;
    future.add_done_callback([&](const futura::Future<int>& f) { was_cancelled = f.cancelled(); });
    BOOST_TEST(future.cancel());
    BOOST_TEST(was_cancelled);
}

BOOST_AUTO_TEST_CASE(done_callback_on_a_done_future_runs_at_once_in_the_caller)
{
    const auto successful = ready_future(5);
    const auto caller = std::this_thread::get_id();
    int seen = 0;
    std::thread::id ran_in;
    successful.add_done_callback([&](const futura::Future<int>& f) {
        seen = f.result();
        ran_in = std::this_thread::get_id();
    });
    BOOST_TEST(seen == 5);
    BOOST_TEST((ran_in == caller));

    bool failed_seen = false;
    failed_future<int>(std::runtime_error("test"))
        .add_done_callback(
            [&](const futura::Future<int>& f) { failed_seen = static_cast<bool>(f.exception()); });
    BOOST_TEST(failed_seen);

    bool cancelled_seen = false;
    cancelled_future<int>().add_done_callback(
        [&](const futura::Future<int>& f) { cancelled_seen = f.cancelled(); });
    BOOST_TEST(cancelled_seen);
}

BOOST_AUTO_TEST_CASE(done_callbacks_run_in_the_order_added)
{
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    std::vector<int> order;
    for (int i = 0; i < 5; ++i) {
        future.add_done_callback([&order, i] { order.push_back(i); });
    }
    promise.set_result(0);
    BOOST_TEST(order == (std::vector<int>{0, 1, 2, 3, 4}));
}

BOOST_AUTO_TEST_CASE(done_callback_without_parameter_is_accepted)
{
    futura::Promise<void> promise;
    const auto future = promise.get_future();
    int calls = 0;
    future.add_done_callback([&] { ++calls; });
    promise.set_result();
    BOOST_TEST(calls == 1);
}

BOOST_AUTO_TEST_CASE(done_callback_runs_exactly_once)
{
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    int calls = 0;
    future.add_done_callback([&] { ++calls; });
    promise.set_result(1);
    BOOST_CHECK_THROW(promise.set_result(2), futura::InvalidStateError);
    BOOST_TEST(!future.cancel());
    (void)future.result();
    BOOST_TEST(calls == 1);
}

BOOST_AUTO_TEST_CASE(done_callback_exception_is_reported_and_later_callbacks_still_run)
{
    // test_done_callback_raises
    StderrCapture stderr_capture;
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    bool raising_was_called = false;
    bool next_was_called = false;
    future.add_done_callback([&] {
        raising_was_called = true;
        throw std::runtime_error("doh!");
    });
    future.add_done_callback([&] { next_was_called = true; });
    BOOST_CHECK_NO_THROW(promise.set_result(5));
    BOOST_TEST(raising_was_called);
    BOOST_TEST(next_was_called);
    BOOST_TEST(future.result() == 5);
    const auto text = stderr_capture.text();
    BOOST_TEST(text.find("doh!") != std::string::npos, "stderr was: " << text);
    BOOST_TEST(text.find("callback") != std::string::npos, "stderr was: " << text);
}

BOOST_AUTO_TEST_CASE(done_callback_exception_on_a_done_future_is_reported_not_thrown)
{
    // test_done_callback_raises_already_succeeded
    StderrCapture stderr_capture;
    const auto future = ready_future(5);
    BOOST_CHECK_NO_THROW(future.add_done_callback([] { throw std::runtime_error("doh!"); }));
    BOOST_CHECK_NO_THROW(future.add_done_callback([] { throw 42; }));
    const auto text = stderr_capture.text();
    BOOST_TEST(text.find("doh!") != std::string::npos, "stderr was: " << text);
}

BOOST_AUTO_TEST_CASE(done_callback_exception_does_not_break_the_executor)
{
    StderrCapture stderr_capture;
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    Gate gate;
    auto first = pool.submit([&] { return gate.wait(); });
    Gate::Opener open_gate(gate);
    first.add_done_callback([] { throw std::runtime_error("callback failure in a worker"); });
    gate.open();
    BOOST_TEST(first.result(should_happen));
    // The worker that ran the throwing callback keeps working.
    for (int i = 0; i < 10; ++i) {
        BOOST_TEST(pool.submit(square, i).result(should_happen) == i * i);
    }
    pool.shutdown();
    const auto text = stderr_capture.text();
    BOOST_TEST(text.find("callback failure in a worker") != std::string::npos,
               "stderr was: " << text);
}

BOOST_AUTO_TEST_CASE(done_callback_may_add_another_callback_which_runs_at_once)
{
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    std::vector<std::string> order;
    future.add_done_callback([&](const futura::Future<int>& f) {
        order.emplace_back("outer");
        f.add_done_callback([&] { order.emplace_back("inner"); });
        order.emplace_back("outer end");
    });
    promise.set_result(1);
    BOOST_TEST(order == (std::vector<std::string>{"outer", "inner", "outer end"}));
}

BOOST_AUTO_TEST_CASE(done_callback_may_read_the_result_and_drop_the_last_handle)
{
    // The callback holds the only other handle; the future is released during the callback.
    int seen = 0;
    {
        futura::Promise<int> promise;
        auto future = promise.get_future();
        auto keep = std::make_shared<futura::Future<int>>(future);
        future.add_done_callback([&seen, keep]() mutable {
            seen = keep->result();
            keep.reset();
        });
        future = {};
        keep.reset(); // only the callback's copy is left
        promise.set_result(3);
    }
    BOOST_TEST(seen == 3);
}

BOOST_AUTO_TEST_CASE(done_callback_capturing_its_own_future_runs_when_the_promise_is_abandoned)
{
    // A cycle (state -> callback -> future -> state) that must be broken by completion, here
    // by the promise's destructor; the leak checker of the ASan run would see it otherwise.
    bool ran = false;
    {
        auto promise = std::make_unique<futura::Promise<int>>();
        auto future = promise->get_future();
        future.add_done_callback([future, &ran] { ran = future.done(); });
        promise.reset();
    }
    BOOST_TEST(ran);
}

BOOST_AUTO_TEST_CASE(done_callbacks_added_concurrently_with_completion_each_run_once)
{
    constexpr int threads = 4;
    constexpr int per_thread = 200;
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    std::atomic<int> calls{0};
    std::latch start(threads + 1);
    {
        std::vector<std::jthread> adders;
        for (int t = 0; t < threads; ++t) {
            adders.emplace_back([&] {
                start.arrive_and_wait();
                for (int i = 0; i < per_thread; ++i) {
                    future.add_done_callback([&calls] { ++calls; });
                }
            });
        }
        start.arrive_and_wait();
        promise.set_result(1);
    }
    BOOST_TEST(calls.load() == threads * per_thread);
}

BOOST_AUTO_TEST_CASE(done_callback_runs_in_the_completing_thread)
{
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    std::thread::id ran_in;
    future.add_done_callback([&] { ran_in = std::this_thread::get_id(); });
    std::thread::id setter_id;
    std::jthread setter([&] {
        setter_id = std::this_thread::get_id();
        promise.set_result(1);
    });
    setter.join();
    BOOST_TEST((ran_in == setter_id));
}

// ---------------------------------------------------------------------------------------------
// Promise

BOOST_AUTO_TEST_CASE(
    set_result_twice_throws_invalid_state_and_keeps_the_first) // test_multiple_set_result
{
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    promise.set_result(1);
    BOOST_CHECK_THROW(promise.set_result(2), futura::InvalidStateError);
    BOOST_CHECK_THROW(promise.set_exception(std::make_exception_ptr(std::runtime_error("x"))),
                      futura::InvalidStateError);
    BOOST_TEST(future.done());
    BOOST_TEST(future.result() == 1);
}

BOOST_AUTO_TEST_CASE(
    set_exception_twice_throws_invalid_state_and_keeps_the_first) // test_multiple_set_exception
{
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    const auto first = std::make_exception_ptr(std::invalid_argument("first"));
    promise.set_exception(first);
    BOOST_CHECK_THROW(promise.set_exception(std::make_exception_ptr(std::runtime_error("second"))),
                      futura::InvalidStateError);
    BOOST_CHECK_THROW(promise.set_result(3), futura::InvalidStateError);
    BOOST_TEST((future.exception() == first));
}

BOOST_AUTO_TEST_CASE(set_result_after_cancel_throws_invalid_state)
{
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    BOOST_TEST(future.cancel());
    BOOST_CHECK_THROW(promise.set_result(1), futura::InvalidStateError);
    BOOST_CHECK_THROW(promise.set_exception(std::make_exception_ptr(std::runtime_error("x"))),
                      futura::InvalidStateError);
    BOOST_TEST(future.cancelled());
}

BOOST_AUTO_TEST_CASE(set_running_or_notify_cancel_returns_false_when_cancelled)
{
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    future.cancel();
    BOOST_TEST(!promise.set_running_or_notify_cancel());
    BOOST_TEST(future.cancelled());
}

BOOST_AUTO_TEST_CASE(set_running_or_notify_cancel_marks_running_then_result_completes)
{
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    BOOST_TEST(promise.set_running_or_notify_cancel());
    BOOST_TEST(future.running());
    BOOST_TEST(!future.done());
    BOOST_TEST(!future.cancel());
    promise.set_result(4);
    BOOST_TEST(!future.running());
    BOOST_TEST(future.result() == 4);
}

BOOST_AUTO_TEST_CASE(set_running_or_notify_cancel_twice_or_after_done_throws_invalid_state)
{
    futura::Promise<int> promise;
    BOOST_TEST(promise.set_running_or_notify_cancel());
    BOOST_CHECK_THROW(promise.set_running_or_notify_cancel(), futura::InvalidStateError);
    promise.set_result(1);
    BOOST_CHECK_THROW(promise.set_running_or_notify_cancel(), futura::InvalidStateError);

    futura::Promise<int> finished;
    finished.set_result(2);
    BOOST_CHECK_THROW(finished.set_running_or_notify_cancel(), futura::InvalidStateError);
}

BOOST_AUTO_TEST_CASE(destroying_a_promise_without_result_fails_the_future_with_broken_executor)
{
    futura::Future<int> future;
    {
        futura::Promise<int> promise;
        future = promise.get_future();
    }
    BOOST_TEST(future.done());
    BOOST_CHECK_THROW(future.result(), futura::BrokenExecutor);

    futura::Future<void> running;
    {
        futura::Promise<void> promise;
        running = promise.get_future();
        promise.set_running_or_notify_cancel();
    }
    BOOST_CHECK_THROW(running.result(), futura::BrokenExecutor);
}

BOOST_AUTO_TEST_CASE(destroying_a_promise_wakes_a_waiter_with_broken_executor)
{
    auto promise = std::make_unique<futura::Promise<int>>();
    const auto future = promise->get_future();
    std::latch start(2);
    std::jthread dropper([&] {
        start.arrive_and_wait();
        promise.reset();
    });
    start.arrive_and_wait();
    BOOST_CHECK_THROW(future.result(should_happen), futura::BrokenExecutor);
}

BOOST_AUTO_TEST_CASE(destroying_a_promise_keeps_a_result_or_cancellation)
{
    futura::Future<int> finished;
    futura::Future<int> cancelled;
    {
        futura::Promise<int> a;
        finished = a.get_future();
        a.set_result(6);
        futura::Promise<int> b;
        cancelled = b.get_future();
        cancelled.cancel();
    }
    BOOST_TEST(finished.result() == 6);
    BOOST_TEST(cancelled.cancelled());
}

BOOST_AUTO_TEST_CASE(move_assigning_over_a_pending_promise_abandons_its_future)
{
    futura::Promise<int> target;
    const auto abandoned = target.get_future();
    futura::Promise<int> source;
    const auto kept = source.get_future();
    target = std::move(source);
    BOOST_CHECK_THROW(abandoned.result(0s), futura::BrokenExecutor);
    target.set_result(2);
    BOOST_TEST(kept.result() == 2);
}

BOOST_AUTO_TEST_CASE(moved_from_promise_throws_invalid_state)
{
    futura::Promise<int> promise;
    futura::Promise<int> other = std::move(promise);
    // NOLINTBEGIN(bugprone-use-after-move,clang-analyzer-cplusplus.Move): the point of the test
    BOOST_CHECK_THROW((void)promise.get_future(), futura::InvalidStateError);
    BOOST_CHECK_THROW(promise.set_result(1), futura::InvalidStateError);
    // NOLINTEND(bugprone-use-after-move,clang-analyzer-cplusplus.Move)
    other.set_result(1);
    BOOST_TEST(other.get_future().result() == 1);
}

BOOST_AUTO_TEST_CASE(get_future_many_times_returns_equal_futures)
{
    futura::Promise<int> promise;
    const auto a = promise.get_future();
    const auto b = promise.get_future();
    BOOST_TEST((a == b));
    promise.set_result(1);
    BOOST_TEST(b.result() == 1);
}

BOOST_AUTO_TEST_CASE(set_result_of_move_only_and_constructible_from_arguments)
{
    futura::Promise<std::string> promise;
    const auto future = promise.get_future();
    promise.set_result(3U, 'z'); // constructs the value in place
    BOOST_TEST(future.result() == "zzz");
}

BOOST_AUTO_TEST_CASE(value_whose_constructor_throws_becomes_the_exception)
{
    struct Fussy
    {
        explicit Fussy(int x)
        {
            if (x < 0) {
                throw std::length_error("negative");
            }
        }
    };
    futura::Promise<Fussy> promise;
    const auto future = promise.get_future();
    BOOST_CHECK_NO_THROW(promise.set_result(-1));
    BOOST_CHECK_THROW(future.result(), std::length_error);
}

// ---------------------------------------------------------------------------------------------
// Handles: default-constructed futures, copies, equality, hashing

BOOST_AUTO_TEST_CASE(default_constructed_future_is_not_valid_and_throws_invalid_state)
{
    const futura::Future<int> future;
    BOOST_TEST(!future.valid());
    BOOST_CHECK_THROW(future.result(), futura::InvalidStateError);
    BOOST_CHECK_THROW(future.result(1s), futura::InvalidStateError);
    BOOST_CHECK_THROW((void)future.exception(), futura::InvalidStateError);
    BOOST_CHECK_THROW((void)future.done(), futura::InvalidStateError);
    BOOST_CHECK_THROW((void)future.running(), futura::InvalidStateError);
    BOOST_CHECK_THROW((void)future.cancelled(), futura::InvalidStateError);
    BOOST_CHECK_THROW(future.cancel(), futura::InvalidStateError);
    BOOST_CHECK_THROW(future.wait(), futura::InvalidStateError);
    BOOST_CHECK_THROW(future.wait_for(1s), futura::InvalidStateError);
    BOOST_CHECK_THROW(future.add_done_callback([] {}), futura::InvalidStateError);
    BOOST_CHECK_THROW(futura::Future<void>().result(), futura::InvalidStateError);
}

BOOST_AUTO_TEST_CASE(invalid_state_message_says_what_to_do)
{
    const futura::Future<int> future;
    try {
        (void)future.result();
        BOOST_FAIL("no exception");
    } catch (const futura::InvalidStateError& e) {
        const std::string what = e.what();
        BOOST_TEST(what.find("default-constructed") != std::string::npos, what);
    }
}

BOOST_AUTO_TEST_CASE(moved_from_future_is_not_valid)
{
    auto future = ready_future(1);
    const auto moved = std::move(future);
    BOOST_TEST(moved.valid());
    BOOST_TEST(!future.valid()); // NOLINT(bugprone-use-after-move): the point of the test
    BOOST_TEST(moved.result() == 1);
}

BOOST_AUTO_TEST_CASE(copies_share_one_state)
{
    futura::Promise<int> promise;
    const auto a = promise.get_future();
    auto b = a;
    futura::Future<int> c;
    c = b;
    BOOST_TEST(!a.done());
    promise.set_result(10);
    BOOST_TEST(b.done());
    BOOST_TEST(c.result() == 10);
    BOOST_TEST(&a.result() == &c.result()); // the same stored value
}

BOOST_AUTO_TEST_CASE(futures_compare_equal_when_they_share_a_state)
{
    futura::Promise<int> p1;
    futura::Promise<int> p2;
    const auto a = p1.get_future();
    const auto a2 = a;
    const auto b = p2.get_future();
    BOOST_TEST((a == a2));
    BOOST_TEST((a != b));
    BOOST_TEST((futura::Future<int>() == futura::Future<int>()));
    BOOST_TEST((a != futura::Future<int>()));
    // A strict weak order consistent with ==, so std::set and std::map work too.
    BOOST_TEST(((a < b) != (b < a)));
    BOOST_TEST(!(a < a2));
}

BOOST_AUTO_TEST_CASE(futures_key_an_unordered_map)
{
    // Python's {executor.submit(f, x): x for x in xs}.
    std::vector<futura::Promise<int>> promises(10);
    std::unordered_map<futura::Future<int>, int> inputs;
    for (int i = 0; i < 10; ++i) {
        inputs.emplace(promises[static_cast<std::size_t>(i)].get_future(), i);
    }
    BOOST_TEST(inputs.size() == 10U);
    for (int i = 0; i < 10; ++i) {
        auto& promise = promises[static_cast<std::size_t>(i)];
        const auto copy = promise.get_future();
        BOOST_TEST(std::hash<futura::Future<int>>{}(copy) ==
                   std::hash<futura::Future<int>>{}(promise.get_future()));
        BOOST_REQUIRE(inputs.count(copy) == 1U);
        BOOST_TEST(inputs.at(copy) == i);
        promise.set_result(i * i);
    }
    for (const auto& [future, input] : inputs) {
        BOOST_TEST(future.result() == input * input);
    }
    std::unordered_set<futura::Future<int>> distinct;
    distinct.insert(promises[0].get_future());
    distinct.insert(promises[0].get_future());
    BOOST_TEST(distinct.size() == 1U);
}

BOOST_AUTO_TEST_CASE(future_of_a_pool_task_reports_its_life_cycle)
{
    // The same states, reached by a real task: pending behind a blocker, running, finished.
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    Gate gate;
    Gate inner;
    auto blocker = pool.submit([&] { return gate.wait(); });
    auto task = pool.submit([&] { return inner.wait(); });
    Gate::Opener open_gate(gate);
    Gate::Opener open_inner(inner);
    BOOST_TEST(gate.wait_for_waiters(1));
    BOOST_TEST(!task.running());
    BOOST_TEST(!task.done());
    gate.open();
    BOOST_TEST(inner.wait_for_waiters(1));
    BOOST_TEST(task.running());
    BOOST_TEST(!task.cancel());
    inner.open();
    BOOST_TEST(task.result(should_happen));
    BOOST_TEST(!task.running());
    BOOST_TEST(task.done());
    BOOST_TEST(!task.cancel());
    BOOST_TEST(blocker.result(should_happen));
}

BOOST_AUTO_TEST_CASE(cancelled_pool_task_never_runs)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    Gate gate;
    std::atomic<bool> ran{false};
    auto blocker = pool.submit([&] { return gate.wait(); });
    auto victim = pool.submit([&] { ran = true; });
    Gate::Opener open_gate(gate);
    BOOST_TEST(gate.wait_for_waiters(1));
    BOOST_TEST(victim.cancel());
    BOOST_TEST(victim.cancelled());
    gate.open();
    BOOST_TEST(blocker.result(should_happen));
    pool.shutdown();
    BOOST_TEST(!ran.load());
    BOOST_CHECK_THROW(victim.result(), futura::CancelledError);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------------------------
// The "progress while waiting" hook (detail/wait_hook.hpp), which MPI executors install so that
// a thread waiting for a future picks up its answer itself.

namespace {

/// A hook that completes a promise from the waiting thread, and counts its polls.
struct CompletingHook : futura::detail::WaitHook
{
    futura::Promise<int>* promise = nullptr;
    std::atomic<int> polls{0};
    bool remove_itself = false;

    CompletingHook() { poll = &CompletingHook::run; }

    static void run(futura::detail::WaitHook& self) noexcept
    {
        auto& hook = static_cast<CompletingHook&>(self);
        if (hook.polls.fetch_add(1) == 0 && hook.promise != nullptr) {
            hook.promise->set_result(42);
        }
        if (hook.remove_itself) {
            futura::detail::remove_wait_hook(hook); // as a done callback dropping the transport
        }
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(wait_hook)

BOOST_AUTO_TEST_CASE(a_waiting_thread_polls_the_installed_hook_which_completes_its_future)
{
    // Nobody but the waiting thread's own poll sets the value: result() returns only if the
    // wait polls the hook.
    futura::Promise<int> promise;
    auto future = promise.get_future();
    CompletingHook hook;
    hook.promise = &promise;
    BOOST_TEST_REQUIRE(futura::detail::install_wait_hook(hook));
    BOOST_TEST(future.result() == 42);
    futura::detail::remove_wait_hook(hook);
    BOOST_TEST(hook.polls.load() >= 1);
}

BOOST_AUTO_TEST_CASE(one_hook_at_a_time_and_none_polled_after_its_removal)
{
    CompletingHook first;
    CompletingHook second;
    BOOST_TEST_REQUIRE(futura::detail::install_wait_hook(first));
    BOOST_TEST(!futura::detail::install_wait_hook(second)); // the first keeps polling
    futura::detail::remove_wait_hook(second);               // not installed: nothing happens
    std::atomic<bool> stop{false};
    std::latch started(2);
    std::jthread poller([&] {
        started.arrive_and_wait();
        while (!stop.load()) {
            futura::detail::poll_wait_hook();
        }
    });
    started.arrive_and_wait();
    while (first.polls.load() == 0) {
        std::this_thread::yield();
    }
    futura::detail::remove_wait_hook(first); // returns once the poller is out of it
    const int polls = first.polls.load();
    for (int i = 0; i < 1000; ++i) {
        futura::detail::poll_wait_hook();
    }
    stop = true;
    poller.join();
    BOOST_TEST(first.polls.load() == polls);
    BOOST_TEST(second.polls.load() == 0);
    BOOST_TEST(futura::detail::install_wait_hook(second)); // free again
    futura::detail::remove_wait_hook(second);
}

BOOST_AUTO_TEST_CASE(a_hook_removed_from_inside_its_own_poll_does_not_deadlock)
{
    CompletingHook hook;
    hook.remove_itself = true;
    BOOST_TEST_REQUIRE(futura::detail::install_wait_hook(hook));
    futura::detail::poll_wait_hook();
    futura::detail::poll_wait_hook(); // removed: not polled again
    BOOST_TEST(hook.polls.load() == 1);
}

BOOST_AUTO_TEST_SUITE_END()
