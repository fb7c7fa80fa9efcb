// futura::ThreadPoolExecutor beyond the typed executor suite: what only a pool of threads in this
// process can do, and how it uses its threads.
//
// Ported from CPython's Lib/test/test_concurrent_futures: test_thread_pool.py
// (ThreadPoolExecutorTest), test_init.py (InitializerMixin, FailingInitializerMixin),
// test_shutdown.py (ThreadPoolShutdownTest), test_deadlock.py where it applies to threads.
#include <futura/as_completed.hpp>
#include <futura/thread_pool_executor.hpp>
#include <futura/wait.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <pthread.h>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support.hpp"

using namespace futura_test;
using namespace std::chrono_literals;

namespace {

std::string this_thread_name()
{
    char name[16] = {};
    pthread_getname_np(pthread_self(), name, sizeof name);
    return name;
}

int fibonacci(futura::Executor& pool, int n)
{
    if (n < 2) {
        return n;
    }
    auto a = pool.submit([&pool, n] { return fibonacci(pool, n - 1); });
    auto b = pool.submit([&pool, n] { return fibonacci(pool, n - 2); });
    return a.result() + b.result();
}

} // namespace

BOOST_AUTO_TEST_SUITE(thread_pool_executor)

// ---------------------------------------------------------------------------------------------
// What may be submitted

BOOST_AUTO_TEST_CASE(accepts_capturing_lambdas)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    const std::string prefix = "value ";
    std::vector<int> data{1, 2, 3};
    auto by_value = pool.submit([prefix] { return prefix + "x"; });
    auto by_reference = pool.submit([&data] {
        int sum = 0;
        for (int x : data) {
            sum += x;
        }
        return sum;
    });
    BOOST_TEST(by_value.result(should_happen) == "value x");
    BOOST_TEST(by_reference.result(should_happen) == 6);
}

BOOST_AUTO_TEST_CASE(accepts_move_only_arguments_results_and_callables)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    auto doubled = pool.submit([](std::unique_ptr<int> p) { return std::make_unique<int>(*p * 2); },
                               std::make_unique<int>(21));
    const std::unique_ptr<int> result = std::move(doubled).result(should_happen);
    BOOST_REQUIRE(result != nullptr);
    BOOST_TEST(*result == 42);

    auto owned = std::make_unique<std::string>("owned by the task");
    auto move_only_callable = pool.submit([owned = std::move(owned)] { return *owned; });
    BOOST_TEST(move_only_callable.result(should_happen) == "owned by the task");
}

BOOST_AUTO_TEST_CASE(accepts_std_function_and_member_function_pointers)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    const std::function<int(int)> f = [](int x) { return x + 1; };
    BOOST_TEST(pool.submit(f, 1).result(should_happen) == 2);
    const std::string text = "hello";
    BOOST_TEST(pool.submit(&std::string::size, &text).result(should_happen) == 5U);
}

// ---------------------------------------------------------------------------------------------
// Tasks using their own pool

BOOST_AUTO_TEST_CASE(tasks_may_submit_further_tasks)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    auto outer = pool.submit([&pool] {
        std::vector<futura::Future<int>> inner;
        for (int i = 0; i < 10; ++i) {
            inner.push_back(pool.submit(square, i));
        }
        return inner;
    });
    const auto inner = outer.result(should_happen);
    BOOST_REQUIRE(inner.size() == 10U);
    for (int i = 0; i < 10; ++i) {
        BOOST_TEST(inner[static_cast<std::size_t>(i)].result(should_happen) == i * i);
    }
}

BOOST_AUTO_TEST_CASE(task_waiting_on_a_task_it_submitted_completes_with_one_worker)
{
    // The contract: the pool helps instead of deadlocking (CPython's pool would deadlock here).
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    auto outer = pool.submit([&pool] {
        auto inner = pool.submit(square, 7);
        return inner.result(should_happen) + 1;
    });
    BOOST_TEST(outer.result(should_happen) == 50);
}

