// A tour of futura: Python's concurrent.futures in C++20, one short section per feature.
//
// Run it with `scripts/demo`. It is also a test: it exits with a non-zero status if anything
// it shows did not work as described. The documentation quotes the code between the
// `// [tour-...]` and `// [tour-...-end]` markers.
#include <futura/futura.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <latch>
#include <ranges>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

int failures = 0;

/// The tour checks what it shows: a broken promise is reported and fails the run.
void check(bool ok, const std::string& what)
{
    if (!ok) {
        std::cerr << "tour: FAILED: " << what << '\n';
        ++failures;
    }
}

void section(const std::string& title) { std::cout << "\n== " << title << " ==\n"; }

int square(int x) { return x * x; }

/// A call that takes a little while, as real work does.
int slow_square(int x)
{
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + x % 20));
    return x * x;
}

/// A call that brings its whole process down, as a bug in native code can.
int crash_the_process(int /*x*/) { std::abort(); }

/// Runs in a worker process, on a slice of an array in shared memory: the caller sees the writes.
void double_in_place(futura::SharedArray<double> part)
{
    for (double& x : part) {
        x *= 2;
    }
}

// Every section takes a `futura::Executor&`: the same code works with any executor.

void submit_and_result(futura::Executor& pool)
{
    section("submit a call, get a future, read its result");
    // [tour-submit]
    futura::Future<int> f = pool.submit(square, 7);    // runs on a worker thread
    std::cout << "square(7) = " << f.result() << '\n'; // result() waits for it
    // [tour-submit-end]
    check(f.result() == 49, "submit(square, 7).result() is 49");
}

void exceptions_are_rethrown(futura::Executor& pool)
{
    section("an exception thrown by a call is rethrown by result()");
    // [tour-exception]
    auto f = pool.submit([]() -> int { throw std::runtime_error("no luck this time"); });
    try {
        f.result();
    } catch (const std::runtime_error& error) {
        std::cout << "caught: " << error.what() << '\n';
    }
    // [tour-exception-end]
    check(f.exception() != nullptr, "the future holds the call's exception");
}

