#include <futura/asio.hpp>
#include <futura/thread_pool_executor.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/defer.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <stdexcept>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr auto generous = 30s;

int square(int x) { return x * x; }

} // namespace

BOOST_AUTO_TEST_SUITE(thread_pool_asio)

BOOST_AUTO_TEST_CASE(the_executor_meets_asio_executor_requirements)
{
    using Executor = futura::ThreadPoolExecutor::AsioExecutor;
    static_assert(asio::execution::is_executor<Executor>::value);
    static_assert(asio::is_executor<Executor>::value ||
                  asio::execution::is_executor<Executor>::value);
    static_assert(std::is_same_v<futura::ThreadPoolExecutor::executor_type, Executor>);
    // any_io_executor stores it in place (no allocation per copy) only if it is two words.
    static_assert(sizeof(Executor) <= 2 * sizeof(void*));

    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    futura::ThreadPoolExecutor other{{.max_workers = 1}};
    BOOST_TEST((pool.get_executor() == pool.get_executor()));
    BOOST_TEST((pool.get_executor() != other.get_executor()));
    BOOST_TEST((&pool.get_executor().pool() == &pool));
    const auto never = asio::require(pool.get_executor(), asio::execution::blocking.never);
    BOOST_TEST((never != pool.get_executor())); // different blocking property
    BOOST_TEST((asio::query(never, asio::execution::blocking) == asio::execution::blocking.never));
    BOOST_TEST((asio::query(pool.get_executor(), asio::execution::blocking) ==
                asio::execution::blocking.possibly));
    asio::execution_context& context = asio::query(pool.get_executor(), asio::execution::context);
    BOOST_TEST((&context == &asio::query(pool.get_executor(), asio::execution::context)));
    BOOST_TEST((&context != &asio::query(other.get_executor(), asio::execution::context)));
    const asio::any_io_executor erased = pool.get_executor();
    BOOST_TEST((erased.target<Executor>() != nullptr));
    BOOST_TEST(!pool.get_executor().running_in_this_thread());
}

BOOST_AUTO_TEST_CASE(post_runs_the_function_on_a_pool_thread)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    std::promise<std::pair<std::thread::id, bool>> ran;
    asio::post(pool.get_executor(), [&] {
        ran.set_value({std::this_thread::get_id(), pool.get_executor().running_in_this_thread()});
    });
    auto where = ran.get_future();
    BOOST_REQUIRE(where.wait_for(generous) == std::future_status::ready);
    const auto [thread, in_pool] = where.get();
    BOOST_TEST((thread != std::this_thread::get_id()));
    BOOST_TEST(in_pool);
    BOOST_TEST(pool.stats().submitted == 1U); // a posted function is a submission like others
}

BOOST_AUTO_TEST_CASE(dispatch_runs_inline_on_a_pool_thread_and_post_and_defer_do_not)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    auto ex = pool.get_executor();
    // One worker: everything below runs on it, one function after the other.
    std::vector<int> order;
    auto seen_by_the_task = asio::post(
        ex, asio::use_future([&] {
            asio::dispatch(ex, [&order] { order.push_back(1); }); // at once: same pool
            order.push_back(2);
            asio::post(ex, [&order] { order.push_back(4); }); // after this function returns
            asio::defer(ex, [&order] { order.push_back(5); });
            order.push_back(3);
            return order;
        }));
    BOOST_REQUIRE(seen_by_the_task.wait_for(generous) == std::future_status::ready);
    BOOST_TEST(seen_by_the_task.get() == (std::vector<int>{1, 2, 3}),
               boost::test_tools::per_element());
    pool.shutdown(); // waits for the posted and deferred functions
    BOOST_TEST(order == (std::vector<int>{1, 2, 3, 4, 5}), boost::test_tools::per_element());

    // From outside the pool, dispatch queues: it must not run in this thread.
    std::thread::id ran_on;
    futura::ThreadPoolExecutor other{{.max_workers = 1}};
    asio::dispatch(other.get_executor(), [&ran_on] { ran_on = std::this_thread::get_id(); });
    other.shutdown();
    BOOST_TEST((ran_on != std::thread::id()));
    BOOST_TEST((ran_on != std::this_thread::get_id()));
}

BOOST_AUTO_TEST_CASE(co_spawn_onto_the_pool_runs_the_coroutine_on_pool_threads)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    futura::ThreadPoolExecutor workers{{.max_workers = 2}};
    auto total = asio::co_spawn(
        pool.get_executor(),
        [&]() -> asio::awaitable<int> {
            int sum = 0;
            for (int i = 0; i < 100; ++i) {
                sum += co_await workers.async_submit(square, i, asio::use_awaitable);
                if (!pool.get_executor().running_in_this_thread()) {
                    throw std::logic_error("resumed off the pool");
                }
            }
            // A timer built on the pool's executor uses the pool's execution context.
            asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
            co_await timer.async_wait(asio::use_awaitable);
            if (!pool.get_executor().running_in_this_thread()) {
                throw std::logic_error("timer completion off the pool");
            }
            co_return sum;
        },
        asio::use_future);
    BOOST_REQUIRE(total.wait_for(generous) == std::future_status::ready);
    int expected = 0;
    for (int i = 0; i < 100; ++i) {
        expected += i * i;
    }
    BOOST_TEST(total.get() == expected);
}

BOOST_AUTO_TEST_CASE(thousands_of_posts_from_many_threads_all_run)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    constexpr int per_thread = 2000;
    constexpr int threads = 4;
    std::atomic<int> ran{0};
    std::latch start(threads);
    std::vector<std::jthread> posters;
    for (int t = 0; t < threads; ++t) {
        posters.emplace_back([&] {
            start.arrive_and_wait();
            for (int i = 0; i < per_thread; ++i) {
                asio::post(pool.get_executor(), [&ran] { ran.fetch_add(1); });
            }
        });
    }
    posters.clear();
    pool.shutdown(); // waits for everything queued
    BOOST_TEST(ran.load() == per_thread * threads);
}

BOOST_AUTO_TEST_CASE(a_throwing_function_does_not_break_the_pool)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    asio::post(pool.get_executor(), [] { throw std::runtime_error("posted failure (expected)"); });
    BOOST_TEST(pool.submit(square, 3).result(generous) == 9);
    BOOST_TEST(pool.stats().workers_alive == 1U);
}

BOOST_AUTO_TEST_CASE(after_shutdown_posted_functions_are_dropped_not_run)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    pool.shutdown();
    auto alive = std::make_shared<int>(0);
    std::weak_ptr<int> watch = alive;
    bool ran = false;
    asio::post(pool.get_executor(), [&ran, keep = std::move(alive)] { ran = true; });
    BOOST_TEST(!ran);
    BOOST_TEST(watch.expired()); // destroyed, not leaked
}

BOOST_AUTO_TEST_CASE(an_io_context_coroutine_posts_to_the_pool_and_comes_back)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    asio::io_context io;
    const auto loop_thread = std::this_thread::get_id();
    bool on_pool = false;
    bool back = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            co_await asio::post(pool.get_executor(), asio::use_awaitable);
            // use_awaitable resumes on the coroutine's own executor: the loop.
            back = std::this_thread::get_id() == loop_thread;
            co_await asio::dispatch(asio::bind_executor(pool.get_executor(), asio::use_awaitable));
            on_pool = pool.get_executor().running_in_this_thread();
        },
        asio::detached);
    io.run_for(generous);
    BOOST_TEST(back);
    BOOST_TEST(on_pool);
}

BOOST_AUTO_TEST_SUITE_END()
