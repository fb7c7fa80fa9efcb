#include <futura/asio.hpp>
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
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <latch>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

namespace {

int square(int x) { return x * x; }

int fail_with(int code) { throw std::out_of_range("out of range " + std::to_string(code)); }

int nap(int ms)
{
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}

constexpr auto generous = 30s;

int square_after_nap(int x, int ms)
{
    nap(ms);
    return x * x;
}

/// Polls `condition` until it holds, for up to `generous`. @return whether it did.
template <class Condition>
bool eventually(Condition condition)
{
    for (const auto until = std::chrono::steady_clock::now() + generous; !condition();) {
        if (std::chrono::steady_clock::now() > until) {
            return false;
        }
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

/// `count` coroutines on one io_context thread, each awaiting its own future of `pool`; checks
/// the sum of the results and that every coroutine resumed on the loop thread.
void many_concurrent_awaits(futura::Executor& pool, int count)
{
    asio::io_context io;
    const auto loop_thread = std::this_thread::get_id();
    long total = 0;
    int finished = 0;
    int off_loop = 0;
    for (int i = 0; i < count; ++i) {
        asio::co_spawn(
            io,
            [&, i]() -> asio::awaitable<void> {
                total += co_await pool.async_submit(square, i % 100, asio::use_awaitable);
                off_loop += std::this_thread::get_id() == loop_thread ? 0 : 1;
                ++finished;
            },
            asio::detached);
    }
    io.run_for(generous);
    BOOST_TEST(finished == count);
    BOOST_TEST(off_loop == 0);
    long expected = 0;
    for (int i = 0; i < count; ++i) {
        expected += (i % 100) * (i % 100);
    }
    BOOST_TEST(total == expected);
}

/// Awaits futures that are done before the wait starts; each must still complete through the
/// loop, on its thread, with the value.
void awaiting_done_futures(futura::Executor& pool)
{
    std::vector<futura::Future<int>> futures;
    for (int i = 0; i < 20; ++i) {
        futures.push_back(pool.submit(square, i));
    }
    for (auto& f : futures) {
        BOOST_REQUIRE(f.wait_for(generous));
    }
    asio::io_context io;
    const auto loop_thread = std::this_thread::get_id();
    int sum = 0;
    bool on_loop_thread = true;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            for (auto& f : futures) {
                sum += co_await f.async_wait(asio::use_awaitable);
                on_loop_thread = on_loop_thread && std::this_thread::get_id() == loop_thread;
            }
        },
        asio::detached);
    io.run_for(generous);
    int expected = 0;
    for (int i = 0; i < 20; ++i) {
        expected += i * i;
    }
    BOOST_TEST(sum == expected);
    BOOST_TEST(on_loop_thread);
}

/// Races `future.async_wait` against a timer of `after` in a coroutine, `||` style (which
/// cancels the loser with every cancellation type). @return whether the timer won.
bool timer_wins_against(const futura::Future<int>& future, std::chrono::milliseconds after)
{
    asio::io_context io;
    bool timer_won = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            asio::steady_timer timer(io, after);
            auto first = co_await (future.async_wait(asio::use_awaitable) ||
                                   timer.async_wait(asio::use_awaitable));
            timer_won = first.index() == 1;
        },
        asio::detached);
    io.run_for(generous);
    return timer_won;
}

/// A task queued behind a blocker on a one-worker pool loses a `||` race against a timer: the
/// wait completes with the timer, the task is cancelled, and the pool goes on working.
void timer_cancels_a_pending_task(futura::Executor& pool, const futura::Future<int>& blocker)
{
    auto queued = pool.submit(square, 3);
    BOOST_TEST(timer_wins_against(queued, 20ms));
    BOOST_TEST(queued.cancelled());
    BOOST_TEST(blocker.result(generous) > 0);
    BOOST_TEST(pool.submit(square, 2).result(generous) == 4);
}

} // namespace

