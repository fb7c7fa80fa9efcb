// Composing futures: Future<T>::then, when_all, when_all_done, when_any, unwrap, ready and failed
// futures, and co_await in a coroutine type of our own (not Asio's).
//
// The typed tests run once per executor of support.hpp: the antecedents come from that
// executor, so each says where continuations of its futures run, and what flows through.
#include <futura/compose.hpp>
#include <futura/inline_executor.hpp>
#include <futura/process_pool_executor.hpp>
#include <futura/thread_pool_executor.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <latch>
#include <memory>
#include <pthread.h>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <unistd.h>
#include <variant>
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

/// A worker of a `ThreadPoolExecutor` named by default (`futura_<n>`), not of the shared
/// continuation pool (`futura_then_<n>`).
bool is_pool_worker(const std::string& name)
{
    return name.starts_with("futura_") && !name.starts_with("futura_then");
}

bool is_continuation_pool(const std::string& name) { return name.starts_with("futura_then_"); }

int process_id(int /*unused*/) { return static_cast<int>(::getpid()); }

/// Returns 1 once the gate opens, -1 if it gave up: a task for every executor.
int wait_at_gate_then_return_one(std::string gate)
{
    return wait_at_gate(std::move(gate)) ? 1 : -1;
}

/// Counts its live instances: a value whose copies show which links of a chain are alive.
struct Tracked
{
    static inline std::atomic<int> live{0};
    static inline std::atomic<int> most{0};
    static inline std::atomic<int> copies{0};
    int value = 0;

    explicit Tracked(int v) noexcept : value(v) { count(); }
    Tracked(const Tracked& other) noexcept : value(other.value)
    {
        count();
        ++copies;
    }
    Tracked(Tracked&& other) noexcept : value(other.value) { count(); }
    Tracked& operator=(const Tracked&) = default;
    Tracked& operator=(Tracked&&) = default;
    ~Tracked() { --live; }

    static void count() noexcept { raise_to(most, ++live); }
    static void reset() noexcept { most = live.load(); }
};

/// A minimal eager coroutine type of our own (not Asio's): its result is a futura::Future.
template <class T>
struct Coroutine
{
    struct promise_type
    {
        futura::Promise<T> promise;

        Coroutine get_return_object() { return Coroutine{promise.get_future()}; }
        std::suspend_never initial_suspend() noexcept { return {}; }
        std::suspend_never final_suspend() noexcept { return {}; }
        void return_value(T value) { promise.set_result(std::move(value)); }
        void unhandled_exception() { promise.set_exception(std::current_exception()); }
    };

    futura::Future<T> future;
};

} // namespace

BOOST_AUTO_TEST_SUITE(compose)

// ---------------------------------------------------------------------------------------------
// then: values, where it runs, exceptions

BOOST_AUTO_TEST_CASE_TEMPLATE(then_passes_the_value_and_gives_a_future_of_the_result, Factory,
                              ExecutorFactories)
{
    const auto owner = Factory::make(2);
    auto result = owner->submit(mul, 6, 7).then([](int v) { return std::to_string(v); });
    static_assert(std::is_same_v<decltype(result), futura::Future<std::string>>);
    BOOST_TEST(result.result(should_happen) == "42");
    auto chained = owner->submit(add, 1, 1)
                       .then([](int v) { return v * 10; })
                       .then([](int v) { return v + 1; })
                       .then([](int v) { return v * 2; });
    BOOST_TEST(chained.result(should_happen) == 42);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(continuation_runs_where_its_antecedent_ran, Factory,
                              ExecutorFactories)
{
    const auto owner = Factory::make(2);
    const auto caller = std::this_thread::get_id();
    auto where = owner->submit(square, 3).then([caller](int) {
        return std::make_pair(this_thread_name(), std::this_thread::get_id() == caller);
    });
    const auto [name, in_caller] = where.result(should_happen);
    if constexpr (Factory::name == "ThreadPoolExecutor") {
        // Submitted to the same pool: one of its workers, not the caller, not the shared pool.
        BOOST_TEST(is_pool_worker(name), name);
        BOOST_TEST(!in_caller);
        BOOST_TEST(owner->stats().submitted == 2U); // the continuation was a task of the pool
    } else if constexpr (Factory::name == "InlineExecutor") {
        // The antecedent was done before `then`; its executor runs continuations inline.
        BOOST_TEST(in_caller);
    } else {
        // Never on the process pool's I/O thread: on the shared continuation pool.
        BOOST_TEST(is_continuation_pool(name), name);
    }
}

BOOST_AUTO_TEST_CASE(a_chain_stays_on_its_pool_and_a_pending_antecedent_does_not_run_it_inline)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2, .thread_name_prefix = "chain"}};
    Gate gate;
    const Gate::Opener opener(gate);
    auto first = pool.submit([&gate] {
        (void)gate.wait();
        return std::this_thread::get_id();
    });
    auto second = first.then(
        [](std::thread::id completer) { return std::make_pair(completer, this_thread_name()); });
    auto third = second.then([](const auto&) { return this_thread_name(); });
    gate.open();
    const auto [completer, name] = second.result(should_happen);
    BOOST_TEST(name.starts_with("chain_"), name);
    BOOST_TEST(third.result(should_happen).starts_with("chain_"));
    BOOST_TEST(pool.stats().submitted == 3U);
}