BOOST_AUTO_TEST_CASE(task_waiting_with_every_wait_form_completes_with_one_worker)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    auto outer = pool.submit([&pool] {
        int total = 0;
        auto a = pool.submit(square, 2);
        a.wait();
        total += a.result();
        auto b = pool.submit(square, 3);
        total += b.wait_for(should_happen) ? b.result() : -1000;
        auto c = pool.submit(square, 4);
        total += c.exception(should_happen) ? -1000 : c.result();
        std::vector<futura::Future<int>> fs{pool.submit(square, 5), pool.submit(square, 6)};
        auto [done, not_done] = futura::wait(fs, {.timeout = should_happen});
        total += not_done.empty() ? 0 : -1000;
        for (const auto& f :
             futura::as_completed(std::vector{pool.submit(square, 7)}, should_happen)) {
            total += f.result();
        }
        return total;
    });
    BOOST_TEST(outer.result(should_happen) == 4 + 9 + 16 + 49);
}

BOOST_AUTO_TEST_CASE(recursive_tasks_waiting_on_their_children_complete)
{
    // Every task but the leaves waits for two children: far more waiting tasks than workers.
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    BOOST_TEST(pool.submit([&pool] { return fibonacci(pool, 12); }).result(should_happen) == 144);
}

BOOST_AUTO_TEST_CASE(task_waiting_on_an_outside_promise_wakes_when_it_is_set)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    futura::Promise<int> promise;
    auto waiting = pool.submit([future = promise.get_future()] { return future.result() * 2; });
    std::this_thread::sleep_for(5ms); // let it start waiting (not needed for correctness)
    promise.set_result(21);
    BOOST_TEST(waiting.result(should_happen) == 42);
}

BOOST_AUTO_TEST_CASE(task_waiting_with_timeout_in_the_pool_times_out)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    futura::Promise<int> never_set;
    auto waiting = pool.submit([future = never_set.get_future()] {
        try {
            (void)future.result(expected_timeout);
            return false;
        } catch (const futura::TimeoutError&) {
            return true;
        }
    });
    BOOST_TEST(waiting.result(should_happen));
    BOOST_TEST(pool.submit(square, 3).result(should_happen) == 9); // the worker is free again
    never_set.set_result(0);
}

BOOST_AUTO_TEST_CASE(waits_across_two_pools_are_resolved_by_helping)
{
    // A (pool one, one worker) waits for B (pool two), which waits for C, queued on pool one
    // behind A: A's thread must run C while it waits.
    futura::ThreadPoolExecutor one{{.max_workers = 1}};
    futura::ThreadPoolExecutor two{{.max_workers = 1}};
    auto a = one.submit([&] {
        auto c = one.submit(square, 4);
        auto b = two.submit([c] { return c.result(should_happen) + 1; });
        return b.result(should_happen);
    });
    BOOST_TEST(a.result(2 * should_happen) == 17);
}

BOOST_AUTO_TEST_CASE(helping_wait_does_not_deadlock_on_a_future_running_below_it)
{
    // With one worker: A runs and waits for B, which it submitted; meanwhile C, queued before B,
    // waits for A. A helping wait that picks C up runs it on top of A on the same thread, where C
    // can never see A finish. The contract allows helping, or failing the wait with a clear
    // error, but not a silent deadlock. (C gives up at should_happen so the test ends either way.)
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    Gate gate;
    auto a = pool.submit([&] {
        gate.wait();
        auto b = pool.submit(square, 3);
        return b.result();
    });
    Gate::Opener open_gate(gate);
    BOOST_TEST(gate.wait_for_waiters(1));
    auto c = pool.submit([a] { return a.result(should_happen) + 1; });
    gate.open();
    BOOST_TEST(a.result(2 * should_happen) == 9);
    try {
        BOOST_TEST(c.result(2 * should_happen) == 10);
    } catch (const futura::TimeoutError& e) {
        BOOST_ERROR("C, waiting for A, was run inside A's helping wait and could only give up: "
                    "a silent deadlock without C's timeout ("
                    << e.what() << ")");
    }
}