BOOST_AUTO_TEST_SUITE(asio_integration)

BOOST_AUTO_TEST_CASE(co_await_yields_the_value_on_the_loop_thread)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    asio::io_context io;
    const auto loop_thread = std::this_thread::get_id();
    int result = 0;
    bool on_loop_thread = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            result = co_await pool.submit(square, 7).async_wait(asio::use_awaitable);
            on_loop_thread = std::this_thread::get_id() == loop_thread;
        },
        asio::detached);
    io.run_for(generous);
    BOOST_TEST(result == 49);
    BOOST_TEST(on_loop_thread);
}

BOOST_AUTO_TEST_CASE(co_await_rethrows_the_task_exception_as_its_type)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    asio::io_context io;
    std::string caught;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            try {
                co_await pool.submit(fail_with, 3).async_wait(asio::use_awaitable);
            } catch (const std::out_of_range& e) {
                caught = e.what();
            }
        },
        asio::detached);
    io.run_for(generous);
    BOOST_TEST(caught == "out of range 3");
}

BOOST_AUTO_TEST_CASE(awaiting_an_already_done_future_completes_through_the_executor)
{
    futura::InlineExecutor inline_executor;
    auto done = inline_executor.submit(square, 5);
    BOOST_REQUIRE(done.done());
    asio::io_context io;
    std::atomic<bool> called{false}; // set on the system executor's thread
    done.async_wait([&](std::exception_ptr error, int value) { called = !error && value == 25; });
    // Never inline in the initiating call; a plain callback then runs on the system executor.
    io.run_for(generous);
    // A plain callback has no associated executor: it runs on the system executor.
    for (auto until = std::chrono::steady_clock::now() + generous;
         !called && std::chrono::steady_clock::now() < until;) {
        std::this_thread::sleep_for(1ms);
    }
    BOOST_TEST(called.load());
}

BOOST_AUTO_TEST_CASE(thousands_of_concurrent_awaits_on_one_thread)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    asio::io_context io;
    constexpr int count = 2000;
    long total = 0;
    int finished = 0;
    for (int i = 0; i < count; ++i) {
        asio::co_spawn(
            io,
            [&, i]() -> asio::awaitable<void> {
                total += co_await pool.async_submit(square, i % 100, asio::use_awaitable);
                ++finished;
            },
            asio::detached);
    }
    io.run_for(generous);
    BOOST_TEST(finished == count);
    long expected = 0;
    for (int i = 0; i < count; ++i) {
        expected += (i % 100) * (i % 100);
    }
    BOOST_TEST(total == expected);
}

BOOST_AUTO_TEST_CASE(use_future_and_deferred_tokens_work)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    auto std_future = pool.submit(square, 6).async_wait(asio::use_future);
    BOOST_TEST(std_future.get() == 36);

    asio::io_context io;
    auto deferred = pool.submit(square, 4).async_wait(asio::deferred);
    std::atomic<int> value{0}; // set on the system executor's thread
    std::move(deferred)([&](std::exception_ptr error, int v) { value = error ? -1 : v; });
    io.run_for(generous);
    for (auto until = std::chrono::steady_clock::now() + generous;
         value == 0 && std::chrono::steady_clock::now() < until;) {
        std::this_thread::sleep_for(1ms);
    }
    BOOST_TEST(value.load() == 16);
}

BOOST_AUTO_TEST_CASE(cancelling_the_wait_aborts_it_and_cancels_a_pending_task)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    std::latch release(1);
    auto blocker = pool.submit([&release] { release.wait(); });
    auto queued = pool.submit(square, 3); // cannot start: the only worker is blocked

    asio::io_context io;
    asio::cancellation_signal signal;
    std::exception_ptr error;
    bool completed = false;
    queued.async_wait(asio::bind_cancellation_slot(
        signal.slot(), asio::bind_executor(io, [&](std::exception_ptr e, int) {
            error = e;
            completed = true;
        })));
    asio::post(io, [&] { signal.emit(asio::cancellation_type::terminal); });
    io.run_for(generous);
    release.count_down();

    BOOST_TEST(completed);
    BOOST_REQUIRE(error);
    try {
        std::rethrow_exception(error);
    } catch (const boost::system::system_error& e) {
        BOOST_TEST(e.code() == asio::error::operation_aborted);
    }
    BOOST_TEST(queued.cancelled());
    blocker.wait();
    BOOST_TEST(pool.submit(square, 2).result(generous) == 4); // the pool is healthy
}