BOOST_AUTO_TEST_CASE(an_executor_picked_in_options_runs_the_continuation)
{
    futura::ThreadPoolExecutor producer{{.max_workers = 1, .thread_name_prefix = "producer"}};
    futura::ThreadPoolExecutor consumer{{.max_workers = 1, .thread_name_prefix = "consumer"}};
    futura::InlineExecutor inline_executor;
    auto there = producer.submit(square, 2).then([](int) { return this_thread_name(); },
                                                 {.executor = &consumer});
    BOOST_TEST(there.result(should_happen) == "consumer_0");

    // Inline: in the thread that completes the antecedent (here, the promise's setter).
    futura::Promise<int> promise;
    auto here = promise.get_future().then([](int) { return std::this_thread::get_id(); },
                                          {.executor = &inline_executor});
    BOOST_TEST(!here.done());
    std::thread completer([&promise] { promise.set_result(1); });
    const auto completer_id = completer.get_id();
    completer.join();
    BOOST_TEST((here.result(should_happen) == completer_id));
}

BOOST_AUTO_TEST_CASE(futures_no_executor_ran_continue_on_the_shared_pool)
{
    BOOST_TEST(is_continuation_pool(
        futura::make_ready_future(1).then([](int) { return this_thread_name(); }).result()));
    futura::Promise<void> promise;
    auto name = promise.get_future().then([] { return this_thread_name(); });
    promise.set_result();
    BOOST_TEST(is_continuation_pool(name.result(should_happen)));
}

