// GCC 12 at -O1 (the sanitizer builds) reports a moved std::optional<Future<int>> inside Asio's
// handler machinery as "may be used uninitialized": a false positive, as the ASan stage's
// -Wno-maybe-uninitialized notes for Asio's use_future. Off for this file only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <futura/async_as_completed.hpp>
#include <futura/inline_executor.hpp>
#include <futura/process_pool_executor.hpp>
#include <futura/thread_pool_executor.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <latch>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto generous = 30s;

int square(int x) { return x * x; }

int fail_on_odd(int x)
{
    if (x % 2 != 0) {
        throw std::invalid_argument("odd " + std::to_string(x));
    }
    return x;
}

/// Drains `completed` in a coroutine on `io`, recording the values in delivery order.
template <class T>
asio::awaitable<void> drain(futura::AsyncAsCompleted<T>& completed, std::vector<T>& out,
                            bool& on_loop_thread, std::thread::id loop_thread)
{
    on_loop_thread = true;
    while (auto f = co_await completed.async_next(asio::use_awaitable)) {
        on_loop_thread = on_loop_thread && std::this_thread::get_id() == loop_thread;
        if (!f->done()) {
            throw std::logic_error("async_next delivered a future that is not done");
        }
        out.push_back(f->result());
    }
}

} // namespace

BOOST_AUTO_TEST_SUITE(async_as_completed)

BOOST_AUTO_TEST_CASE(futures_arrive_in_the_order_they_finish_then_the_end)
{
    futura::Promise<int> first;
    futura::Promise<int> second;
    futura::Promise<int> third;
    futura::InlineExecutor inline_executor;
    auto done_already = inline_executor.submit(square, 10);
    std::vector<futura::Future<int>> futures{first.get_future(), second.get_future(),
                                             third.get_future(), done_already};
    auto completed = futura::async_as_completed(futures);
    BOOST_TEST(completed.remaining() == 4U);

    asio::io_context io;
    std::vector<int> order;
    bool on_loop_thread = false;
    asio::co_spawn(io, drain(completed, order, on_loop_thread, std::this_thread::get_id()),
                   asio::detached);
    // Finish them out of input order, each once the coroutine has had time to wait for it.
    io.poll();
    third.set_result(3);
    io.run_one_for(generous);
    io.poll();
    first.set_result(1);
    io.run_one_for(generous);
    io.poll();
    second.set_result(2);
    io.run_for(generous);
    BOOST_TEST(order == (std::vector<int>{100, 3, 1, 2}), boost::test_tools::per_element());
    BOOST_TEST(on_loop_thread);
    BOOST_TEST(completed.remaining() == 0U);
}

BOOST_AUTO_TEST_CASE(each_distinct_future_is_delivered_exactly_once)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    std::vector<futura::Future<int>> futures;
    for (int i = 0; i < 500; ++i) {
        futures.push_back(pool.submit(square, i));
    }
    futures.push_back(futures[7]); // duplicates are delivered once, as as_completed does
    futures.push_back(futures[0]);
    auto completed = futura::async_as_completed(futures);
    BOOST_TEST(completed.remaining() == 500U);
    asio::io_context io;
    std::vector<int> values;
    bool on_loop_thread = false;
    asio::co_spawn(io, drain(completed, values, on_loop_thread, std::this_thread::get_id()),
                   asio::detached);
    io.run_for(generous);
    BOOST_TEST(values.size() == 500U);
    std::sort(values.begin(), values.end());
    std::vector<int> expected;
    for (int i = 0; i < 500; ++i) {
        expected.push_back(i * i);
    }
    BOOST_TEST(values == expected, boost::test_tools::per_element());
    BOOST_TEST(on_loop_thread);
}

BOOST_AUTO_TEST_CASE(failed_futures_are_delivered_and_rethrow_on_result)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    std::vector<futura::Future<int>> futures;
    for (int i = 0; i < 10; ++i) {
        futures.push_back(pool.submit(fail_on_odd, i));
    }
    auto completed = futura::async_as_completed(futures);
    asio::io_context io;
    int values = 0;
    int errors = 0;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            while (auto f = co_await completed.async_next(asio::use_awaitable)) {
                try {
                    values += f->result() % 2 == 0 ? 1 : 100;
                } catch (const std::invalid_argument&) {
                    ++errors;
                }
            }
        },
        asio::detached);
    io.run_for(generous);
    BOOST_TEST(values == 5);
    BOOST_TEST(errors == 5);
}

BOOST_AUTO_TEST_CASE(callback_and_deferred_tokens_work)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    auto completed = futura::async_as_completed({pool.submit(square, 2), pool.submit(square, 3)});
    asio::io_context io;
    std::vector<int> got;
    bool ended = false;
    // A callback bound to the loop, then a deferred operation launched with a callback.
    completed.async_next(asio::bind_executor(io, [&](boost::system::error_code error,
                                                     std::optional<futura::Future<int>> f) {
        BOOST_TEST(!error);
        BOOST_REQUIRE(f.has_value());
        got.push_back(f->result());
        auto next = completed.async_next(asio::deferred);
        std::move(next)(asio::bind_executor(io, [&](boost::system::error_code error2,
                                                    std::optional<futura::Future<int>> g) {
            BOOST_TEST(!error2);
            BOOST_REQUIRE(g.has_value());
            got.push_back(g->result());
            completed.async_next(asio::bind_executor(
                io, [&](boost::system::error_code error3, std::optional<futura::Future<int>> end) {
                    ended = !error3 && !end.has_value();
                }));
        }));
    }));
    io.run_for(generous);
    std::sort(got.begin(), got.end());
    BOOST_TEST(got == (std::vector<int>{4, 9}), boost::test_tools::per_element());
    BOOST_TEST(ended);
}