void as_completed_with_progress(futura::Executor& pool)
{
    section("as_completed: results as they finish, with a progress bar");
    // [tour-as-completed]
    std::vector<futura::Future<int>> futures;
    for (int x = 0; x < 100; ++x) {
        futures.push_back(pool.submit(slow_square, x));
    }
    long sum = 0;
    for (const auto& f :
         futura::with_progress(futura::as_completed(futures), {.label = "squares"})) {
        sum += f.result(); // in the order the calls finish, not the order of submission
    }
    std::cout << "sum of the squares of 0..99 = " << sum << '\n';
    // [tour-as-completed-end]
    check(sum == 328'350, "the sum of the squares of 0..99 is 328350");
}

void map_in_order(futura::Executor& pool)
{
    section("map: results in input order");
    // [tour-map]
    std::cout << "squares of 1..10:";
    std::vector<int> squares;
    for (int y : pool.map(square, std::views::iota(1, 11))) {
        std::cout << ' ' << y;
        squares.push_back(y);
    }
    std::cout << '\n';
    // [tour-map-end]
    check(squares == std::vector<int>{1, 4, 9, 16, 25, 36, 49, 64, 81, 100},
          "map yields the squares of 1..10 in order");

    // [tour-map-progress]
    // map's results have no size of their own: tell the progress bar how many to expect.
    int count = 0;
    for (int y : futura::with_progress(pool.map(slow_square, std::views::iota(0, 40)),
                                       {.label = "map", .total = 40})) {
        check(y == count * count, "map yields slow_square(" + std::to_string(count) + ")");
        ++count;
    }
    // [tour-map-progress-end]
    check(count == 40, "map yields 40 results");
}

void wait_for_the_first(futura::Executor& pool)
{
    section("wait: return when the first future finishes");
    // [tour-wait]
    std::latch go{1};
    auto slow = pool.submit([&go] {
        go.wait(); // holds until released below
        return std::string("slow");
    });
    auto quick = pool.submit([] { return std::string("quick"); });
    auto [done, not_done] = futura::wait(
        {slow, quick}, {.timeout = 10s, .return_when = futura::ReturnWhen::first_completed});
    std::cout << done.size() << " done, " << not_done.size() << " not done\n";
    go.count_down(); // let the slow one finish
    // [tour-wait-end]
    check(done.size() == 1 && done.front() == quick, "only the quick future is done");
    check(not_done.size() == 1 && not_done.front() == slow, "the slow future is not done");
    check(slow.result() == "slow", "the slow future finishes once released");
}

void cancel_pending()
{
    section("cancel: only work that has not started can be cancelled");
    // [tour-cancel]
    std::latch started{1};
    std::latch go{1};
    futura::ThreadPoolExecutor one_worker{{.max_workers = 1}}; // declared last: goes first
    auto running = one_worker.submit([&] {
        started.count_down();
        go.wait();
        return 1;
    });
    auto pending = one_worker.submit(square, 3); // queued behind the running call
    started.wait();
    const bool cancelled_running = running.cancel();
    const bool cancelled_pending = pending.cancel();
    std::cout << std::boolalpha << "cancel() of the running call: " << cancelled_running
              << ", of the pending one: " << cancelled_pending << '\n';
    go.count_down();
    try {
        pending.result();
    } catch (const futura::CancelledError&) {
        std::cout << "result() of the cancelled call throws futura::CancelledError\n";
    }
    // [tour-cancel-end]
    check(!cancelled_running, "a running call cannot be cancelled");
    check(cancelled_pending && pending.cancelled(), "a pending call can be cancelled");
    check(running.result() == 1, "the running call completes");
}

void processes()
{
    section("processes: the same code, with one line changed");
    // [tour-processes]
    futura::ProcessPoolExecutor pool{{.max_workers = 2}}; // worker processes: this same program
    submit_and_result(pool);
    exceptions_are_rethrown(pool);
    map_in_order(pool);
    // [tour-processes-end]

    section("a call that crashes its process fails only its own future");
    // [tour-crash]
    auto crashed = pool.submit(crash_the_process, 1);
    try {
        crashed.result();
    } catch (const futura::WorkerCrashed& error) {
        const std::string why = error.what();
        std::cout << "WorkerCrashed: " << why.substr(0, why.find(';')) << '\n';
    }
    const int eight_squared = pool.submit(square, 8).result(); // a new worker, if needed
    std::cout << "the pool goes on: square(8) = " << eight_squared << '\n';
    // [tour-crash-end]
    check(crashed.exception() != nullptr, "the crashed call's future holds WorkerCrashed");
    check(eight_squared == 64, "the pool goes on after a crash");

    section("shared memory: workers write into one array, nothing is copied");
    // [tour-shared]
    const std::size_t n = 10'000'000;
    futura::SharedArray<double> data(n, 1.5); // 80 MB, shared with the workers
    auto first = pool.submit(double_in_place, data.slice(0, n / 2));
    auto second = pool.submit(double_in_place, data.slice(n / 2, n - n / 2));
    first.result();
    second.result();
    std::cout << "data[0] = " << data[0] << ", data[n - 1] = " << data[n - 1] << '\n'; // 3 and 3
    // [tour-shared-end]
    check(std::all_of(data.begin(), data.end(), [](double x) { return x == 3.0; }),
          "the workers doubled every element of the shared array");
}

void asio_event_loop()
{
    section("asio: co_await a process task without blocking the event loop");
    // [tour-asio]
    boost::asio::io_context io;                           // declared before the pool: it
    futura::ProcessPoolExecutor pool{{.max_workers = 1}}; // must outlive the pool's waits
    int answer = 0;
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
            answer = co_await pool.async_submit(square, 12, boost::asio::use_awaitable);
        },
        boost::asio::detached);
    io.run(); // returns once the coroutine is done
    std::cout << "square(12) from a coroutine = " << answer << '\n';
    // [tour-asio-end]
    check(answer == 144, "co_await pool.async_submit(square, 12) gives 144");
}

void show_stats(futura::ThreadPoolExecutor& pool)
{
    section("stats: what the pool did");
    // [tour-stats]
    pool.shutdown(); // waits for all submitted work, as the destructor would
    const futura::ExecutorStats stats = pool.stats();
    std::cout << "submitted " << stats.submitted << ", completed " << stats.completed << ", failed "
              << stats.failed << ", cancelled " << stats.cancelled << " on " << pool.max_workers()
              << " workers\n";
    // [tour-stats-end]
    check(stats.submitted == 154, "154 calls were submitted in this tour");
    check(stats.failed == 1, "one call failed (the exception section)");
    check(stats.submitted == stats.completed + stats.failed + stats.cancelled,
          "every submitted call is accounted for");
}

} // namespace

int main()
{
    // Progress bars go to stderr: write stdout at once, so that the two stay in order in a log.
    std::cout << std::unitbuf;
    std::cout << "futura: Python's concurrent.futures for C++20\n";
    try {
        // [tour-pool]
        futura::ThreadPoolExecutor pool{{.max_workers = 4}};
        // [tour-pool-end]
        submit_and_result(pool);
        exceptions_are_rethrown(pool);
        as_completed_with_progress(pool);
        map_in_order(pool);
        wait_for_the_first(pool);
        cancel_pending();
        show_stats(pool);
        processes();
        asio_event_loop();
    } catch (const std::exception& error) {
        std::cerr << "tour: FAILED: unexpected exception: " << error.what() << '\n';
        ++failures;
    }
    if (failures != 0) {
        std::cerr << "\ntour: " << failures << " check(s) failed\n";
        return EXIT_FAILURE;
    }
    std::cout << "\nEnd of the tour: everything worked.\n";
    return EXIT_SUCCESS;
}