BOOST_AUTO_TEST_CASE(a_process_pool_runs_a_continuation_it_is_given)
{
    futura::ProcessPoolExecutor processes{{.max_workers = 1}};
    // The value travels to a worker with the function, as a submit's arguments do.
    auto squared = futura::make_ready_future(9).then(square, {.executor = &processes});
    BOOST_TEST(squared.result(should_happen) == 81);
    auto pid = futura::make_ready_future(0).then(process_id, {.executor = &processes});
    BOOST_TEST(pid.result(should_happen) != static_cast<int>(::getpid()));
    // What cannot travel fails the continuation's future, not the program.
    futura::Executor& any = processes;
    auto capturing =
        futura::make_ready_future(1).then([&any](int v) { return v; }, {.executor = &any});
    BOOST_CHECK_THROW((void)capturing.result(should_happen), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(continuations_outlive_the_executor_of_their_antecedent)
{
    futura::Promise<int> gate;
    futura::Future<std::string> later;
    {
        futura::ThreadPoolExecutor pool{{.max_workers = 1}};
        auto first = pool.submit(square, 3);
        (void)first.result(should_happen);
        later = first.then([](int) { return this_thread_name(); });
        (void)later.result(should_happen);
        // A continuation added after the pool shut down goes to the shared pool.
        pool.shutdown();
        auto after = first.then([](int v) { return v + 1; });
        BOOST_TEST(after.result(should_happen) == 10);
        later = first.then([](int) { return this_thread_name(); });
    }
    BOOST_TEST(is_continuation_pool(later.result(should_happen)));
}

BOOST_AUTO_TEST_CASE(a_chosen_executor_that_refuses_fails_the_continuation)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    pool.shutdown();
    auto refused = futura::make_ready_future(1).then([](int v) { return v; }, {.executor = &pool});
    BOOST_CHECK_THROW((void)refused.result(should_happen), futura::ShutdownError);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(an_antecedent_exception_skips_a_value_continuation, Factory,
                              ExecutorFactories)
{
    const auto owner = Factory::make(2);
    std::atomic<bool> ran{false};
    auto result = owner->submit(divide, 1, 0).then([&ran](int v) {
        ran = true;
        return v;
    });
    BOOST_CHECK_THROW((void)result.result(should_happen), std::domain_error);
    BOOST_TEST(!ran);
    BOOST_TEST(!result.cancelled());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_future_continuation_sees_the_exception_and_may_recover, Factory,
                              ExecutorFactories)
{
    const auto owner = Factory::make(2);
    auto recovered = owner->submit(divide, 1, 0).then([](futura::Future<int> failed) {
        try {
            return failed.result();
        } catch (const std::domain_error&) {
            return -1;
        }
    });
    BOOST_TEST(recovered.result(should_happen) == -1);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(an_exception_the_continuation_throws_fails_the_result, Factory,
                              ExecutorFactories)
{
    const auto owner = Factory::make(2);
    StderrCapture stderr_output;
    auto result = owner->submit(square, 3).then([](int) -> int { throw std::out_of_range("x"); });
    BOOST_CHECK_THROW((void)result.result(should_happen), std::out_of_range);
    // Unlike add_done_callback, nothing is reported: the exception is the result.
    BOOST_TEST(stderr_output.text().find("threw") == std::string::npos);
    auto next = result.then([](int v) { return v; });
    BOOST_CHECK_THROW((void)next.result(should_happen), std::out_of_range);
}

BOOST_AUTO_TEST_CASE(void_futures_and_void_continuations)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    std::atomic<int> steps{0};
    auto done = pool.submit(do_nothing)
                    .then([&steps] { ++steps; })
                    .then([&steps](futura::Future<void> f) {
                        f.result();
                        ++steps;
                        return 5;
                    })
                    .then([&steps](int) { ++steps; });
    static_assert(std::is_same_v<decltype(done), futura::Future<void>>);
    done.result(should_happen);
    BOOST_TEST(steps == 3);
}

BOOST_AUTO_TEST_CASE(move_only_values_are_moved_along_a_chain)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    auto pointer = pool.submit([] { return std::make_unique<int>(20); })
                       .then([](std::unique_ptr<int> p) {
                           *p += 1;
                           return p;
                       })
                       .then([](std::unique_ptr<int> p) { return *p * 2; });
    BOOST_TEST(pointer.result(should_happen) == 42);
}

BOOST_AUTO_TEST_CASE(a_value_other_handles_hold_is_copied_not_moved)
{
    auto source = futura::make_ready_future(std::string(100, 'x'));
    auto length = source.then([](std::string s) { return s.size(); });
    BOOST_TEST(length.result(should_happen) == 100U);
    BOOST_TEST(source.result() == std::string(100, 'x'));
}

BOOST_AUTO_TEST_CASE(then_on_a_future_without_state_throws)
{
    const futura::Future<int> none;
    BOOST_CHECK_THROW((void)none.then([](int v) { return v; }), futura::InvalidStateError);
}

// ---------------------------------------------------------------------------------------------
// Flattening, unwrap, ready and failed futures

BOOST_AUTO_TEST_CASE(a_continuation_returning_a_future_is_flattened)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    auto flat = pool.submit(square, 3).then([&pool](int v) { return pool.submit(add, v, 1); });
    static_assert(std::is_same_v<decltype(flat), futura::Future<int>>);
    BOOST_TEST(flat.result(should_happen) == 10);
    auto failed = pool.submit(square, 3).then(
        [](int) { return futura::make_exceptional_future<int>(std::runtime_error("inner")); });
    BOOST_CHECK_THROW((void)failed.result(should_happen), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(unwrap_flattens_a_future_of_a_future)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    futura::Promise<futura::Future<int>> outer;
    auto flat = futura::unwrap(outer.get_future());
    static_assert(std::is_same_v<decltype(flat), futura::Future<int>>);
    futura::Promise<int> inner;
    outer.set_result(inner.get_future());
    BOOST_TEST(!flat.done());
    inner.set_result(7);
    BOOST_TEST(flat.result(should_happen) == 7);
    // Continuations of the result go where the inner future's would: here, the pool.
    auto from_pool = futura::unwrap(futura::make_ready_future(pool.submit(square, 2)));
    BOOST_TEST(is_pool_worker(
        from_pool.then([](int) { return this_thread_name(); }).result(should_happen)));

    futura::Promise<futura::Future<int>> cancelled_outer;
    auto cancelled = futura::unwrap(cancelled_outer.get_future());
    BOOST_TEST(cancelled.cancel());
    BOOST_TEST(cancelled_outer.get_future().cancelled());
}

BOOST_AUTO_TEST_CASE(a_recursion_of_futures_returning_futures_does_not_overflow)
{
    // An asynchronous loop: each step returns the future of the rest (folly's and Seastar's
    // classic). Completing the innermost finishes every enclosing one, through the trampoline.
    futura::InlineExecutor inline_executor;
    futura::Promise<int> last;
    struct Loop
    {
        futura::Executor* executor;
        futura::Future<int> end;
        futura::Future<int> operator()(int n) const
        {
            if (n == 0) {
                return end;
            }
            return futura::make_ready_future(n - 1).then(*this, {.executor = executor});
        }
    };
    auto whole = Loop{&inline_executor, last.get_future()}(200'000);
    BOOST_TEST(!whole.done());
    last.set_result(1);
    BOOST_TEST(whole.result(should_happen) == 1);
}

BOOST_AUTO_TEST_CASE(ready_and_exceptional_futures)
{
    auto ready = futura::make_ready_future(std::string("ok"));
    static_assert(std::is_same_v<decltype(ready), futura::Future<std::string>>);
    BOOST_TEST(ready.done());
    BOOST_TEST(ready.result() == "ok");
    BOOST_TEST(futura::make_ready_future().done());
    auto failed = futura::make_exceptional_future<int>(std::logic_error("no"));
    BOOST_CHECK_THROW((void)failed.result(), std::logic_error);
    auto from_pointer =
        futura::make_exceptional_future<void>(std::make_exception_ptr(std::runtime_error("no")));
    BOOST_CHECK_THROW(from_pointer.result(), std::runtime_error);
    BOOST_CHECK_THROW((void)futura::make_exceptional_future<int>(std::exception_ptr{}),
                      std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// Cancellation, both ways

BOOST_AUTO_TEST_CASE_TEMPLATE(cancelling_the_result_cancels_a_pending_antecedent, Factory,
                              ExecutorFactories)
{
    if constexpr (Factory::concurrent) {
        const auto owner = Factory::make(1);
        FileGate gate;
        const FileGate::Opener opener(gate);
        auto blocker = owner->submit(wait_at_gate_then_return_one, gate.path());
        BOOST_TEST(gate.wait_for_waiters(1));
        auto queued = owner->submit(square, 4); // waits behind the blocker
        std::atomic<bool> ran{false};
        auto result = queued.then([&ran](int v) {
            ran = true;
            return v;
        });
        BOOST_TEST(result.cancel());
        BOOST_TEST(result.cancelled());
        BOOST_TEST(queued.cancelled());
        gate.open();
        BOOST_TEST(blocker.result(should_happen) == 1);
        BOOST_TEST(!ran);
    }
}

BOOST_AUTO_TEST_CASE(cancel_antecedent_false_leaves_the_antecedent_alone)
{
    futura::Promise<int> promise;
    auto antecedent = promise.get_future();
    std::atomic<bool> ran{false};
    auto result = antecedent.then(
        [&ran](int v) {
            ran = true;
            return v;
        },
        {.cancel_antecedent = false});
    BOOST_TEST(result.cancel());
    BOOST_TEST(!antecedent.done());
    promise.set_result(3);
    BOOST_TEST(antecedent.result() == 3);
    BOOST_TEST(!ran);
}

BOOST_AUTO_TEST_CASE(a_started_continuation_is_not_cancelled)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    Gate gate;
    const Gate::Opener opener(gate);
    auto result = futura::make_ready_future(1).then(
        [&gate](int v) {
            (void)gate.wait();
            return v;
        },
        {.executor = &pool});
    BOOST_TEST(eventually([&] { return result.running(); }));
    BOOST_TEST(!result.cancel());
    gate.open();
    BOOST_TEST(result.result(should_happen) == 1);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_cancelled_antecedent_cancels_value_continuations, Factory,
                              ExecutorFactories)
{
    futura::Promise<int> promise;
    auto antecedent = promise.get_future();
    auto value = antecedent.then([](int v) { return v; });
    auto whole = antecedent.then([](futura::Future<int> f) { return f.cancelled(); });
    BOOST_TEST(antecedent.cancel());
    BOOST_TEST(value.cancelled());
    BOOST_CHECK_THROW((void)value.result(should_happen), futura::CancelledError);
    BOOST_TEST(whole.result(should_happen)); // a future continuation runs and sees it
    // The executor's own futures, cancelled at shutdown, do the same.
    if constexpr (Factory::concurrent) {
        const auto owner = Factory::make(1);
        FileGate gate;
        const FileGate::Opener opener(gate);
        auto blocker = owner->submit(wait_at_gate_then_return_one, gate.path());
        BOOST_TEST(gate.wait_for_waiters(1));
        auto queued = owner->submit(square, 2).then([](int v) { return v; });
        owner->shutdown({.wait = false, .cancel_futures = true});
        BOOST_TEST(eventually([&] { return queued.cancelled(); }));
    }
}

// ---------------------------------------------------------------------------------------------
// Long chains: bounded stack, bounded memory

constexpr int million = 1'000'000;

BOOST_AUTO_TEST_CASE(a_million_inline_continuations_of_a_pending_future_run_in_bounded_stack)
{
    futura::InlineExecutor inline_executor;
    futura::Promise<int> promise;
    auto future = promise.get_future();
    for (int i = 0; i < million; ++i) {
        future = future.then([](int v) { return v + 1; }, {.executor = &inline_executor});
    }
    promise.set_result(0); // each link completes the next, inline: a recursion without the
                           // trampoline, a million deep
    BOOST_TEST(future.done());
    BOOST_TEST(future.result() == million);
}

BOOST_AUTO_TEST_CASE(a_failure_at_the_head_of_a_million_long_chain_reaches_its_end)
{
    futura::InlineExecutor inline_executor;
    futura::Promise<int> promise;
    auto future = promise.get_future();
    for (int i = 0; i < million; ++i) {
        future = future.then([](int v) { return v + 1; }, {.executor = &inline_executor});
    }
    promise.set_exception(std::make_exception_ptr(std::runtime_error("head")));
    BOOST_CHECK_THROW((void)future.result(should_happen), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(cancelling_the_end_of_a_million_long_chain_cancels_its_head)
{
    futura::Promise<int> promise;
    auto head = promise.get_future();
    auto future = head;
    for (int i = 0; i < million; ++i) {
        future = future.then([](int v) { return v + 1; });
    }
    BOOST_TEST(future.cancel());
    BOOST_TEST(head.cancelled());
}

BOOST_AUTO_TEST_CASE(a_million_long_chain_on_a_pool_keeps_only_its_unfinished_links)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    Tracked::reset();
    const int before = Tracked::live;
    auto future = pool.submit([] { return Tracked(0); });
    for (int i = 0; i < million; ++i) {
        future = future.then([](Tracked t) { return Tracked(t.value + 1); });
        if (i % 1024 == 0) {
            future.wait(); // let the pool keep up: then only done links could pile up
        }
    }
    BOOST_TEST(future.result(should_happen).value == million);
    // Each link's value dies once the next link has taken it: a chain that kept its
    // antecedents would hold a million values here.
    BOOST_TEST(Tracked::most - before < 5000);
}

BOOST_AUTO_TEST_CASE(a_million_thens_on_ready_futures_do_not_recurse)
{
    futura::InlineExecutor inline_executor;
    auto future = futura::make_ready_future(0);
    for (int i = 0; i < million; ++i) {
        future = future.then([](int v) { return v + 1; }, {.executor = &inline_executor});
    }
    BOOST_TEST(future.result() == million);
}

// ---------------------------------------------------------------------------------------------
// Concurrency: continuations added while futures complete

BOOST_AUTO_TEST_CASE(many_threads_add_continuations_while_futures_complete)
{
    constexpr int futures = 500;
    constexpr int adders = 3;
    constexpr int per_adder = 2000;
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    futura::InlineExecutor inline_executor;
    std::vector<futura::Promise<int>> promises(futures);
    std::vector<futura::Future<int>> inputs;
    for (auto& promise : promises) {
        inputs.push_back(promise.get_future());
    }
    std::atomic<long> sum{0};
    std::vector<std::vector<futura::Future<void>>> results(adders);
    std::latch start(adders + 1);
    std::vector<std::thread> threads;
    for (int a = 0; a < adders; ++a) {
        threads.emplace_back([&, a] {
            start.arrive_and_wait();
            for (int k = 0; k < per_adder; ++k) {
                const auto& input = inputs[static_cast<std::size_t>((k * 7 + a) % futures)];
                futura::ThenOptions options;
                futura::Executor* const executors[] = {&inline_executor, &pool, nullptr};
                options.executor = executors[k % 3];
                options.cancel_antecedent = false;
                results[static_cast<std::size_t>(a)].push_back(
                    input.then([&sum](int v) { sum += v; }, options));
            }
        });
    }
    start.arrive_and_wait();
    for (int i = 0; i < futures; ++i) {
        promises[static_cast<std::size_t>(i)].set_result(1);
    }
    for (auto& thread : threads) {
        thread.join();
    }
    for (auto& list : results) {
        for (auto& result : list) {
            result.result(should_happen);
        }
    }
    BOOST_TEST(sum == long{adders} * per_adder);
}

BOOST_AUTO_TEST_CASE(cancelling_while_the_antecedent_completes_runs_or_cancels_exactly_once)
{
    constexpr int rounds = 2000;
    std::atomic<int> ran{0};
    int cancelled = 0;
    for (int i = 0; i < rounds; ++i) {
        futura::Promise<int> promise;
        auto result = promise.get_future().then(
            [&ran](int v) {
                ++ran;
                return v;
            },
            {.cancel_antecedent = false});
        std::latch start(2);
        std::thread completer([&] {
            start.arrive_and_wait();
            promise.set_result(i);
        });
        start.arrive_and_wait();
        cancelled += result.cancel() ? 1 : 0;
        completer.join();
        if (!result.cancelled()) {
            BOOST_TEST(result.result(should_happen) == i);
        }
    }
    // The shared pool runs them: wait until every continuation that was not cancelled ran.
    BOOST_TEST(eventually([&] { return ran + cancelled == rounds; }));
}

// ---------------------------------------------------------------------------------------------
// when_all, when_all_done, when_any

BOOST_AUTO_TEST_CASE_TEMPLATE(when_all_of_mixed_executors_gives_a_tuple, Factory, ExecutorFactories)
{
    const auto owner = Factory::make(2);
    futura::ThreadPoolExecutor threads{{.max_workers = 1}};
    futura::Promise<std::string> promise;
    auto all = futura::when_all(owner->submit(square, 5), threads.submit(do_nothing),
                                promise.get_future());
    static_assert(std::is_same_v<decltype(all),
                                 futura::Future<std::tuple<int, std::monostate, std::string>>>);
    promise.set_result("five");
    const auto [n, nothing, text] = all.result(should_happen);
    BOOST_TEST(n == 25);
    BOOST_TEST(text == "five");
    (void)nothing;
}

BOOST_AUTO_TEST_CASE_TEMPLATE(when_all_of_a_range_keeps_input_order, Factory, ExecutorFactories)
{
    const auto owner = Factory::make(2);
    std::vector<futura::Future<int>> futures;
    for (int i = 0; i < 50; ++i) {
        futures.push_back(owner->submit(square, i));
    }
    auto all = futura::when_all(futures);
    const auto values = all.result(should_happen);
    BOOST_TEST(values.size() == 50U);
    for (int i = 0; i < 50; ++i) {
        BOOST_TEST(values[static_cast<std::size_t>(i)] == i * i);
    }
    BOOST_TEST(futura::when_all(std::vector<futura::Future<int>>{}).result().empty());
    futura::when_all({owner->submit(do_nothing), owner->submit(do_nothing)}).result(should_happen);
}

BOOST_AUTO_TEST_CASE(when_all_fails_with_the_first_exception_without_waiting)
{
    std::vector<futura::Promise<int>> promises(3);
    std::vector<futura::Future<int>> futures;
    for (auto& promise : promises) {
        futures.push_back(promise.get_future());
    }
    auto all = futura::when_all(futures);
    promises[1].set_exception(std::make_exception_ptr(std::out_of_range("second")));
    BOOST_CHECK_THROW((void)all.result(should_happen), std::out_of_range);
    BOOST_TEST(!futures[0].done()); // not cancelled: left running
    promises[2].set_exception(std::make_exception_ptr(std::domain_error("third")));
    promises[0].set_result(1);
    // The others' outcomes stay in their futures.
    BOOST_TEST(futures[0].result() == 1);
    BOOST_CHECK_THROW((void)futures[2].result(), std::domain_error);
}

BOOST_AUTO_TEST_CASE(a_cancelled_input_cancels_when_all_and_cancelling_it_cancels_inputs)
{
    futura::Promise<int> first;
    futura::Promise<int> second;
    auto all = futura::when_all({first.get_future(), second.get_future()});
    BOOST_TEST(first.get_future().cancel());
    BOOST_TEST(all.cancelled());
    BOOST_TEST(!second.get_future().done()); // an input's cancellation is not passed sideways

    futura::Promise<int> third;
    futura::Promise<int> fourth;
    auto both = futura::when_all(third.get_future(), fourth.get_future());
    BOOST_TEST(both.cancel());
    BOOST_TEST(third.get_future().cancelled());
    BOOST_TEST(fourth.get_future().cancelled());
}

BOOST_AUTO_TEST_CASE(when_all_moves_values_it_alone_holds)
{
    std::vector<futura::Future<std::unique_ptr<int>>> futures;
    for (int i = 0; i < 3; ++i) {
        futures.push_back(futura::make_ready_future(std::make_unique<int>(i)));
    }
    auto all = futura::when_all(std::move(futures));
    BOOST_TEST(*std::move(all).result()[2] == 2);
    // Copyable values are moved too once no other handle holds them.
    Tracked::reset();
    std::vector<futura::Future<Tracked>> tracked;
    tracked.push_back(futura::make_ready_future(Tracked(1)));
    const int copies = Tracked::copies;
    auto gathered = futura::when_all(std::move(tracked));
    BOOST_TEST(std::move(gathered).result().front().value == 1);
    BOOST_TEST(Tracked::copies == copies); // moved out of the input, and out of the result
    std::vector<futura::Future<std::unique_ptr<int>>> more;
    more.push_back(futura::make_ready_future(std::make_unique<int>(5)));
    auto last =
        futura::when_all(std::move(more)).then([](std::vector<std::unique_ptr<int>> values) {
            return *values.back();
        });
    BOOST_TEST(last.result(should_happen) == 5);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(when_all_done_never_fails, Factory, ExecutorFactories)
{
    const auto owner = Factory::make(2);
    futura::Promise<int> cancelled;
    auto done = futura::when_all_done(
        {owner->submit(divide, 4, 2), owner->submit(divide, 1, 0), cancelled.get_future()});
    cancelled.get_future().cancel();
    auto futures = done.result(should_happen);
    BOOST_TEST(futures.size() == 3U);
    BOOST_TEST(futures[0].result() == 2);
    BOOST_CHECK_THROW((void)futures[1].result(), std::domain_error);
    BOOST_TEST(futures[2].cancelled());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(when_any_gives_the_first_done_and_its_index, Factory,
                              ExecutorFactories)
{
    const auto owner = Factory::make(2);
    futura::Promise<int> never;
    auto any = futura::when_any({never.get_future(), owner->submit(square, 6)});
    const auto first = any.result(should_happen);
    BOOST_TEST(first.index == 1U);
    BOOST_TEST(first.future.result() == 36);
    // Done already: the first in input order.
    auto ready = futura::when_any(
        {never.get_future(), futura::make_ready_future(1), futura::make_ready_future(2)});
    BOOST_TEST(ready.result().index == 1U);
    // A failure wins too; the result does not fail for it.
    auto failed = futura::when_any({never.get_future(), owner->submit(divide, 1, 0)});
    BOOST_CHECK_THROW((void)failed.result(should_happen).future.result(), std::domain_error);
    never.set_result(0);
}

BOOST_AUTO_TEST_CASE(when_any_of_nothing_throws_and_cancelling_it_cancels_inputs)
{
    BOOST_CHECK_THROW((void)futura::when_any(std::vector<futura::Future<int>>{}),
                      std::invalid_argument);
    futura::Promise<int> a;
    futura::Promise<int> b;
    auto any = futura::when_any({a.get_future(), b.get_future()});
    BOOST_TEST(any.cancel());
    BOOST_TEST(a.get_future().cancelled());
    BOOST_TEST(b.get_future().cancelled());
}

BOOST_AUTO_TEST_CASE(composed_futures_reject_futures_without_state)
{
    std::vector<futura::Future<int>> futures(1);
    BOOST_CHECK_THROW((void)futura::when_all(futures), futura::InvalidStateError);
    BOOST_CHECK_THROW((void)futura::when_any(futures), futura::InvalidStateError);
    BOOST_CHECK_THROW((void)futura::when_all_done(futures), futura::InvalidStateError);
}

BOOST_AUTO_TEST_CASE(when_all_of_many_futures_completing_concurrently)
{
    constexpr int inputs = 20'000;
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    for (int round = 0; round < 3; ++round) {
        std::vector<futura::Future<int>> futures;
        futures.reserve(inputs);
        for (int i = 0; i < inputs; ++i) {
            futures.push_back(pool.submit(add, i, round));
        }
        auto all = futura::when_all(futures);
        auto any = futura::when_any(futures);
        const auto values = all.result(should_happen);
        long sum = 0;
        for (int v : values) {
            sum += v;
        }
        BOOST_TEST(sum == long{inputs} * (inputs - 1) / 2 + long{inputs} * round);
        BOOST_TEST(any.result(should_happen).future.done());
    }
}

BOOST_AUTO_TEST_CASE(when_all_continuations_run_where_the_last_input_ran)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1, .thread_name_prefix = "gather"}};
    auto all = futura::when_all({pool.submit(square, 1), pool.submit(square, 2)});
    BOOST_TEST(all.then([](const std::vector<int>&) { return this_thread_name(); })
                   .result(should_happen)
                   .starts_with("gather_"));
}

// ---------------------------------------------------------------------------------------------
// co_await in a coroutine of our own

Coroutine<std::string> await_on_pool(futura::Executor& pool)
{
    const int value = co_await pool.submit(square, 4);
    co_return std::to_string(value) + " " + this_thread_name();
}

BOOST_AUTO_TEST_CASE(co_await_yields_the_value_and_resumes_on_the_completing_pool)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1, .thread_name_prefix = "await"}};
    const auto text = await_on_pool(pool).future.result(should_happen);
    BOOST_TEST(text.starts_with("16 await_"), text);
}

