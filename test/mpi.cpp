// Tests of futura::MpiPoolExecutor and futura::MpiCommExecutor. CTest runs this program several
// times, each under the launch its suite needs (see test/CMakeLists.txt):
//   mpiexec -n 3 test_mpi --run_test=pre_started     ranks 1 and 2 serve, rank 0 tests
//   test_mpi --run_test=spawned                      started alone: workers are spawned
//   FUTURA_MPI_SPMD=1 mpiexec -n 3 test_mpi --run_test=collective
//   FUTURA_MPI_PRETEND_BUILD_ID=other mpiexec -n 2 test_mpi --run_test=build_identity
//   mpiexec -n 2 (btl self,tcp on lo) test_mpi --run_test=pre_started/basics
#include <futura/detail/mpi_message.hpp>
#include <futura/detail/mpi_runtime.hpp>
#include <futura/futura.hpp>
#include <futura/mpi.hpp>

#include <boost/mp11/list.hpp>
#include <boost/mpi/exception.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

int square(int x) { return x * x; }

int add(int a, int b) { return a + b; }

int fails_with_domain_error(int) { throw std::domain_error("negative input"); }

struct Unregistered : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

int fails_unregistered(int) { throw Unregistered("custom failure"); }

int rank_of_worker()
{
    return std::atoi(std::getenv("OMPI_COMM_WORLD_RANK") != nullptr
                         ? std::getenv("OMPI_COMM_WORLD_RANK")
                         : "-1");
}

int sleep_ms(int ms)
{
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
}

int sleep_us(int us)
{
    std::this_thread::sleep_for(std::chrono::microseconds(us));
    return us;
}

/// Sleeps, then says where it ran.
int rank_after_sleep(int ms)
{
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return rank_of_worker();
}

std::vector<double> scale(std::vector<double> v, double by)
{
    for (auto& x : v) {
        x *= by;
    }
    return v;
}

int initialized_value = 0;
void initialize_worker() { initialized_value = 42; }
int read_initialized() { return initialized_value; }
void initializer_fails() { throw std::runtime_error("initializer refuses"); }

std::string initialized_text;
void initialize_with(int value, std::string text)
{
    initialized_value = value;
    initialized_text = std::move(text);
}
std::string read_initialized_text()
{
    return initialized_text + ":" + std::to_string(initialized_value);
}
void initialize_with_array(futura::SharedArray<int>) {}

long sum_array(futura::SharedArray<int> a) { return std::accumulate(a.begin(), a.end(), 0L); }

/// The body shared by both executors: what proves that switching one line keeps the results.
template <class Pool>
void run_typed_suite(Pool& pool)
{
    futura::Executor& executor = pool;
    BOOST_TEST(pool.submit(square, 7).result() == 49);
    BOOST_TEST(pool.submit([](int a, int b) { return a * b; }, 6, 7).result() == 42);
    BOOST_TEST(pool.submit(scale, std::vector<double>{1, 2, 3}, 2.0).result() ==
                   (std::vector<double>{2, 4, 6}),
               boost::test_tools::per_element());

    std::vector<int> inputs(1000);
    std::iota(inputs.begin(), inputs.end(), 0);
    long total = 0;
    for (int r : pool.map(square, inputs)) {
        total += r;
    }
    long expected = 0;
    for (int i : inputs) {
        expected += static_cast<long>(i) * i;
    }
    BOOST_TEST(total == expected);

    std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
    std::vector<int> sums;
    for (int r : executor.starmap(add, pairs)) {
        sums.push_back(r);
    }
    BOOST_TEST(sums == (std::vector<int>{3, 7, 11}), boost::test_tools::per_element());

    std::vector<futura::Future<int>> futures;
    for (int i = 0; i < 20; ++i) {
        futures.push_back(pool.submit(square, i));
    }
    int seen = 0;
    for (auto& f : futura::as_completed(futures)) {
        (void)f.result();
        ++seen;
    }
    BOOST_TEST(seen == 20);
    auto done = futura::wait(futures);
    BOOST_TEST(done.not_done.empty());

    auto typed = pool.submit(fails_with_domain_error, 1);
    BOOST_CHECK_THROW(typed.result(), std::domain_error);
    auto remote = pool.submit(fails_unregistered, 1);
    BOOST_CHECK_THROW(remote.result(), futura::RemoteError);

    const auto stats = pool.stats();
    BOOST_TEST(stats.submitted >= 30U);
    BOOST_TEST(stats.failed >= 2U);
}