BOOST_AUTO_TEST_CASE(helping_wait_on_an_outside_future_does_not_deadlock_a_task_waiting_below)
{
    // The same hazard when the awaited future is no task of the pool: A waits for a promise; its
    // wait may run C meanwhile, and C waits for A. Once the promise is set, A can only finish
    // after C returns, and C only after A: a silent deadlock, unless the pool avoids running C
    // on top of A (or fails C's wait with a clear error).
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    Gate gate;
    futura::Promise<int> outside;
    auto a = pool.submit([&gate, p = outside.get_future()] {
        gate.wait();
        return p.result();
    });
    Gate::Opener open_gate(gate);
    BOOST_TEST(gate.wait_for_waiters(1));
    Countdown c_started(1);
    auto c = pool.submit([a, &c_started] {
        c_started.count_down();
        return a.result(should_happen) + 1;
    });
    gate.open();
    // C starts either on top of A's wait (the hazard) or after A (if the pool never helps with
    // unrelated work); set the promise once C runs, or after a while if it does not.
    (void)c_started.wait(1s);
    outside.set_result(41);
    BOOST_TEST(a.result(2 * should_happen) == 41);
    try {
        BOOST_TEST(c.result(2 * should_happen) == 42);
    } catch (const futura::TimeoutError& e) {
        BOOST_ERROR("C, waiting for A, was run inside A's helping wait and could only give up: "
                    "a silent deadlock without C's timeout ("
                    << e.what() << ")");
    }
}

// ---------------------------------------------------------------------------------------------
// initializer (test_init.py)

BOOST_AUTO_TEST_CASE(initializer_runs_once_per_worker_thread_before_its_tasks)
{
    thread_local bool initialized = false;
    std::mutex mutex; // guards initializer_threads
    std::multiset<std::thread::id> initializer_threads;
    constexpr int workers = 3;
    futura::ThreadPoolExecutor pool{{.max_workers = workers, .initializer = [&] {
                                         initialized = true;
                                         const std::lock_guard lock(mutex);
                                         initializer_threads.insert(std::this_thread::get_id());
                                     }}};
    // Three tasks that wait for each other: they need three workers at once.
    Countdown all_running(workers);
    std::vector<futura::Future<std::pair<std::thread::id, bool>>> futures;
    for (int i = 0; i < workers; ++i) {
        futures.push_back(pool.submit([&all_running] {
            const bool together = all_running.arrive_and_wait();
            return std::pair{std::this_thread::get_id(), initialized && together};
        }));
    }
    std::set<std::thread::id> task_threads;
    for (auto& future : futures) {
        const auto [id, ok] = future.result(2 * should_happen);
        BOOST_TEST(ok);
        task_threads.insert(id);
    }
    // More work on the same workers runs no initializer again.
    for (int i = 0; i < 20; ++i) {
        BOOST_TEST(pool.submit([] { return initialized; }).result(should_happen));
    }
    pool.shutdown();
    const std::lock_guard lock(mutex);
    BOOST_TEST(initializer_threads.size() == static_cast<std::size_t>(workers));
    BOOST_TEST(task_threads.size() == static_cast<std::size_t>(workers));
    BOOST_TEST((std::set<std::thread::id>(initializer_threads.begin(), initializer_threads.end()) ==
                task_threads));
}

BOOST_AUTO_TEST_CASE(initializer_exception_fails_pending_work_and_later_submits)
{
    // FailingInitializerMixin.test_initializer, with the initializer held until work is queued.
    Gate gate;
    futura::ThreadPoolExecutor pool{{.max_workers = 2, .initializer = [&gate] {
                                         gate.wait();
                                         throw std::runtime_error("error in initializer");
                                     }}};
    Gate::Opener open_gate(gate);
    std::vector<futura::Future<int>> futures;
    for (int i = 0; i < 5; ++i) {
        futures.push_back(pool.submit(square, i));
    }
    gate.open();
    for (const auto& future : futures) {
        BOOST_CHECK_EXCEPTION(future.result(should_happen), futura::BrokenThreadPool,
                              [](const futura::BrokenThreadPool& e) {
                                  return std::string(e.what()).find("error in initializer") !=
                                         std::string::npos;
                              });
    }
    // From now on submit fails at once.
    BOOST_CHECK_THROW((void)pool.submit(square, 1), futura::BrokenThreadPool);
    BOOST_CHECK_THROW((void)pool.submit(square, 1), futura::BrokenExecutor);
    BOOST_CHECK_THROW((void)pool.map(square, std::vector{1, 2}), futura::BrokenThreadPool);
    pool.shutdown();
    const auto stats = pool.stats();
    BOOST_TEST(stats.submitted == 5U);
    BOOST_TEST(stats.failed == 5U);
    BOOST_TEST(stats.submitted == stats.completed + stats.failed + stats.cancelled);
}

