// The typed executor suite: every test runs once per factory of `ExecutorFactories`
// (support.hpp) and works through `futura::Executor&` only, so that adding a factory (a process
// pool) runs the whole suite on it.
//
// Ported from CPython's Lib/test/test_concurrent_futures: executor.py (ExecutorTest),
// test_shutdown.py (ExecutorShutdownTest, ThreadPoolShutdownTest), test_thread_pool.py and
// test_pool.py where they apply to every executor.
#include <futura/current_worker.hpp>
#include <futura/detail/admission.hpp>
#include <futura/detail/task_counts.hpp>
#include <futura/executor.hpp>
#include <futura/thread_pool_executor.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <initializer_list>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <sched.h>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <unistd.h>
#include <utility>
#include <vector>

#include "support.hpp"

using namespace futura_test;
using namespace std::chrono_literals;

namespace {

/// A function object with state; serializable (Boost.Serialization's member `serialize`), so a
/// process pool may take it too.
struct Multiplier
{
    int factor;
    int operator()(int x) const { return factor * x; }
    template <class Archive>
    void serialize(Archive& archive, unsigned /*version*/)
    {
        archive& factor;
    }
};

/// A serializable function object that counts its instances in this process: an executor must
/// drop its copies of a call (callable and arguments) once the call is over, whichever process
/// ran it.
struct Counted
{
    static inline std::atomic<int> live{0};
    int value = 0;

    Counted() noexcept { ++live; }
    explicit Counted(int v) noexcept : value(v) { ++live; }
    Counted(const Counted& other) noexcept : value(other.value) { ++live; }
    Counted& operator=(const Counted&) = default;
    ~Counted() { --live; }

    int operator()() const { return value; }
    template <class Archive>
    void serialize(Archive& archive, unsigned /*version*/)
    {
        archive& value;
    }
};

int value_of(Counted counted) { return counted.value; }

// Tasks that block at a FileGate or leave marks in a directory: plain functions of transferable
// arguments, so that the tests using them run on every executor, process pools included.

/// Returns `x`, after waiting at the gate if `x` is 2.
int wait_at_gate_if_two(std::string gate, int x)
{
    if (x == 2) {
        (void)wait_at_gate(std::move(gate));
    }
    return x;
}

/// Returns `x` once the gate opens, -1 if it gave up.
int wait_at_gate_then_return(std::string gate, int x)
{
    return wait_at_gate(std::move(gate)) ? x : -1;
}

/// Leaves "IDENT started" in `log`, waits at the gate, then leaves "IDENT stopped".
int log_and_wait(std::string log, std::string gate, std::string ident)
{
    write_pid_file(log + "/" + ident + " started");
    (void)wait_at_gate(std::move(gate));
    write_pid_file(log + "/" + ident + " stopped");
    return 0;
}

/// Leaves the mark "N" in `directory` and returns `n`.
int leave_numbered_mark(std::string directory, int n)
{
    write_pid_file(directory + "/" + std::to_string(n));
    return n;
}

} // namespace

static_assert(!std::is_copy_constructible_v<futura::Executor>);
static_assert(!std::is_move_constructible_v<futura::Executor>);
static_assert(std::has_virtual_destructor_v<futura::Executor>);

BOOST_AUTO_TEST_SUITE(executor)

// ---------------------------------------------------------------------------------------------
// submit