std::string remote_error_text(futura::Executor& executor)
{
    try {
        executor.submit(fails_unregistered, 1).result();
    } catch (const futura::RemoteError& e) {
        return e.what();
    }
    return {};
}

} // namespace

// ----- pre-started workers: mpiexec -n 3 ------------------------------------------------------

BOOST_AUTO_TEST_SUITE(pre_started)

BOOST_AUTO_TEST_CASE(basics)
{
    futura::MpiPoolExecutor pool;
    BOOST_TEST(pool.pre_started());
    BOOST_TEST(pool.stats().submitted == 0U);
    int world = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    BOOST_TEST(pool.max_workers() == static_cast<std::size_t>(world - 1));
    BOOST_TEST(pool.submit(square, 9).result() == 81);
    // The work is done on the other ranks, never here.
    std::vector<int> ranks;
    for (int i = 0; i < 8; ++i) {
        ranks.push_back(pool.submit(rank_of_worker).result());
    }
    for (int r : ranks) {
        BOOST_TEST((r == 1 || r == 2));
    }
}

using Executors = boost::mp11::mp_list<futura::ProcessPoolExecutor, futura::MpiPoolExecutor>;

BOOST_AUTO_TEST_CASE_TEMPLATE(one_line_switch, Pool, Executors)
{
    Pool pool{{.max_workers = 2}};
    run_typed_suite(pool);
}

BOOST_AUTO_TEST_CASE(remote_error_names_host_and_rank)
{
    futura::MpiPoolExecutor pool;
    const std::string text = remote_error_text(pool);
    BOOST_TEST(text.find("custom failure") != std::string::npos);
    BOOST_TEST(text.find("on host") != std::string::npos);
    BOOST_TEST(
        (text.find("rank 1") != std::string::npos || text.find("rank 2") != std::string::npos));
}

BOOST_AUTO_TEST_CASE(remote_error_carries_the_stack_of_the_throw)
{
    futura::MpiPoolExecutor pool;
    try {
        pool.submit(fails_unregistered, 1).result();
        BOOST_FAIL("no exception");
    } catch (const futura::RemoteError& e) {
        // Where it was thrown (this file's fails_unregistered), not where the worker caught it.
        BOOST_TEST(e.stack_trace().find("mpi.cpp") != std::string::npos, e.stack_trace());
        BOOST_TEST(e.stack_trace().find("fails_unregistered") != std::string::npos,
                   e.stack_trace());
    }
}

BOOST_AUTO_TEST_CASE(shutdown_cancels_futures)
{
    futura::MpiPoolExecutor pool;
    std::vector<futura::Future<int>> futures;
    for (int i = 0; i < 20; ++i) {
        futures.push_back(pool.submit(sleep_ms, 50));
    }
    (void)futures.front().result(); // the workers are up and busy
    pool.shutdown({.wait = true, .cancel_futures = true});
    std::size_t cancelled = 0;
    std::size_t ran = 0;
    for (auto& f : futures) {
        if (f.cancelled()) {
            ++cancelled;
        } else {
            BOOST_TEST(f.result() == 50);
            ++ran;
        }
    }
    BOOST_TEST(cancelled > 0U);
    BOOST_TEST(ran > 0U);
    BOOST_CHECK_THROW((void)pool.submit(square, 1), futura::ShutdownError);
    const auto stats = pool.stats();
    BOOST_TEST(stats.submitted == stats.completed + stats.failed + stats.cancelled);
    BOOST_TEST(stats.cancelled == cancelled);
    BOOST_TEST(stats.queued == 0U);
    BOOST_TEST(stats.running == 0U);
    BOOST_TEST(stats.workers_alive == 0U);
}