namespace {
thread_local std::string connected_to;
void connect(std::string database, int retries)
{
    connected_to = database + "/" + std::to_string(retries);
}
} // namespace

BOOST_AUTO_TEST_CASE(initializer_takes_initargs)
{
    // initializer=connect, initargs=("db", 3); a lambda with parameters too
    futura::ThreadPoolExecutor pool{
        {.max_workers = 2, .initializer = connect, .initargs = std::tuple{"db", 3}}};
    BOOST_TEST(pool.submit([] { return connected_to; }).result(should_happen) == "db/3");
    std::atomic<int> sum{0};
    futura::ThreadPoolExecutor lambda_pool{{.max_workers = 1,
                                            .initializer = [&sum](int a, int b) { sum += a + b; },
                                            .initargs = std::tuple{2, 5}}};
    lambda_pool.submit([] {}).result(should_happen);
    BOOST_TEST(sum.load() == 7);
    // An argument type without a default constructor is kept as given.
    struct Port
    {
        explicit Port(int n) : number(n) {}
        int number;
    };
    std::atomic<int> port{0};
    futura::ThreadPoolExecutor port_pool{{.max_workers = 1,
                                          .initializer = [&port](Port p) { port = p.number; },
                                          .initargs = std::tuple{Port{8080}}}};
    port_pool.submit([] {}).result(should_happen);
    BOOST_TEST(port.load() == 8080);
}

BOOST_AUTO_TEST_CASE(initargs_that_do_not_fit_the_initializer_throw_invalid_argument)
{
    BOOST_CHECK_EXCEPTION(
        futura::ThreadPoolExecutor({.initializer = connect, .initargs = std::tuple{"db"}}),
        std::invalid_argument, [](const std::invalid_argument& e) {
            const std::string what = e.what();
            return what.find("the initializer takes") != std::string::npos &&
                   what.find("but initargs holds") != std::string::npos;
        });
    BOOST_CHECK_THROW(futura::ThreadPoolExecutor({.initializer = connect}), std::invalid_argument);
    BOOST_CHECK_THROW(futura::ThreadPoolExecutor({.initargs = std::tuple{1}}),
                      std::invalid_argument);
    BOOST_CHECK_THROW(futura::ThreadPoolExecutor({.initializer = [] {}, .initargs = std::tuple{1}}),
                      std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(initializer_exception_breaks_the_pool_for_a_single_submission)
{
    // The race CPython's test allows: submit may already throw, or its future fails; after
    // that, submit throws.
    futura::ThreadPoolExecutor pool{
        {.max_workers = 1, .initializer = [] { throw std::logic_error("bad setup"); }}};
    try {
        auto future = pool.submit(square, 2);
        BOOST_CHECK_THROW(future.result(should_happen), futura::BrokenThreadPool);
    } catch (const futura::BrokenThreadPool&) {
    }
    BOOST_CHECK_THROW((void)pool.submit(square, 3), futura::BrokenThreadPool);
}

BOOST_AUTO_TEST_CASE(initializer_throwing_a_non_standard_exception_breaks_the_pool)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1, .initializer = [] { throw 42; }}};
    try {
        auto future = pool.submit(square, 2);
        BOOST_CHECK_THROW(future.result(should_happen), futura::BrokenThreadPool);
    } catch (const futura::BrokenThreadPool&) {
    }
    BOOST_CHECK_THROW((void)pool.submit(square, 3), futura::BrokenThreadPool);
}

// ---------------------------------------------------------------------------------------------
// Threads