BOOST_AUTO_TEST_CASE_TEMPLATE(submit_returns_a_future_of_the_result, Factory, ExecutorFactories)
{
    // test_submit
    const auto owner = Factory::make(2);
    futura::Executor& executor = *owner;
    auto future = executor.submit(square, 16);
    static_assert(std::is_same_v<decltype(future), futura::Future<int>>);
    BOOST_TEST(future.result(should_happen) == 256);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(submit_passes_several_arguments, Factory, ExecutorFactories)
{
    const auto owner = Factory::make(2);
    futura::Executor& executor = *owner;
    BOOST_TEST(executor.submit(mul, 2, 8).result(should_happen) == 16);
    BOOST_TEST(executor.submit(divide, 21, 7).result(should_happen) == 3);
    auto text = executor.submit([](std::string s, int n) { return s + std::to_string(n); },
                                std::string("n="), 3);
    BOOST_TEST(text.result(should_happen) == "n=3");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(submit_accepts_function_objects_and_lambdas, Factory,
                              ExecutorFactories)
{
    const auto owner = Factory::make(2);
    futura::Executor& executor = *owner;
    BOOST_TEST(executor.submit(Multiplier{3}, 5).result(should_happen) == 15);
    BOOST_TEST(executor.submit([] { return 7; }).result(should_happen) == 7);
    // Only in-process executors: a lambda capturing by reference, and std::ref, reach this
    // process's memory. A process pool refuses them (test/process_pool_executor.cpp checks how).
    if constexpr (Factory::shares_memory) {
        const int captured = 40;
        BOOST_TEST(
            executor.submit([&captured](int x) { return captured + x; }, 2).result(should_happen) ==
            42);
        int target = 0;
        executor.submit([](int& out) { out = 9; }, std::ref(target)).result(should_happen);
        BOOST_TEST(target == 9);
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(submit_result_rethrows_the_task_exception_with_its_type, Factory,
                              ExecutorFactories)
{
    const auto owner = Factory::make(2);
    futura::Executor& executor = *owner;
    auto future = executor.submit(divide, 1, 0);
    BOOST_CHECK_EXCEPTION(
        future.result(should_happen), std::domain_error,
        [](const std::domain_error& e) { return std::string(e.what()) == "division by zero"; });
    const auto error = future.exception();
    BOOST_REQUIRE(error);
    BOOST_CHECK_THROW(std::rethrow_exception(error), std::domain_error);
    BOOST_TEST(!future.cancelled());
    BOOST_TEST(future.done());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(failing_tasks_do_not_affect_other_tasks, Factory, ExecutorFactories)
{
    const auto owner = Factory::make(2);
    futura::Executor& executor = *owner;
    std::vector<futura::Future<int>> futures;
    for (int i = 0; i < 40; ++i) {
        futures.push_back(executor.submit(fail_if_odd, i));
    }
    for (int i = 0; i < 40; ++i) {
        const auto& future = futures[static_cast<std::size_t>(i)];
        if (i % 2 == 0) {
            BOOST_TEST(future.result(should_happen) == i);
        } else {
            BOOST_CHECK_THROW(future.result(should_happen), std::invalid_argument);
        }
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(submit_of_a_void_function_gives_a_future_void, Factory,
                              ExecutorFactories)
{
    const auto owner = Factory::make(2);
    futura::Executor& executor = *owner;
    auto future = executor.submit(do_nothing);
    static_assert(std::is_same_v<decltype(future), futura::Future<void>>);
    BOOST_CHECK_NO_THROW(future.result(should_happen));
    BOOST_TEST(!future.exception());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(submit_after_shutdown_throws_shutdown_error, Factory,
                              ExecutorFactories)
{
    // test_run_after_shutdown
    const auto owner = Factory::make(2);
    futura::Executor& executor = *owner;
    executor.shutdown();
    BOOST_CHECK_EXCEPTION((void)executor.submit(mul, 2, 5), futura::ShutdownError,
                          [](const futura::ShutdownError& e) {
                              return std::string(e.what()).find("after shutdown") !=
                                     std::string::npos;
                          });
    // Also as the base classes a user would catch.
    BOOST_CHECK_THROW((void)executor.submit(do_nothing), futura::Error);
    BOOST_CHECK_THROW((void)executor.submit(do_nothing), std::runtime_error);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(map_after_shutdown_throws_shutdown_error, Factory, ExecutorFactories)
{
    const auto owner = Factory::make(2);
    futura::Executor& executor = *owner;
    executor.shutdown({.wait = false});
    BOOST_CHECK_THROW((void)executor.map(square, std::vector{1, 2, 3}), futura::ShutdownError);
    BOOST_CHECK_THROW((void)executor.starmap(mul, std::vector{std::tuple{1, 2}}, {.buffersize = 1}),
                      futura::ShutdownError);
}

// ---------------------------------------------------------------------------------------------
// map and starmap

BOOST_AUTO_TEST_CASE_TEMPLATE(map_returns_results_in_input_order, Factory, ExecutorFactories)
{
    // test_map
    const auto owner = Factory::make(3);
    futura::Executor& executor = *owner;
    std::vector<int> inputs(100);
    for (int i = 0; i < 100; ++i) {
        inputs[static_cast<std::size_t>(i)] = i;
    }
    std::vector<int> expected;
    for (int x : inputs) {
        expected.push_back(x * x);
    }
    std::vector<int> got;
    for (int r : executor.map(square, inputs)) {
        got.push_back(r);
    }
    BOOST_TEST(got == expected);

    got.clear();
    for (int r : executor.map(square, inputs, {.chunksize = 3})) {
        got.push_back(r);
    }
    BOOST_TEST(got == expected);
    BOOST_TEST(inputs.size() == 100U); // an lvalue input is left alone
}

BOOST_AUTO_TEST_CASE_TEMPLATE(map_rethrows_an_element_exception_when_reached_and_goes_on, Factory,
                              ExecutorFactories)
{
    // test_map_exception: divmod(5, [2, 3, 0, 5]); the third raises, the fourth is still read.
    const auto owner = Factory::make(2);
    futura::Executor& executor = *owner;
    const std::vector<std::tuple<int, int>> inputs{{5, 2}, {5, 3}, {5, 0}, {5, 5}};
    for (std::size_t chunksize : {std::size_t{0}, std::size_t{3}}) {
        auto results = executor.starmap(divide, inputs, {.chunksize = chunksize});
        BOOST_TEST(read_outcomes(results) == "2 | 1 | throws: division by zero | 1");
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(map_timeout_error_from_a_task_is_not_the_map_timeout, Factory,
                              ExecutorFactories)
{
    // test_map_timeout_from_callable
    const auto owner = Factory::make(2);
    futura::Executor& executor = *owner;
    for (const auto& timeout : {std::optional<std::chrono::duration<double>>(),
                                std::optional<std::chrono::duration<double>>(should_happen)}) {
        auto results = executor.map(timeout_on_one, std::vector{0, 1, 2, 3}, {.timeout = timeout});
        BOOST_TEST(read_outcomes(results) == "0 | throws: raised by the task | 2 | 3");
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(map_timeout_throws_timeout_error_for_a_late_result, Factory,
                              ExecutorFactories)
{
    // test_map_timeout: the calls for 0 and 1 return at once, the one for 2 is late.
    if constexpr (Factory::concurrent) {
        const auto owner = Factory::make(2);
        futura::Executor& executor = *owner;
        FileGate gate;
        FileGate::Opener open_gate(gate);
        auto results = executor.starmap(wait_at_gate_if_two,
                                        std::vector<std::tuple<std::string, int>>{
                                            {gate.path(), 0}, {gate.path(), 1}, {gate.path(), 2}},
                                        {.timeout = expected_timeout});
        auto it = results.begin();
        // On a loaded machine even the quick ones may miss the deadline (CPython's gh-110097);
        // but whatever is delivered is right, and the late one times out.
        for (int i = 0; i < 2; ++i) {
            try {
                BOOST_TEST(*it == i);
            } catch (const futura::TimeoutError&) {
            }
            ++it;
        }
        BOOST_CHECK_THROW(*it, futura::TimeoutError);
        BOOST_CHECK_THROW(*it, futura::TimeoutError); // and again: the deadline has passed
        gate.open();
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(map_timeout_counts_from_the_call, Factory, ExecutorFactories)
{
    if constexpr (Factory::concurrent) {
        const auto owner = Factory::make(2);
        futura::Executor& executor = *owner;
        FileGate gate;
        FileGate::Opener open_gate(gate);
        constexpr auto timeout = 1s;
        auto results = executor.starmap(wait_at_gate_then_return,
                                        std::vector<std::tuple<std::string, int>>{{gate.path(), 1}},
                                        {.timeout = timeout});
        const auto called = Clock::now();
        std::this_thread::sleep_until(called + timeout + 100ms);
        // The deadline is behind us: reading gives up at once instead of waiting a full
        // timeout from the read.
        const auto read = Clock::now();
        BOOST_CHECK_THROW(*results.begin(), futura::TimeoutError);
        BOOST_TEST((Clock::now() - read < timeout * 0.9));
        gate.open();
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(map_with_buffersize_returns_every_result_in_order, Factory,
                              ExecutorFactories)
{
    // test_map_buffersize, test_map_buffersize_on_multiple_iterables
    const auto owner = Factory::make(2);
    futura::Executor& executor = *owner;
    for (std::size_t buffersize : {1U, 2U, 4U, 8U}) {
        auto results = executor.map(square, std::views::iota(0, 4), {.buffersize = buffersize});
        BOOST_TEST(read_outcomes(results) == values({0, 1, 4, 9}));
        auto sums =
            executor.starmap(add, std::vector<std::tuple<int, int>>{{0, 0}, {1, 1}, {2, 2}, {3, 3}},
                             {.buffersize = buffersize});
        BOOST_TEST(read_outcomes(sums) == values({0, 2, 4, 6}));
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(map_with_buffersize_takes_only_buffersize_inputs_ahead, Factory,
                              ExecutorFactories)
{
    // test_map_buffersize_when_buffer_is_full
    const auto owner = Factory::make(2);
    futura::Executor& executor = *owner;
    constexpr int buffersize = 2;
    CountingInput input(100);
    auto results = executor.map(square, input, {.buffersize = std::size_t{buffersize}});
    BOOST_TEST(input.pulled() == buffersize);
    int read = 0;
    for (int r : results) {
        BOOST_TEST(r == read * read);
        ++read;
        // Reading one result may submit one more input, never more than buffersize ahead.
        BOOST_TEST(input.pulled() <= read + buffersize);
        if (read == 10) {
            break;
        }
    }
    BOOST_TEST(input.pulled() <= 10 + buffersize);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(map_with_buffersize_consumes_an_endless_input_lazily, Factory,
                              ExecutorFactories)
{
    // test_map_buffersize_on_infinite_iterable, ..._on_multiple_infinite_iterables
    const auto owner = Factory::make(2);
    futura::Executor& executor = *owner;
    {
        auto results = executor.map(square, std::views::iota(0), {.buffersize = 2});
        BOOST_TEST(read_outcomes(results, 3) == values({0, 1, 4}));
    }
    {
        CountingInput endless;
        auto results = executor.map(square, endless, {.buffersize = 2});
        BOOST_TEST(read_outcomes(results, 3) == values({0, 1, 4}));
        BOOST_TEST(endless.pulled() <= 3 + 2);
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(map_over_an_empty_input_yields_nothing, Factory, ExecutorFactories)
{
    // test_map_buffersize_on_empty_iterable
    const auto owner = Factory::make(2);
    futura::Executor& executor = *owner;
    auto results = executor.map(square, std::vector<int>{});
    BOOST_TEST((results.begin() == results.end()));
    auto buffered = executor.map(square, std::vector<int>{}, {.buffersize = 2});
    BOOST_TEST((buffered.begin() == buffered.end()));
    auto starred = executor.starmap(mul, std::vector<std::tuple<int, int>>{});
    BOOST_TEST((starred.begin() == starred.end()));
    BOOST_TEST(executor.stats().submitted == 0U);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(map_accepts_an_rvalue_view, Factory, ExecutorFactories)
{
    const auto owner = Factory::make(2);
    futura::Executor& executor = *owner;
    int expected = 0;
    int count = 0;
    for (int r : executor.map(square, std::views::iota(0, 100))) {
        BOOST_TEST(r == expected * expected);
        ++expected;
        ++count;
    }
    BOOST_TEST(count == 100);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(map_buffersize_zero_throws_invalid_argument, Factory,
                              ExecutorFactories)
{
    // test_map_buffersize_value_validation
    const auto owner = Factory::make(2);
    futura::Executor& executor = *owner;
    BOOST_CHECK_THROW((void)executor.map(square, std::vector{1, 2}, {.buffersize = 0}),
                      std::invalid_argument);
    BOOST_CHECK_THROW((void)executor.starmap(mul, std::vector{std::tuple{1, 2}}, {.buffersize = 0}),
                      std::invalid_argument);
    BOOST_TEST(executor.stats().submitted == 0U); // nothing was submitted
}

BOOST_AUTO_TEST_CASE_TEMPLATE(destroying_map_results_cancels_pending_calls, Factory,
                              ExecutorFactories)
{
    // test_executor_map_current_future_cancel, test_map_close
    if constexpr (Factory::concurrent) {
        const auto owner = Factory::make(1);
        futura::Executor& executor = *owner;
        TempDir log; // "IDENT started", "IDENT stopped"
        FileGate gate;
        FileGate::Opener open_gate(gate);
        using Calls = std::vector<std::tuple<std::string, std::string, std::string>>;
        const auto calls = [&](std::initializer_list<const char*> idents) {
            Calls made;
            for (const char* ident : idents) {
                made.emplace_back(log.path().string(), gate.path(), ident);
            }
            return made;
        };
        // Saturate the one worker.
        auto first =
            executor.submit(log_and_wait, log.path().string(), gate.path(), std::string("first"));
        BOOST_TEST(gate.wait_for_waiters(1));
        {
            auto results =
                executor.starmap(log_and_wait, calls({"second", "third"}), {.timeout = 0s});
            BOOST_CHECK_THROW(*results.begin(), futura::TimeoutError);
        }
        {
            auto results = executor.starmap(log_and_wait, calls({"fourth"}));
        }
        gate.open();
        BOOST_TEST(first.result(should_happen) == 0);
        executor.shutdown();
        BOOST_TEST(log.files() == (std::vector<std::string>{"first started", "first stopped"}));
        BOOST_TEST(executor.stats().cancelled == 3U);
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(map_results_stay_readable_after_the_executor_is_gone, Factory,
                              ExecutorFactories)
{
    // test_del_shutdown, test_shutdown_no_wait, test_context_manager_shutdown
    using Results = decltype(std::declval<futura::Executor&>().map(absolute, std::vector<int>{}));
    std::optional<Results> results;
    {
        const auto owner = Factory::make(5);
        results.emplace(owner->map(absolute, std::views::iota(-5, 5)));
    } // the destructor waits for every call
    BOOST_TEST(read_outcomes(*results) == values({5, 4, 3, 2, 1, 0, 1, 2, 3, 4}));

    {
        const auto owner = Factory::make(5);
        results.emplace(owner->map(absolute, std::views::iota(-5, 5)));
        owner->shutdown({.wait = false});
    }
    BOOST_TEST(read_outcomes(*results) == values({5, 4, 3, 2, 1, 0, 1, 2, 3, 4}));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(map_submits_every_input_without_being_read, Factory,
                              ExecutorFactories)
{
    // test_map_submits_without_iteration
    const auto owner = Factory::make(2);
    futura::Executor& executor = *owner;
    TempDir marks; // "N" for each input N that ran
    std::vector<std::tuple<std::string, int>> inputs;
    for (int n = 0; n < 10; ++n) {
        inputs.emplace_back(marks.path().string(), n);
    }
    auto results = executor.starmap(leave_numbered_mark, inputs);
    executor.shutdown();
    BOOST_TEST(marks.files() ==
               (std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(map_does_not_keep_consumed_results_alive, Factory, ExecutorFactories)
{
    // test_free_reference
    // Only in-process executors: the results are std::shared_ptr, watched through std::weak_ptr,
    // which cannot come back from another process.
    if constexpr (Factory::shares_memory) {
        const auto owner = Factory::make(2);
        futura::Executor& executor = *owner;
        std::weak_ptr<int> previous;
        int count = 0;
        for (const auto& object : executor.map([](int i) { return std::make_shared<int>(i); },
                                               std::views::iota(0, 10))) {
            BOOST_TEST(eventually([&] { return previous.expired(); }));
            previous = object;
            ++count;
        }
        BOOST_TEST(count == 10);
        BOOST_TEST(eventually([&] { return previous.expired(); }));
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(starmap_unpacks_each_tuple_into_arguments, Factory, ExecutorFactories)
{
    const auto owner = Factory::make(2);
    futura::Executor& executor = *owner;
    const std::vector<std::tuple<int, int>> tuples{{1, 2}, {3, 4}, {5, 6}};
    auto products = executor.starmap(mul, tuples);
    BOOST_TEST(read_outcomes(products) == values({2, 12, 30}));

    const std::vector<std::pair<int, int>> pairs{{10, 2}, {9, 3}};
    auto quotients = executor.starmap(divide, pairs, {.buffersize = 1});
    BOOST_TEST(read_outcomes(quotients) == values({5, 3}));

    auto strings_made = executor.starmap([](std::string s, int n) { return s + std::to_string(n); },
                                         std::vector{std::tuple{std::string("a"), 1}});
    BOOST_TEST(read_outcomes(strings_made) == "a1");
}

// ---------------------------------------------------------------------------------------------
// shutdown

BOOST_AUTO_TEST_CASE_TEMPLATE(shutdown_is_idempotent, Factory, ExecutorFactories)
{
    const auto owner = Factory::make(2);
    futura::Executor& executor = *owner;
    auto future = executor.submit(square, 3);
    executor.shutdown();
    BOOST_CHECK_NO_THROW(executor.shutdown());
    BOOST_CHECK_NO_THROW(executor.shutdown({.wait = false}));
    BOOST_CHECK_NO_THROW(executor.shutdown({.wait = true, .cancel_futures = true}));
    BOOST_TEST(future.result() == 9);
    BOOST_CHECK_THROW((void)executor.submit(square, 3), futura::ShutdownError);
} // and the destructor shuts down once more

BOOST_AUTO_TEST_CASE_TEMPLATE(shutdown_with_wait_runs_all_pending_work, Factory, ExecutorFactories)
{
    // test_hang_issue12364
    const auto owner = Factory::make(2);
    futura::Executor& executor = *owner;
    std::vector<futura::Future<int>> futures;
    for (int i = 0; i < 50; ++i) {
        futures.push_back(executor.submit(sleep_then_return, 1));
    }
    executor.shutdown();
    for (const auto& future : futures) {
        BOOST_TEST(future.done());
        BOOST_TEST(future.result() == 1);
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(shutdown_without_wait_returns_while_work_runs, Factory,
                              ExecutorFactories)
{
    // test_hang_gh83386, test_shutdown_no_wait
    if constexpr (Factory::concurrent) {
        const auto owner = Factory::make(2);
        futura::Executor& executor = *owner;
        FileGate gate;
        FileGate::Opener open_gate(gate);
        auto running = executor.submit(wait_at_gate, gate.path());
        auto queued = executor.submit(square, 4);
        BOOST_TEST(gate.wait_for_waiters(1));
        executor.shutdown({.wait = false}); // would hang until hang_limit if it waited
        BOOST_TEST(!running.done());
        BOOST_TEST(!gate.gave_up());
        BOOST_CHECK_THROW((void)executor.submit(square, 5), futura::ShutdownError);
        gate.open();
        BOOST_TEST(running.result(should_happen));
        BOOST_TEST(queued.result(should_happen) == 16); // queued work still runs
        executor.shutdown();                            // now wait for the workers
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(shutdown_with_wait_blocks_until_running_work_is_done, Factory,
                              ExecutorFactories)
{
    if constexpr (Factory::concurrent) {
        const auto owner = Factory::make(2);
        futura::Executor& executor = *owner;
        FileGate gate;
        FileGate::Opener open_gate(gate);
        auto running = executor.submit(wait_at_gate, gate.path());
        BOOST_TEST(gate.wait_for_waiters(1));
        std::atomic<bool> returned{false};
        std::jthread shutter([&] {
            executor.shutdown();
            returned = true;
        });
        // However the threads are scheduled, shutdown cannot have returned: the task still runs.
        BOOST_TEST(!returned.load());
        BOOST_TEST(!running.done());
        gate.open();
        shutter.join();
        BOOST_TEST(returned.load());
        BOOST_TEST(running.done());
        BOOST_TEST(running.result());
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(shutdown_with_cancel_futures_cancels_pending_work, Factory,
                              ExecutorFactories)
{
    // test_cancel_futures, made deterministic: the one worker is busy, so all queued work is
    // still pending when shutdown runs.
    if constexpr (Factory::concurrent) {
        const auto owner = Factory::make(1);
        futura::Executor& executor = *owner;
        FileGate gate;
        FileGate::Opener open_gate(gate);
        auto running = executor.submit(wait_at_gate, gate.path());
        BOOST_TEST(gate.wait_for_waiters(1));
        std::vector<futura::Future<int>> pending;
        Countdown all_cancelled(10);
        for (int i = 0; i < 10; ++i) {
            pending.push_back(executor.submit(square, i));
            pending.back().add_done_callback([&all_cancelled] { all_cancelled.count_down(); });
        }
        // shutdown(wait) blocks on the running task: open the gate once the rest is cancelled.
        std::jthread opener([&] {
            all_cancelled.wait();
            gate.open();
        });
        executor.shutdown({.wait = true, .cancel_futures = true});
        for (const auto& future : pending) {
            BOOST_TEST(future.cancelled());
            BOOST_CHECK_THROW(future.result(), futura::CancelledError);
        }
        BOOST_TEST(running.result()); // the running one was not cancelled
        const auto stats = executor.stats();
        BOOST_TEST(stats.cancelled == 10U);
        BOOST_TEST(stats.completed == 1U);
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(shutdown_without_wait_but_with_cancel_futures, Factory,
                              ExecutorFactories)
{
    // test_cancel_futures_wait_false
    if constexpr (Factory::concurrent) {
        const auto owner = Factory::make(1);
        futura::Executor& executor = *owner;
        FileGate gate;
        FileGate::Opener open_gate(gate);
        auto running = executor.submit(wait_at_gate, gate.path());
        BOOST_TEST(gate.wait_for_waiters(1));
        auto pending = executor.submit(square, 2);
        executor.shutdown({.wait = false, .cancel_futures = true});
        BOOST_TEST(pending.cancelled());
        BOOST_TEST(!running.done());
        gate.open();
        BOOST_TEST(running.result(should_happen));
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(shutdown_after_cancelling_a_queued_future_does_not_hang, Factory,
                              ExecutorFactories)
{
    // test_hang_gh94440
    const auto owner = Factory::make(1);
    futura::Executor& executor = *owner;
    executor.submit(do_nothing).result(should_happen);
    executor.submit(do_nothing).cancel();
    executor.shutdown();
    const auto stats = executor.stats();
    BOOST_TEST(stats.submitted == stats.completed + stats.failed + stats.cancelled);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(shutdown_right_after_map_does_not_hang, Factory, ExecutorFactories)
{
    // test_shutdown_race_issue12456
    const auto owner = Factory::make(2);
    futura::Executor& executor = *owner;
    auto results = executor.map(square, std::vector<int>(3, 2));
    executor.shutdown();
    BOOST_TEST(read_outcomes(results) == values({4, 4, 4}));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(shutdown_from_inside_a_task, Factory, ExecutorFactories)
{
    // Only in-process executors: the task calls its own executor, which a task in a worker
    // process has no way to reach.
    if constexpr (Factory::shares_memory) {
        for (const bool wait : {true, false}) {
            const auto owner = Factory::make(2);
            futura::Executor& executor = *owner;
            auto future = executor.submit([&executor, wait] {
                executor.shutdown({.wait = wait}); // must not wait for this very task
                return 1;
            });
            BOOST_TEST(future.result(should_happen) == 1);
            BOOST_CHECK_THROW((void)executor.submit(square, 2), futura::ShutdownError);
        }
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(destructor_waits_for_queued_work, Factory, ExecutorFactories)
{
    std::vector<futura::Future<int>> futures;
    {
        const auto owner = Factory::make(2);
        for (int i = 0; i < 50; ++i) {
            futures.push_back(owner->submit(sleep_then_return, 1));
        }
    }
    int ran = 0; // a value proves that the call ran
    for (const auto& future : futures) {
        BOOST_TEST(future.done());
        ran += future.done() && !future.exception() && future.result() == 1 ? 1 : 0;
    }
    BOOST_TEST(ran == 50);
}

// ---------------------------------------------------------------------------------------------
// stats and max_workers

BOOST_AUTO_TEST_CASE_TEMPLATE(stats_of_a_new_executor_are_zero, Factory, ExecutorFactories)
{
    const auto owner = Factory::make(2);
    const auto stats = owner->stats();
    BOOST_TEST(stats.submitted == 0U);
    BOOST_TEST(stats.queued == 0U);
    BOOST_TEST(stats.running == 0U);
    BOOST_TEST(stats.completed == 0U);
    BOOST_TEST(stats.failed == 0U);
    BOOST_TEST(stats.cancelled == 0U);
    BOOST_TEST(stats.workers_replaced == 0U);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(stats_account_for_every_submitted_call, Factory, ExecutorFactories)
{
    const auto owner = Factory::make(2);
    futura::Executor& executor = *owner;
    std::size_t expect_completed = 0;
    std::size_t expect_failed = 0;
    std::size_t expect_cancelled = 0;
    FileGate gate;
    FileGate::Opener open_gate(gate);
    std::vector<futura::Future<bool>> blockers;
    std::vector<futura::Future<int>> victims;
    if constexpr (Factory::concurrent) {
        // Both workers busy: work queued behind them can be cancelled for sure.
        for (int i = 0; i < 2; ++i) {
            blockers.push_back(executor.submit(wait_at_gate, gate.path()));
        }
        BOOST_TEST(gate.wait_for_waiters(2));
        for (int i = 0; i < 5; ++i) {
            victims.push_back(executor.submit(square, i));
            BOOST_TEST(victims.back().cancel());
        }
        expect_completed += 2;
        expect_cancelled += 5;
    }
    std::vector<futura::Future<int>> futures;
    for (int i = 0; i < 30; ++i) {
        futures.push_back(executor.submit(fail_if_odd, i < 20 ? 2 * i : 1));
    }
    expect_completed += 20;
    expect_failed += 10;
    if constexpr (Factory::concurrent) {
        const auto during = executor.stats();
        BOOST_TEST(during.running == 2U);
        BOOST_TEST(during.queued == 35U);
        BOOST_TEST(during.completed == 0U);
    }
    gate.open();
    executor.shutdown();
    const auto stats = executor.stats();
    BOOST_TEST(stats.submitted == expect_completed + expect_failed + expect_cancelled);
    BOOST_TEST(stats.completed == expect_completed);
    BOOST_TEST(stats.failed == expect_failed);
    BOOST_TEST(stats.cancelled == expect_cancelled);
    BOOST_TEST(stats.queued == 0U);
    BOOST_TEST(stats.running == 0U);
    BOOST_TEST(stats.submitted == stats.completed + stats.failed + stats.cancelled);
    if constexpr (Factory::concurrent) {
        BOOST_TEST(stats.workers_alive == 0U); // shut down and joined
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(max_workers_defaults_to_available_cpus, Factory, ExecutorFactories)
{
    // test_default_workers
    const auto owner = Factory::make_default();
    if constexpr (Factory::sized) {
        BOOST_TEST(owner->max_workers() == futura::available_cpus());
    } else {
        BOOST_TEST(owner->max_workers() == 1U);
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(max_workers_reports_the_size_given, Factory, ExecutorFactories)
{
    if constexpr (Factory::sized) {
        BOOST_TEST(Factory::make(1)->max_workers() == 1U);
        BOOST_TEST(Factory::make(3)->max_workers() == 3U);
        BOOST_TEST(Factory::make(64)->max_workers() == 64U);
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(max_workers_not_positive_throws_invalid_argument, Factory,
                              ExecutorFactories)
{
    // test_max_workers_negative
    if constexpr (Factory::sized) {
        for (const int number : {0, -1, -100}) {
            BOOST_CHECK_EXCEPTION((void)Factory::make(number), std::invalid_argument,
                                  [](const std::invalid_argument& e) {
                                      return std::string(e.what()).find(
                                                 "max_workers must be greater than 0") !=
                                             std::string::npos;
                                  });
        }
    }
}

namespace {
/// What the running task knows of its worker: whether it has one, and its index, pid and name.
std::tuple<bool, std::size_t, int, std::string> worker_of_this_call()
{
    const auto worker = futura::current_worker();
    if (!worker) {
        return {false, 0, 0, ""};
    }
    return {true, worker->index, worker->pid, worker->name};
}
} // namespace

BOOST_AUTO_TEST_CASE_TEMPLATE(current_worker_names_the_worker_that_runs_the_task, Factory,
                              ExecutorFactories)
{
    // Python's current_process().name / os.getpid() in a task
    BOOST_TEST(!futura::current_worker().has_value()); // the test's own thread is no worker
    const auto owner = Factory::make(2);
    const auto [has, index, pid, name] = owner->submit(worker_of_this_call).result();
    if constexpr (!Factory::concurrent) {
        BOOST_TEST(!has); // runs in the caller's thread, which is no worker
    } else {
        BOOST_TEST(has);
        BOOST_TEST(index < 2U);
        if constexpr (Factory::shares_memory) {
            BOOST_TEST(pid == static_cast<int>(::getpid()));
            BOOST_TEST(name == "futura_" + std::to_string(index));
        } else {
            BOOST_TEST(pid != static_cast<int>(::getpid()));
            BOOST_TEST(name == "futura-worker-" + std::to_string(index));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Concurrency and lifetime

BOOST_AUTO_TEST_CASE_TEMPLATE(many_concurrent_submitters_all_get_their_results, Factory,
                              ExecutorFactories)
{
    const auto owner = Factory::make(3);
    futura::Executor& executor = *owner;
    constexpr int threads = 4;
    constexpr int per_thread = 250;
    std::vector<std::vector<futura::Future<int>>> futures(threads);
    std::vector<std::string> errors(threads);
    std::latch start(threads);
    {
        std::vector<std::jthread> submitters;
        for (int t = 0; t < threads; ++t) {
            submitters.emplace_back([&, t] {
                auto& mine = futures[static_cast<std::size_t>(t)];
                start.arrive_and_wait();
                try {
                    for (int i = 0; i < per_thread; ++i) {
                        mine.push_back(executor.submit(mul, t + 1, i));
                    }
                } catch (const std::exception& e) {
                    errors[static_cast<std::size_t>(t)] = e.what();
                }
            });
        }
    }
    int right = 0;
    for (int t = 0; t < threads; ++t) {
        const auto& mine = futures[static_cast<std::size_t>(t)];
        BOOST_TEST(errors[static_cast<std::size_t>(t)].empty(),
                   errors[static_cast<std::size_t>(t)]);
        BOOST_REQUIRE(mine.size() == static_cast<std::size_t>(per_thread));
        for (int i = 0; i < per_thread; ++i) {
            right += mine[static_cast<std::size_t>(i)].result(should_happen) == (t + 1) * i ? 1 : 0;
        }
    }
    BOOST_TEST(right == threads * per_thread);
    executor.shutdown();
    BOOST_TEST(executor.stats().submitted == static_cast<std::size_t>(threads * per_thread));
    BOOST_TEST(executor.stats().completed == static_cast<std::size_t>(threads * per_thread));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(no_stale_references_to_a_finished_call, Factory, ExecutorFactories)
{
    // test_no_stale_references: the callable and its arguments die with the call, even while the
    // future is kept, and even when it was discarded.
    const auto owner = Factory::make(2);
    futura::Executor& executor = *owner;
    const int live_before = Counted::live.load();
    auto kept = executor.submit(Counted{1});
    (void)executor.submit(value_of, Counted{2});
    BOOST_TEST(kept.result(should_happen) == 1);
    BOOST_TEST(eventually([&] { return Counted::live.load() == live_before; }));
    BOOST_TEST(kept.result() == 1);
    // The same with captured resources: only in-process executors take a lambda that captures
    // a std::shared_ptr (a process pool cannot send one).
    if constexpr (Factory::shares_memory) {
        auto in_callable = std::make_shared<int>(1);
        auto in_argument = std::make_shared<int>(2);
        const std::weak_ptr<int> callable_watch = in_callable;
        const std::weak_ptr<int> argument_watch = in_argument;
        auto captured = executor.submit([held = std::move(in_callable)] { return *held; });
        (void)executor.submit([](const std::shared_ptr<int>& p) { return *p; },
                              std::move(in_argument));
        BOOST_TEST(captured.result(should_happen) == 1);
        BOOST_TEST(eventually([&] { return callable_watch.expired(); }));
        BOOST_TEST(eventually([&] { return argument_watch.expired(); }));
        BOOST_TEST(captured.result() == 1);
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(cancelled_call_releases_its_callable, Factory, ExecutorFactories)
{
    if constexpr (Factory::concurrent) {
        const auto owner = Factory::make(1);
        futura::Executor& executor = *owner;
        FileGate gate;
        FileGate::Opener open_gate(gate);
        auto blocker = executor.submit(wait_at_gate, gate.path());
        BOOST_TEST(gate.wait_for_waiters(1));
        const int live_before = Counted::live.load();
        auto victim = executor.submit(Counted{3});
        BOOST_TEST(victim.cancel());
        gate.open();
        BOOST_TEST(blocker.result(should_happen));
        BOOST_TEST(eventually([&] { return Counted::live.load() == live_before; }));
    }
}

BOOST_AUTO_TEST_SUITE_END()

// Not typed: the number every pool defaults to.
BOOST_AUTO_TEST_CASE(available_cpus_is_the_affinity_mask_capped_and_at_least_one)
{
    const std::size_t cpus = futura::available_cpus();
    BOOST_TEST(cpus >= 1U);
    cpu_set_t set;
    CPU_ZERO(&set);
    BOOST_REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
    BOOST_TEST(cpus <= static_cast<std::size_t>(CPU_COUNT(&set)));
    BOOST_TEST(futura::available_cpus() == cpus); // stable
}

BOOST_AUTO_TEST_CASE(available_cpus_follows_the_affinity_mask_like_nproc)
{
    // Restrict this thread to one CPU (as `taskset -c N` would), then restore the mask.
    cpu_set_t saved;
    CPU_ZERO(&saved);
    BOOST_REQUIRE(sched_getaffinity(0, sizeof saved, &saved) == 0);
    struct Restore
    {
        cpu_set_t& mask;
        ~Restore() { sched_setaffinity(0, sizeof mask, &mask); }
    } restore{saved};
    constexpr auto cpu_limit = static_cast<std::size_t>(CPU_SETSIZE);
    std::size_t first = 0;
    while (first < cpu_limit && !CPU_ISSET(first, &saved)) {
        ++first;
    }
    BOOST_REQUIRE(first < cpu_limit);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    BOOST_REQUIRE(sched_setaffinity(0, sizeof one, &one) == 0);
    BOOST_TEST(futura::available_cpus() == 1U);
    BOOST_TEST(futura::ThreadPoolExecutor().max_workers() == 1U);
}

// The bookkeeping piece the executors share (detail/admission.hpp, detail/task_counts.hpp): the
// typed suite above checks it through every executor; these name what each refusal gives.
BOOST_AUTO_TEST_SUITE(executor_bookkeeping)

BOOST_AUTO_TEST_CASE(admission_counts_what_it_accepts_and_refuses_after_shutdown)
{
    futura::detail::Admission<futura::BrokenThreadPool> admission;
    BOOST_TEST(admission.accepting());
    admission.accept();
    admission.check(); // counts nothing
    admission.accept();
    BOOST_TEST(admission.accepted() == 2U);
    admission.shut_down();
    BOOST_TEST(!admission.accepting());
    BOOST_TEST(!admission.broken());
    BOOST_CHECK_THROW(admission.accept(), futura::ShutdownError);
    BOOST_CHECK_THROW(admission.check(), futura::ShutdownError);
    BOOST_TEST(admission.accepted() == 2U); // a refused task is not counted
}

BOOST_AUTO_TEST_CASE(a_broken_admission_refuses_with_the_first_reason_even_after_shutdown)
{
    futura::detail::Admission<futura::BrokenProcessPool> admission;
    admission.shut_down();
    BOOST_TEST(admission.break_with("the first reason"));
    BOOST_TEST(!admission.break_with("a later reason")); // the first stays
    BOOST_TEST(admission.broken());
    BOOST_TEST(!admission.accepting());
    BOOST_TEST(admission.why_broken() == "the first reason");
    try {
        admission.accept();
        BOOST_FAIL("a broken admission accepted a task");
    } catch (const futura::BrokenProcessPool& e) {
        BOOST_TEST(std::string(e.what()) == "the first reason");
    }
    BOOST_TEST(admission.accepted() == 0U);
}

BOOST_AUTO_TEST_CASE(task_counts_add_running_and_each_outcome_to_the_stats)
{
    using futura::detail::TaskOutcome;
    futura::detail::TaskCounts<futura::detail::LockedCount> locked;
    futura::detail::TaskCounts<futura::detail::OwnCount> own;
    futura::detail::TaskCounts<futura::detail::SharedCount> shared;
    locked.start();
    locked.start();
    locked.finish(TaskOutcome::completed);
    locked.count(TaskOutcome::cancelled, 3);
    own.start();
    own.finish(TaskOutcome::failed);
    shared.start();
    shared.count(TaskOutcome::failed, 2);
    futura::ExecutorStats stats;
    stats.running = 10; // add_to adds to what is there
    locked.add_to(stats);
    own.add_to(stats);
    shared.add_to(stats);
    BOOST_TEST(stats.running == 10U + 1U + 0U + 1U);
    BOOST_TEST(stats.completed == 1U);
    BOOST_TEST(stats.failed == 1U + 2U);
    BOOST_TEST(stats.cancelled == 3U);
    BOOST_TEST(stats.submitted == 0U); // the admission's, not the counts'
}

BOOST_AUTO_TEST_SUITE_END()