Coroutine<int> await_failure(futura::Future<int> failing)
{
    try {
        co_return co_await failing;
    } catch (const std::domain_error&) {
        co_return -1;
    }
}

BOOST_AUTO_TEST_CASE(co_await_throws_the_exception)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    BOOST_TEST(await_failure(pool.submit(divide, 1, 0)).future.result(should_happen) == -1);
    futura::Promise<int> promise;
    auto cancelled = await_failure(promise.get_future());
    promise.get_future().cancel();
    BOOST_CHECK_THROW((void)cancelled.future.result(should_happen), futura::CancelledError);
}

Coroutine<bool> await_ready_one(std::thread::id caller)
{
    (void)co_await futura::make_ready_future(1);
    co_return std::this_thread::get_id() == caller;
}

Coroutine<std::string> resume_there(futura::Future<int> future, futura::Executor& executor)
{
    (void)co_await futura::resume_on(std::move(future), executor);
    co_return this_thread_name();
}

BOOST_AUTO_TEST_CASE(co_await_a_done_future_does_not_suspend_and_resume_on_picks_the_thread)
{
    BOOST_TEST(await_ready_one(std::this_thread::get_id()).future.result());
    futura::ThreadPoolExecutor pool{{.max_workers = 1, .thread_name_prefix = "there"}};
    BOOST_TEST(resume_there(futura::make_ready_future(1), pool).future.result(should_happen) ==
               "there_0");
    futura::ProcessPoolExecutor processes{{.max_workers = 1}};
    // From a process pool's answer back to a thread pool (never its I/O thread).
    BOOST_TEST(resume_there(processes.submit(square, 2), pool).future.result(should_happen) ==
               "there_0");
}

Coroutine<int> await_many(int n, futura::Executor& executor)
{
    int sum = 0;
    for (int i = 0; i < n; ++i) {
        futura::Promise<int> promise;
        auto future = promise.get_future();
        std::thread([p = std::move(promise)]() mutable { p.set_result(1); }).detach();
        sum += co_await futura::resume_on(std::move(future), executor);
    }
    co_return sum;
}

Coroutine<int> await_ready_many(int n, futura::Executor& executor)
{
    int sum = 0;
    for (int i = 0; i < n; ++i) {
        sum += co_await futura::resume_on(futura::make_ready_future(1), executor);
    }
    co_return sum;
}

BOOST_AUTO_TEST_CASE(a_hundred_thousand_inline_resumptions_do_not_overflow)
{
    futura::InlineExecutor inline_executor;
    BOOST_TEST(await_ready_many(100'000, inline_executor).future.result(should_happen) == 100'000);
    BOOST_TEST(await_many(200, inline_executor).future.result(should_happen) == 200);
}

BOOST_AUTO_TEST_SUITE_END()