BOOST_AUTO_TEST_CASE(a_timer_race_cancels_a_slow_wait)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    std::latch started(1);
    std::latch release(1);
    auto slow = pool.submit([&] {
        started.count_down();
        release.wait();
        return 1;
    });
    // Running before the timer fires: a task still pending when it does is cancelled (a loaded
    // machine can take longer than 20 ms to start it).
    started.wait();
    asio::io_context io;
    asio::cancellation_signal signal;
    asio::steady_timer timer(io, 20ms);
    bool aborted = false;
    timer.async_wait(
        [&](boost::system::error_code) { signal.emit(asio::cancellation_type::terminal); });
    slow.async_wait(asio::bind_cancellation_slot(
        signal.slot(),
        asio::bind_executor(io, [&](std::exception_ptr e, int) { aborted = e != nullptr; })));
    io.run_for(generous);
    BOOST_TEST(aborted);
    BOOST_TEST(!slow.cancelled()); // running tasks are not stopped by a cancelled wait
    release.count_down();
    BOOST_TEST(slow.result(generous) == 1);
}

BOOST_AUTO_TEST_CASE(process_pool_futures_are_awaitable_too)
{
    futura::ProcessPoolExecutor pool{{.max_workers = 1}};
    asio::io_context io;
    int result = 0;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            result = co_await pool.async_submit(square, 9, asio::use_awaitable);
        },
        asio::detached);
    io.run_for(generous);
    BOOST_TEST(result == 81);
}

BOOST_AUTO_TEST_CASE(thousands_of_concurrent_awaits_on_one_thread_of_both_pools)
{
    futura::ThreadPoolExecutor threads{{.max_workers = 2}};
    many_concurrent_awaits(threads, 5000);
    futura::ProcessPoolExecutor processes{{.max_workers = 2}};
    many_concurrent_awaits(processes, 2000);
}

BOOST_AUTO_TEST_CASE(already_done_futures_of_both_pools_complete_on_the_loop)
{
    futura::ThreadPoolExecutor threads{{.max_workers = 2}};
    awaiting_done_futures(threads);
    futura::ProcessPoolExecutor processes{{.max_workers = 2}};
    awaiting_done_futures(processes);
}

BOOST_AUTO_TEST_CASE(process_pool_exceptions_arrive_as_their_type_in_the_coroutine)
{
    futura::ProcessPoolExecutor pool{{.max_workers = 1}};
    asio::io_context io;
    std::string caught;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            try {
                co_await pool.async_submit(fail_with, 4, asio::use_awaitable);
            } catch (const std::out_of_range& e) {
                caught = e.what();
            }
        },
        asio::detached);
    io.run_for(generous);
    BOOST_TEST(caught == "out of range 4");
}

BOOST_AUTO_TEST_CASE(a_timer_or_cancels_a_pending_thread_task)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    std::latch release(1);
    auto blocker = pool.submit([&release] {
        release.wait();
        return 1;
    });
    auto queued = pool.submit(square, 3);
    asio::io_context io;
    bool timer_won = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            asio::steady_timer timer(io, 20ms);
            auto first = co_await (queued.async_wait(asio::use_awaitable) ||
                                   timer.async_wait(asio::use_awaitable));
            timer_won = first.index() == 1;
        },
        asio::detached);
    io.run_for(generous);
    release.count_down();
    BOOST_TEST(timer_won);
    BOOST_TEST(queued.cancelled());
    BOOST_TEST(blocker.result(generous) == 1);
    BOOST_TEST(pool.submit(square, 2).result(generous) == 4);
}