BOOST_AUTO_TEST_CASE(an_empty_input_ends_at_once)
{
    std::vector<futura::Future<int>> none;
    auto completed = futura::async_as_completed(none);
    asio::io_context io;
    bool ended = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            ended = !(co_await completed.async_next(asio::use_awaitable)).has_value();
        },
        asio::detached);
    io.run_for(generous);
    BOOST_TEST(ended);
}

BOOST_AUTO_TEST_CASE(a_timer_cancels_only_the_wait_and_the_future_comes_later)
{
    futura::Promise<int> slow;
    auto completed = futura::async_as_completed({slow.get_future()});
    asio::io_context io;
    bool timer_won = false;
    int later = 0;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            asio::steady_timer timer(io, 10ms);
            auto first = co_await (completed.async_next(asio::use_awaitable) ||
                                   timer.async_wait(asio::use_awaitable));
            timer_won = first.index() == 1;
            slow.set_result(7); // the aborted wait took nothing: the next one gets it
            auto f = co_await completed.async_next(asio::use_awaitable);
            later = f ? f->result() : -1;
        },
        asio::detached);
    io.run_for(generous);
    BOOST_TEST(timer_won);
    BOOST_TEST(later == 7);
    BOOST_TEST(!slow.get_future().cancelled());
}

BOOST_AUTO_TEST_CASE(a_cancellation_signal_aborts_with_operation_aborted)
{
    futura::Promise<int> never_set;
    auto completed = futura::async_as_completed({never_set.get_future()});
    asio::io_context io;
    asio::cancellation_signal signal;
    boost::system::error_code error;
    bool delivered = false;
    completed.async_next(asio::bind_cancellation_slot(
        signal.slot(), asio::bind_executor(io, [&](boost::system::error_code e,
                                                   std::optional<futura::Future<int>> f) {
            error = e;
            delivered = f.has_value();
        })));
    asio::post(io, [&] { signal.emit(asio::cancellation_type::total); });
    io.run_for(generous);
    BOOST_TEST((error == asio::error::operation_aborted));
    BOOST_TEST(!delivered);
    BOOST_TEST(completed.remaining() == 1U);
    never_set.set_result(1); // its callback finds no waiter and keeps it
    BOOST_TEST(completed.remaining() == 1U);
}

BOOST_AUTO_TEST_CASE(a_second_concurrent_next_fails_with_in_progress)
{
    futura::Promise<int> pending;
    auto completed = futura::async_as_completed({pending.get_future()});
    asio::io_context io;
    boost::system::error_code second_error;
    int first_value = 0;
    completed.async_next(asio::bind_executor(
        io, [&](boost::system::error_code, std::optional<futura::Future<int>> f) {
            first_value = f ? f->result() : -1;
        }));
    completed.async_next(asio::bind_executor(
        io, [&](boost::system::error_code e, std::optional<futura::Future<int>>) {
            second_error = e;
            pending.set_result(5);
        }));
    io.run_for(generous);
    BOOST_TEST((second_error == asio::error::in_progress));
    BOOST_TEST(first_value == 5);
}

BOOST_AUTO_TEST_CASE(a_pending_next_completes_after_its_object_is_gone)
{
    futura::Promise<int> later;
    asio::io_context io;
    int value = 0;
    {
        auto completed = futura::async_as_completed({later.get_future()});
        completed.async_next(asio::bind_executor(
            io, [&](boost::system::error_code, std::optional<futura::Future<int>> f) {
                value = f ? f->result() : -1;
            }));
    }
    later.set_result(11);
    io.run_for(generous);
    BOOST_TEST(value == 11);
}

BOOST_AUTO_TEST_CASE(process_pool_futures_arrive_too)
{
    futura::ProcessPoolExecutor pool{{.max_workers = 2}};
    std::vector<futura::Future<int>> futures;
    for (int i = 0; i < 50; ++i) {
        futures.push_back(pool.submit(square, i));
    }
    futures.push_back(pool.submit(fail_on_odd, 3));
    auto completed = futura::async_as_completed(futures);
    asio::io_context io;
    std::multiset<int> values;
    int errors = 0;
    bool on_loop_thread = true;
    const auto loop_thread = std::this_thread::get_id();
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            while (auto f = co_await completed.async_next(asio::use_awaitable)) {
                on_loop_thread = on_loop_thread && std::this_thread::get_id() == loop_thread;
                try {
                    values.insert(f->result());
                } catch (const std::invalid_argument& e) {
                    errors += std::string(e.what()) == "odd 3" ? 1 : 100;
                }
            }
        },
        asio::detached);
    io.run_for(generous);
    std::multiset<int> expected;
    for (int i = 0; i < 50; ++i) {
        expected.insert(i * i);
    }
    BOOST_TEST((values == expected));
    BOOST_TEST(errors == 1);
    BOOST_TEST(on_loop_thread);
}

BOOST_AUTO_TEST_SUITE_END()