BOOST_AUTO_TEST_CASE(thread_name_prefix_names_the_workers)
{
    // test_thread_names_assigned
    constexpr int workers = 5;
    futura::ThreadPoolExecutor pool{{.max_workers = workers, .thread_name_prefix = "SpecialPool"}};
    Countdown all_running(workers);
    std::vector<futura::Future<std::string>> names;
    for (int i = 0; i < workers; ++i) {
        names.push_back(pool.submit([&all_running] {
            all_running.arrive_and_wait();
            return this_thread_name();
        }));
    }
    std::set<std::string> seen;
    for (auto& name : names) {
        seen.insert(name.result(2 * should_happen));
    }
    BOOST_TEST(seen == (std::set<std::string>{"SpecialPool_0", "SpecialPool_1", "SpecialPool_2",
                                              "SpecialPool_3", "SpecialPool_4"}));
}

BOOST_AUTO_TEST_CASE(thread_names_default_to_futura)
{
    // test_thread_names_default
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    BOOST_TEST(pool.submit(this_thread_name).result(should_happen) == "futura_0");
}

BOOST_AUTO_TEST_CASE(long_thread_name_prefix_is_cut_to_the_kernel_limit)
{
    futura::ThreadPoolExecutor pool{
        {.max_workers = 1, .thread_name_prefix = "a_rather_long_prefix_for_threads"}};
    const auto name = pool.submit(this_thread_name).result(should_happen);
    BOOST_TEST(name.size() == 15U);
    BOOST_TEST(name == std::string("a_rather_long_prefix_for_threads").substr(0, 15));
}

BOOST_AUTO_TEST_CASE(threads_start_lazily)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 8}};
    BOOST_TEST(pool.stats().workers_alive == 0U);
    BOOST_TEST(pool.submit(square, 2).result(should_happen) == 4);
    BOOST_TEST(pool.stats().workers_alive == 1U); // one submission starts one thread at most
}

BOOST_AUTO_TEST_CASE(idle_worker_is_reused)
{
    // test_idle_thread_reuse. A worker counts as idle only once it is back waiting for work,
    // a moment after its result is published: a submission in that moment may start another
    // thread. So this asserts reuse, not a single thread.
    constexpr int submissions = 32;
    futura::ThreadPoolExecutor pool{{.max_workers = submissions}};
    for (int i = 0; i < submissions; ++i) {
        BOOST_TEST(pool.submit(mul, 21, 2).result(should_happen) == 42);
    }
    BOOST_TEST(pool.stats().workers_alive <= static_cast<std::size_t>(submissions / 2));
}

BOOST_AUTO_TEST_CASE(saturated_pool_starts_exactly_max_workers_threads)
{
    // test_saturation
    constexpr int workers = 4;
    futura::ThreadPoolExecutor pool{{.max_workers = workers}};
    Gate gate;
    Gate::Opener open_gate(gate);
    std::vector<futura::Future<bool>> futures;
    for (int i = 0; i < 15 * workers; ++i) {
        futures.push_back(pool.submit([&gate] { return gate.wait(); }));
    }
    BOOST_TEST(gate.wait_for_waiters(workers));
    BOOST_TEST(pool.stats().workers_alive == static_cast<std::size_t>(workers));
    BOOST_TEST(pool.stats().running == static_cast<std::size_t>(workers));
    BOOST_TEST(pool.stats().queued == static_cast<std::size_t>(14 * workers));
    BOOST_TEST(gate.waiters() == static_cast<std::size_t>(workers)); // nobody else started
    gate.open();
    pool.shutdown();
    for (const auto& future : futures) {
        BOOST_TEST(future.result());
    }
}

BOOST_AUTO_TEST_CASE(never_more_than_max_workers_tasks_run_at_once)
{
    constexpr int workers = 3;
    futura::ThreadPoolExecutor pool{{.max_workers = workers}};
    std::atomic<int> running{0};
    std::atomic<int> high_water{0};
    std::vector<futura::Future<void>> futures;
    for (int i = 0; i < 60; ++i) {
        futures.push_back(pool.submit([&] {
            raise_to(high_water, ++running);
            std::this_thread::sleep_for(1ms); // overlap with the others
            --running;
        }));
    }
    for (const auto& future : futures) {
        future.result(should_happen);
    }
    BOOST_TEST(high_water.load() <= workers);
    BOOST_TEST(high_water.load() >= 1);
    BOOST_TEST(pool.stats().workers_alive <= static_cast<std::size_t>(workers));
}

