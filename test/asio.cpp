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

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

int square(int x) { return x * x; }

int fail_with(int code) { throw std::out_of_range("out of range " + std::to_string(code)); }

constexpr auto generous = 30s;

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
    std::latch release(1);
    auto slow = pool.submit([&release] {
        release.wait();
        return 1;
    });
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

BOOST_AUTO_TEST_SUITE_END()