BOOST_AUTO_TEST_CASE(a_timer_or_cancels_a_pending_process_task)
{
    futura::ProcessPoolExecutor pool{{.max_workers = 1}};
    // Long enough that the queued task is still pending when the 20 ms timer fires, even on a
    // loaded machine; the wait for it below is generous.
    auto blocker = pool.submit(nap, 1500);
    timer_cancels_a_pending_task(pool, blocker);
}

BOOST_AUTO_TEST_CASE(a_timer_or_leaves_a_running_thread_task_running)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    std::latch started(1);
    std::latch release(1);
    auto running = pool.submit([&] {
        started.count_down();
        release.wait();
        return 5;
    });
    started.wait();
    BOOST_TEST(timer_wins_against(running, 10ms));
    BOOST_TEST(!running.cancelled());
    release.count_down();
    BOOST_TEST(running.result(generous) == 5);
}

BOOST_AUTO_TEST_CASE(a_timer_or_kills_a_running_process_task_and_the_pool_replaces_its_worker)
{
    // The contract: terminal cancellation through Asio stops a running process task (its worker
    // is killed); `||` cancels the loser with every cancellation type, terminal included.
    futura::ProcessPoolExecutor pool{{.max_workers = 1}};
    auto running = pool.submit(nap, 60'000);
    BOOST_REQUIRE(eventually([&] { return running.running(); }));
    BOOST_TEST(timer_wins_against(running, 50ms));
    BOOST_TEST(running.cancelled());
    BOOST_CHECK_THROW(running.result(generous), futura::CancelledError); // not after 60 s
    BOOST_TEST(pool.submit(square, 3).result(generous) == 9);            // a new worker runs it
    BOOST_TEST(pool.stats().workers_replaced == 1U);
}

BOOST_AUTO_TEST_CASE(a_partial_cancellation_leaves_a_running_process_task_running)
{
    // Only terminal cancellation may stop a task midway: a partial one aborts the wait alone.
    futura::ProcessPoolExecutor pool{{.max_workers = 1}};
    auto running = pool.submit(square_after_nap, 7, 300);
    BOOST_REQUIRE(eventually([&] { return running.running(); }));
    asio::io_context io;
    asio::cancellation_signal signal;
    bool aborted = false;
    running.async_wait(asio::bind_cancellation_slot(
        signal.slot(),
        asio::bind_executor(io, [&](std::exception_ptr e, int) { aborted = e != nullptr; })));
    asio::post(io, [&] { signal.emit(asio::cancellation_type::partial); });
    io.run_for(generous);
    BOOST_TEST(aborted);
    BOOST_TEST(!running.cancelled());
    BOOST_TEST(running.result(generous) == 49);
}

BOOST_AUTO_TEST_CASE(handlers_run_on_the_loop_thread_for_both_pools)
{
    futura::ThreadPoolExecutor threads{{.max_workers = 2}};
    futura::ProcessPoolExecutor processes{{.max_workers = 1}};
    asio::io_context io;
    const auto loop_thread = std::this_thread::get_id();
    std::vector<std::thread::id> seen;
    auto record = [&](std::exception_ptr error, int value) {
        BOOST_TEST(!error);
        BOOST_TEST(value == 64);
        seen.push_back(std::this_thread::get_id());
    };
    threads.async_submit(square, 8, asio::bind_executor(io, record));
    processes.async_submit(square, 8, asio::bind_executor(io, record));
    threads.submit(square, 8).async_wait(asio::bind_executor(io.get_executor(), record));
    io.run_for(generous);
    BOOST_TEST(seen.size() == 3U);
    for (const auto& id : seen) {
        BOOST_TEST((id == loop_thread));
    }
}

BOOST_AUTO_TEST_SUITE_END()