BOOST_AUTO_TEST_CASE(single_worker_runs_tasks_in_submission_order)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    std::vector<int> order; // written by the one worker only, read after shutdown
    for (int i = 0; i < 100; ++i) {
        (void)pool.submit([&order, i] { order.push_back(i); });
    }
    pool.shutdown();
    BOOST_REQUIRE(order.size() == 100U);
    BOOST_TEST(std::is_sorted(order.begin(), order.end()));
}

BOOST_AUTO_TEST_CASE(done_callback_of_a_task_runs_in_its_worker)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1, .thread_name_prefix = "cbpool"}};
    Gate gate;
    Gate::Opener open_gate(gate);
    auto future = pool.submit([&gate] { return gate.wait(); });
    std::promise<std::string> ran_in;
    future.add_done_callback([&ran_in] { ran_in.set_value(this_thread_name()); });
    gate.open();
    auto name = ran_in.get_future();
    BOOST_REQUIRE((name.wait_for(should_happen) == std::future_status::ready));
    BOOST_TEST(name.get() == "cbpool_0");
}

// ---------------------------------------------------------------------------------------------
// Shutdown (ThreadPoolShutdownTest)

BOOST_AUTO_TEST_CASE(threads_terminate_after_shutdown)
{
    // test_threads_terminate
    futura::ThreadPoolExecutor pool{{.max_workers = 3}};
    Gate gate;
    Gate::Opener open_gate(gate);
    for (int i = 0; i < 3; ++i) {
        (void)pool.submit([&gate] { return gate.wait(); });
    }
    BOOST_TEST(gate.wait_for_waiters(3));
    BOOST_TEST(pool.stats().workers_alive == 3U);
    gate.open();
    pool.shutdown();
    BOOST_TEST(pool.stats().workers_alive == 0U);
}

BOOST_AUTO_TEST_CASE(shutdown_while_tasks_are_blocked_waits_until_they_are_released)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    Gate gate;
    Gate::Opener open_gate(gate);
    std::vector<futura::Future<bool>> blocked;
    for (int i = 0; i < 2; ++i) {
        blocked.push_back(pool.submit([&gate] { return gate.wait(); }));
    }
    std::vector<futura::Future<int>> queued;
    for (int i = 0; i < 10; ++i) {
        queued.push_back(pool.submit(square, i));
    }
    BOOST_TEST(gate.wait_for_waiters(2));
    std::atomic<bool> returned{false};
    std::jthread shutter([&] {
        pool.shutdown();
        returned = true;
    });
    BOOST_CHECK_THROW((void)eventually([&] {
                          (void)pool.submit(do_nothing); // throws once shutdown has begun
                          return false;
                      }),
                      futura::ShutdownError);
    BOOST_TEST(!returned.load()); // blocked tasks still run, whatever the scheduling
    gate.open();
    shutter.join();
    BOOST_TEST(returned.load());
    for (const auto& future : blocked) {
        BOOST_TEST(future.result());
    }
    for (int i = 0; i < 10; ++i) {
        BOOST_TEST(queued[static_cast<std::size_t>(i)].result() == i * i);
    }
    BOOST_TEST(pool.stats().workers_alive == 0U);
}

BOOST_AUTO_TEST_CASE(submit_from_a_task_after_shutdown_throws_shutdown_error)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    Gate gate;
    Gate::Opener open_gate(gate);
    auto task = pool.submit([&] {
        gate.wait();
        return pool.submit(square, 2).result();
    });
    BOOST_TEST(gate.wait_for_waiters(1));
    pool.shutdown({.wait = false});
    gate.open();
    BOOST_CHECK_THROW(task.result(should_happen), futura::ShutdownError);
}