BOOST_AUTO_TEST_CASE(raii_waits_for_work)
{
    futura::Future<int> f;
    {
        futura::MpiPoolExecutor pool;
        f = pool.submit(sleep_ms, 30);
    }
    BOOST_TEST(f.done());
    BOOST_TEST(f.result() == 30);
}

BOOST_AUTO_TEST_CASE(initializer_runs_on_every_worker)
{
    futura::MpiPoolExecutor pool{{.initializer = initialize_worker}};
    for (int i = 0; i < 6; ++i) {
        BOOST_TEST(pool.submit(read_initialized).result() == 42);
    }
}

BOOST_AUTO_TEST_CASE(initargs_reach_every_worker)
{
    futura::MpiPoolExecutor pool{
        {.initializer = initialize_with, .initargs = std::tuple{7, "seven"}}};
    for (int i = 0; i < 6; ++i) {
        BOOST_TEST(pool.submit(read_initialized_text).result() == "seven:7");
    }
}

BOOST_AUTO_TEST_CASE(bad_initargs_are_invalid_argument)
{
    const auto message_of = [](futura::MpiPoolOptions options) -> std::string {
        try {
            futura::MpiPoolExecutor pool(std::move(options));
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "no exception";
    };
    // Arguments that do not fit the parameters.
    const auto wrong = message_of({.initializer = initialize_with, .initargs = std::tuple{7}});
    BOOST_TEST(wrong.find("futura::MpiPoolExecutor: the initializer takes") != std::string::npos,
               wrong);
    // Arguments without an initializer.
    const auto alone = message_of({.initargs = std::tuple{7}});
    BOOST_TEST(alone.find("given without an initializer") != std::string::npos, alone);
    // A node-local handle cannot reach another host.
    futura::SharedArray<int> array(4);
    const auto local =
        message_of({.initializer = initialize_with_array, .initargs = std::tuple{array}});
    BOOST_TEST(local.find("memory or files of this node") != std::string::npos, local);
    // None of them took the pre-started ranks.
    futura::MpiPoolExecutor pool;
    BOOST_TEST(pool.submit(square, 6).result() == 36);
}

BOOST_AUTO_TEST_CASE(initializer_that_throws_breaks_the_pool)
{
    futura::MpiPoolExecutor pool{{.initializer = initializer_fails}};
    auto f = pool.submit(square, 3);
    BOOST_CHECK_THROW(f.result(), futura::BrokenMpiPool);
    // The pre-started ranks serve the next pool as usual.
}

BOOST_AUTO_TEST_CASE(after_a_broken_pool_the_next_one_works)
{
    futura::MpiPoolExecutor pool;
    BOOST_TEST(pool.submit(square, 5).result() == 25);
}

BOOST_AUTO_TEST_CASE(bad_max_workers_is_invalid_argument)
{
    BOOST_CHECK_THROW(futura::MpiPoolExecutor({.max_workers = 0}), std::invalid_argument);
    BOOST_CHECK_THROW(futura::MpiPoolExecutor({.max_workers = -3}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(one_pool_at_a_time_on_pre_started_ranks)
{
    futura::MpiPoolExecutor pool;
    BOOST_CHECK_THROW(futura::MpiPoolExecutor{}, futura::InvalidStateError);
}

BOOST_AUTO_TEST_CASE(node_local_handle_through_executor_is_refused)
{
    futura::MpiPoolExecutor pool;
    futura::Executor& executor = pool;
    futura::SharedArray<int> array(10);
    std::fill(array.begin(), array.end(), 1);
    auto f = executor.submit(sum_array, array);
    try {
        (void)f.result();
        BOOST_FAIL("a SharedArray went to another rank");
    } catch (const std::invalid_argument& e) {
        BOOST_TEST(std::string(e.what()).find("memory or files of this node") != std::string::npos);
    }
    BOOST_TEST(pool.submit(square, 4).result() == 16); // the pool is fine
}

BOOST_AUTO_TEST_CASE(a_call_sent_ahead_is_given_back_to_an_idle_worker)
{
    futura::MpiPoolExecutor pool;
    BOOST_TEST_REQUIRE(pool.max_workers() == 2U);
    // Known to be short, the call is sent ahead to a busy worker, behind the long one (the
    // first worker, the first with room).
    for (int i = 0; i < 8; ++i) {
        (void)pool.submit(rank_after_sleep, 1).result();
    }
    auto long_call = pool.submit(rank_after_sleep, 1500);
    auto medium = pool.submit(rank_after_sleep, 50);
    auto queued = pool.submit(rank_after_sleep, 1);
    // Once the other worker is idle, the root asks for it back and sends it there, instead of
    // leaving it behind the long call.
    const int ran_on = queued.result();
    BOOST_TEST(ran_on == medium.result());
    BOOST_TEST(ran_on != long_call.result());
    pool.shutdown();
    const auto stats = pool.stats();
    BOOST_TEST(stats.submitted == stats.completed);
    BOOST_TEST(stats.queued == 0U);
    BOOST_TEST(stats.running == 0U);
}

BOOST_AUTO_TEST_CASE(three_calls_go_ahead_to_each_busy_worker_and_come_back_to_an_idle_one)
{
    futura::MpiPoolExecutor pool;
    BOOST_TEST_REQUIRE(pool.max_workers() == 2U);
    // Known to take 20 ms, far over the budget for calls sent ahead (1 ms of estimated work).
    for (int i = 0; i < 4; ++i) {
        (void)pool.submit(rank_after_sleep, 20).result();
    }
    auto first_long = pool.submit(rank_after_sleep, 1500);
    auto second_long = pool.submit(rank_after_sleep, 1500);
    std::vector<futura::Future<int>> queued;
    for (int i = 0; i < 6; ++i) {
        queued.push_back(pool.submit(rank_after_sleep, 20));
    }
    // The root does not keep them: three wait on each worker behind its long call, so that a
    // root slow to see an answer (on a busy machine) leaves no worker without a call.
    const auto give_up = std::chrono::steady_clock::now() + 30s;
    while (pool.stats().queued != 0 && !first_long.done() &&
           std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(1ms);
    }
    const auto stats = pool.stats();
    BOOST_TEST(stats.queued == 0U);
    BOOST_TEST(stats.running == 8U);
    const int long_rank = first_long.result();
    BOOST_TEST(second_long.result() != long_rank);
    for (auto& f : queued) {
        BOOST_TEST((f.result() == 1 || f.result() == 2));
    }
}

BOOST_AUTO_TEST_CASE(a_worker_runs_calls_in_the_order_sent_when_they_come_in_bursts)
{
    // Calls that end as the worker's watcher looks for messages beside them (half a millisecond
    // in), sent in bursts to workers that ran out: the watcher and the worker's loop both
    // receive then, and a worker that queued two calls in the wrong order would answer a later
    // call first, which breaks the pool (BrokenMpiPool: "answered a task it was not running").
    futura::MpiPoolExecutor pool;
    // Many short calls at once, as the submit benchmark sends them (where it broke the pool).
    for (int round = 0; round < 20; ++round) {
        std::vector<futura::Future<int>> futures;
        for (int i = 0; i < 5000; ++i) {
            futures.push_back(pool.submit(square, i % 100));
        }
        for (auto& f : futures) {
            BOOST_TEST_REQUIRE(f.result() >= 0);
        }
    }
    for (int wave = 0; wave < 150; ++wave) {
        std::vector<futura::Future<int>> burst;
        for (int i = 0; i < 8; ++i) {
            burst.push_back(pool.submit(sleep_us, 450 + 25 * (i % 4)));
        }
        for (auto& f : burst) {
            BOOST_TEST_REQUIRE(f.result() >= 450);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_waiting_thread_receives_its_answer_while_the_progress_thread_is_held)
{
    futura::MpiPoolExecutor pool;
    // A done callback holds the progress thread (callbacks of answers it receives run there)
    // until the end of the test.
    const auto main_thread = std::this_thread::get_id();
    std::atomic<bool> held{false};
    std::atomic<bool> release{false};
    auto first = pool.submit(sleep_ms, 100);
    first.add_done_callback([&] {
        if (std::this_thread::get_id() == main_thread) {
            return; // done before the callback was added (a very slow test machine)
        }
        held = true;
        held.notify_all();
        release.wait(false);
    });
    held.wait(false);
    // Only this thread can now pick up the answer, during the spin windows of its waits.
    auto second = pool.submit(square, 12);
    const auto give_up = std::chrono::steady_clock::now() + 30s;
    while (!second.wait_for(10ms) && std::chrono::steady_clock::now() < give_up) {
    }
    const bool answered = second.done();
    release = true;
    release.notify_all();
    BOOST_TEST_REQUIRE(answered);
    BOOST_TEST(second.result() == 144);
    BOOST_TEST(first.result() == 100);
}

BOOST_AUTO_TEST_CASE(large_arguments_and_results)
{
    futura::MpiPoolExecutor pool;
    std::vector<double> big(3'000'000, 1.5); // 24 MB each way
    const auto back = pool.submit(scale, big, 2.0).result();
    BOOST_TEST(back.size() == big.size());
    BOOST_TEST(back.front() == 3.0);
    BOOST_TEST(back.back() == 3.0);
}

BOOST_AUTO_TEST_SUITE_END()

// ----- message pieces: any launch ---------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(pieces)

BOOST_AUTO_TEST_CASE(split_at_the_limit)
{
    namespace m = futura::detail::mpi;
    using Parts = std::vector<std::pair<std::size_t, std::size_t>>;
    BOOST_TEST((m::pieces(0, 8) == Parts{{0, 0}}));
    BOOST_TEST((m::pieces(8, 8) == Parts{{0, 8}}));
    BOOST_TEST((m::pieces(17, 8) == Parts{{0, 8}, {8, 8}, {16, 1}}));
    // MPI counts are int: a 5 GiB message goes in pieces of at most INT_MAX bytes.
    const auto huge = m::pieces(std::size_t{5} << 30, std::size_t{1} << 40);
    BOOST_TEST(huge.size() == 3U);
    for (const auto& [offset, size] : huge) {
        BOOST_TEST(size <= static_cast<std::size_t>(INT_MAX));
    }
}

BOOST_AUTO_TEST_CASE(pieces_reassemble_over_mpi)
{
    namespace m = futura::detail::mpi;
    m::ensure_initialized();
    const std::lock_guard guard(m::lock());
    auto message = m::begin_message();
    for (int i = 0; i < 100; ++i) {
        message.push_back(static_cast<char>(i));
    }
    m::seal(message);
    const auto copy = message;
    auto out = m::send(MPI_COMM_SELF, 0, m::Tag::call, std::move(message), 9);
    BOOST_TEST(out.requests.size() == (108U + 8U) / 9U);
    std::optional<m::Incoming> in;
    while (!in) {
        in = m::try_receive(MPI_COMM_SELF, MPI_ANY_SOURCE, 9);
    }
    while (!m::sent(out)) {
    }
    BOOST_TEST(in->bytes == copy, boost::test_tools::per_element());
    BOOST_TEST(static_cast<int>(in->tag) == static_cast<int>(m::Tag::call));
}

BOOST_AUTO_TEST_SUITE_END()

// ----- spawned workers: started alone ----------------------------------------------------------

BOOST_AUTO_TEST_SUITE(spawned)

BOOST_AUTO_TEST_CASE(spawned_pool_runs_the_typed_suite)
{
    futura::MpiPoolExecutor pool{{.max_workers = 2}};
    BOOST_TEST(!pool.pre_started());
    BOOST_TEST(pool.max_workers() == 2U);
    run_typed_suite(pool);
    const std::string text = remote_error_text(pool);
    BOOST_TEST(text.find("on host") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(spawned_pool_cancels_and_initializes)
{
    futura::MpiPoolExecutor pool{{.max_workers = 1, .initializer = initialize_worker}};
    BOOST_TEST(pool.submit(read_initialized).result() == 42);
    std::vector<futura::Future<int>> futures;
    for (int i = 0; i < 10; ++i) {
        futures.push_back(pool.submit(sleep_ms, 20));
    }
    pool.shutdown({.wait = true, .cancel_futures = true});
    std::size_t cancelled = 0;
    for (auto& f : futures) {
        cancelled += f.cancelled() ? 1U : 0U;
    }
    BOOST_TEST(cancelled > 0U);
}

BOOST_AUTO_TEST_SUITE_END()

// ----- MpiCommExecutor: FUTURA_MPI_SPMD=1 mpiexec -n 3 -----------------------------------------

BOOST_AUTO_TEST_SUITE(collective)

BOOST_AUTO_TEST_CASE(root_submits_others_serve)
{
    int world_rank = 0;
    {
        futura::MpiCommExecutor executor(MPI_COMM_WORLD, 0);
        MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
        BOOST_TEST(executor.is_root() == (world_rank == 0));
        if (executor.is_root()) {
            BOOST_TEST(executor.max_workers() == 2U);
            run_typed_suite(executor);
            std::vector<int> ranks;
            for (int i = 0; i < 6; ++i) {
                ranks.push_back(executor.submit(rank_of_worker).result());
            }
            for (int r : ranks) {
                BOOST_TEST((r == 1 || r == 2));
            }
        } else {
            BOOST_CHECK_THROW((void)executor.submit(square, 1), futura::ShutdownError);
        }
    }
    // Every rank goes on with the program afterwards: a second executor, rooted elsewhere.
    futura::MpiCommExecutor again(MPI_COMM_WORLD, 2);
    if (again.is_root()) {
        BOOST_TEST(again.submit(square, 12).result() == 144);
    }
}

BOOST_AUTO_TEST_CASE(bad_root_is_invalid_argument)
{
    BOOST_CHECK_THROW(futura::MpiCommExecutor(MPI_COMM_WORLD, 99), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()

// ----- a worker of another build: FUTURA_MPI_PRETEND_BUILD_ID=other mpiexec -n 2 ---------------

BOOST_AUTO_TEST_SUITE(build_identity)

BOOST_AUTO_TEST_CASE(mismatch_breaks_the_pool_naming_host_and_rank)
{
    BOOST_TEST_REQUIRE(std::getenv(futura::detail::mpi::pretend_build_variable) != nullptr);
    futura::MpiPoolExecutor pool;
    auto f = pool.submit(square, 3);
    try {
        (void)f.result();
        BOOST_FAIL("a worker of another build ran a call");
    } catch (const futura::BrokenMpiPool& e) {
        const std::string text = e.what();
        BOOST_TEST(text.find("rank 1 on host") != std::string::npos);
        BOOST_TEST(text.find("another build") != std::string::npos);
    }
    BOOST_CHECK_THROW((void)pool.submit(square, 1), futura::BrokenMpiPool);
}

BOOST_AUTO_TEST_SUITE_END()