BOOST_AUTO_TEST_CASE(shutdown_with_cancel_futures_from_a_task_cancels_the_queue)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    Gate gate;
    Gate::Opener open_gate(gate);
    auto task = pool.submit([&] {
        gate.wait();
        pool.shutdown({.wait = true, .cancel_futures = true});
        return 1;
    });
    BOOST_TEST(gate.wait_for_waiters(1));
    std::vector<futura::Future<int>> queued;
    for (int i = 0; i < 5; ++i) {
        queued.push_back(pool.submit(square, i));
    }
    gate.open();
    BOOST_TEST(task.result(should_happen) == 1);
    for (const auto& future : queued) {
        BOOST_TEST(future.cancelled());
    }
}

BOOST_AUTO_TEST_CASE(concurrent_shutdowns_all_wait_for_the_work)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    Gate gate;
    Gate::Opener open_gate(gate);
    auto blocked = pool.submit([&gate] { return gate.wait(); });
    BOOST_TEST(gate.wait_for_waiters(1));
    constexpr int shutters = 3;
    std::atomic<int> returned{0};
    std::latch start(shutters);
    {
        std::vector<std::jthread> threads;
        for (int i = 0; i < shutters; ++i) {
            threads.emplace_back([&] {
                start.arrive_and_wait();
                pool.shutdown();
                returned += blocked.done() ? 1 : 0;
            });
        }
        gate.open();
    }
    BOOST_TEST(returned.load() == shutters);
}

BOOST_AUTO_TEST_CASE(submissions_racing_with_shutdown_either_run_or_throw)
{
    // Every submit accepted before shutdown runs to completion; every later one throws
    // ShutdownError; no future is left pending.
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    constexpr int submitters = 3;
    constexpr int per_thread = 300;
    std::vector<std::vector<futura::Future<int>>> accepted(submitters);
    std::vector<int> refused(submitters, 0);
    std::vector<std::string> other_errors(submitters);
    std::latch start(submitters + 1);
    {
        std::vector<std::jthread> threads;
        for (int t = 0; t < submitters; ++t) {
            threads.emplace_back([&, t] {
                const auto index = static_cast<std::size_t>(t);
                start.arrive_and_wait();
                for (int i = 0; i < per_thread; ++i) {
                    try {
                        accepted[index].push_back(pool.submit(square, i));
                    } catch (const futura::ShutdownError&) {
                        ++refused[index];
                    } catch (const std::exception& e) {
                        other_errors[index] = e.what();
                    }
                }
            });
        }
        start.arrive_and_wait();
        pool.shutdown();
    }
    std::size_t total_accepted = 0;
    for (int t = 0; t < submitters; ++t) {
        const auto index = static_cast<std::size_t>(t);
        BOOST_TEST(other_errors[index].empty(), other_errors[index]);
        BOOST_TEST(accepted[index].size() + static_cast<std::size_t>(refused[index]) ==
                   static_cast<std::size_t>(per_thread));
        for (const auto& future : accepted[index]) {
            BOOST_TEST(future.done());
            BOOST_TEST(!future.cancelled());
        }
        total_accepted += accepted[index].size();
    }
    pool.shutdown(); // joins the workers of the last accepted tasks
    const auto stats = pool.stats();
    BOOST_TEST(stats.submitted == total_accepted);
    BOOST_TEST(stats.completed == total_accepted);
}

BOOST_AUTO_TEST_CASE(destructor_waits_for_a_running_task_then_returns)
{
    std::atomic<bool> finished{false};
    Gate gate;
    {
        std::jthread opener; // declared first: joined after the pool's destructor has returned
        futura::ThreadPoolExecutor pool{{.max_workers = 1}};
        (void)pool.submit([&] {
            gate.wait();
            finished = true;
        });
        BOOST_TEST(gate.wait_for_waiters(1));
        opener = std::jthread([&gate] {
            std::this_thread::sleep_for(10ms); // whether the destructor waits by then or not
            gate.open();
        });
    } // ~ThreadPoolExecutor waits for the task, which the opener releases
    BOOST_TEST(finished.load());
    BOOST_TEST(!gate.gave_up());
}

BOOST_AUTO_TEST_SUITE_END()
