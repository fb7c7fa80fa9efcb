// The code of doc/tutorial.md: Python's concurrent.futures, step by step, in futura.
//
// The lines between `// [name]` and `// [name-end]` are shown in the tutorial verbatim
// (scripts/check-docs keeps them in sync). The checks after each region make this program a
// test: its exit status is 0 when every check passed, 1 otherwise. It runs in well under a
// second on two cores.

#include <futura/futura.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iostream>
#include <latch>
#include <ranges>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

using namespace std::chrono_literals;

namespace {

int failed_checks = 0;

void check(bool ok, const char* what)
{
    if (!ok) {
        std::cerr << "tutorial: check failed: " << what << '\n';
        ++failed_checks;
    }
}

void heading(const char* title) { std::cout << "\n== " << title << '\n'; }

// [power]
long long power(long long base, int exponent)
{
    long long result = 1;
    for (int i = 0; i < exponent; ++i) {
        result *= base;
    }
    return result;
}
// [power-end]

void step_submit()
{
    heading("submit and result");
    // [submit]
    futura::ThreadPoolExecutor executor{{.max_workers = 1}};
    futura::Future<long long> future = executor.submit(power, 3, 13);
    std::cout << future.result() << '\n'; // 1594323
    // [submit-end]
    check(future.result() == 1594323, "submit: power(3, 13)");
}

// [load-url]
// Stands in for urllib: waits a few milliseconds, as if for the network, then returns a page.
std::string load_url(const std::string& url, std::chrono::milliseconds timeout)
{
    std::this_thread::sleep_for(std::min(timeout, std::chrono::milliseconds(1 + url.size() % 5)));
    if (url.starts_with("http://nonexistent")) {
        throw std::runtime_error("<urlopen error [Errno -2] Name or service not known>");
    }
    return "<html>" + std::string(100 * url.size(), '.') + "</html>";
}
// [load-url-end]

void step_as_completed()
{
    heading("as_completed and the future-to-url map");
    // [as-completed]
    const std::vector<std::string> urls = {"http://www.foxnews.com/", "http://www.cnn.com/",
                                           "http://europe.wsj.com/", "http://www.bbc.co.uk/",
                                           "http://nonexistent-subdomain.python.org/"};

    futura::ThreadPoolExecutor executor{{.max_workers = 5}};
    // Start the load operations and mark each future with its URL.
    std::unordered_map<futura::Future<std::string>, std::string> future_to_url;
    for (const auto& url : urls) {
        future_to_url.emplace(executor.submit(load_url, url, 60s), url);
    }
    for (const auto& future : futura::as_completed(future_to_url | std::views::keys)) {
        const std::string& url = future_to_url.at(future);
        try {
            const std::string& data = future.result();
            std::cout << url << " page is " << data.size() << " bytes\n";
        } catch (const std::exception& exc) {
            std::cout << url << " generated an exception: " << exc.what() << '\n';
        }
    }
    // [as-completed-end]
    std::size_t yielded = 0;
    std::size_t failed = 0;
    for (const auto& future : futura::as_completed(future_to_url | std::views::keys)) {
        ++yielded;
        failed += future.exception() ? 1U : 0U;
    }
    check(yielded == urls.size(), "as_completed: every future once");
    check(failed == 1, "as_completed: only the nonexistent host failed");
}

// [is-prime]
bool is_prime(std::uint64_t n)
{
    if (n < 2) {
        return false;
    }
    if (n == 2) {
        return true;
    }
    if (n % 2 == 0) {
        return false;
    }
    for (std::uint64_t i = 3; i <= n / i; i += 2) {
        if (n % i == 0) {
            return false;
        }
    }
    return true;
}
// [is-prime-end]

void step_map()
{
    heading("map");
    // [map]
    const std::vector<std::uint64_t> primes = {112272535095293, 112582705942171, 112272535095293,
                                               115280095190773, 115797848077099, 1099726899285419};

    futura::ThreadPoolExecutor executor; // one worker per CPU this process may use
    std::size_t i = 0;
    for (bool prime : executor.map(is_prime, primes)) {
        std::cout << primes[i++] << " is prime: " << prime << '\n';
    }
    // [map-end]
    check(i == primes.size(), "map: one result per input");

    // [starmap]
    std::vector<std::tuple<long long, int>> arguments = {{2, 5}, {3, 6}, {4, 7}};
    for (long long result : executor.starmap(power, arguments)) {
        std::cout << result << '\n'; // 32, 729, 16384
    }
    // [starmap-end]
    std::vector<long long> results;
    for (long long result : executor.starmap(power, arguments)) {
        results.push_back(result);
    }
    check(results == std::vector<long long>{32, 729, 16384}, "starmap: power over tuples");
}

void step_progress()
{
    heading("a progress bar");
    // [progress]
    futura::ThreadPoolExecutor executor;
    std::vector<futura::Future<bool>> futures;
    for (std::uint64_t n = 1'000'000; n < 1'002'000; ++n) {
        futures.push_back(executor.submit(is_prime, n));
    }
    int found = 0;
    for (const auto& future :
         futura::with_progress(futura::as_completed(futures), {.label = "is_prime"})) {
        found += future.result() ? 1 : 0;
    }
    std::cout << found << " primes\n"; // the bar went to stderr
    // [progress-end]
    int expected = 0;
    for (std::uint64_t n = 1'000'000; n < 1'002'000; ++n) {
        expected += is_prime(n) ? 1 : 0;
    }
    check(found == expected, "progress: every future counted once");
}

// [square]
int square(int x) { return x * x; }
// [square-end]

void step_map_options()
{
    heading("map: timeout and buffersize");
    // [map-timeout]
    futura::ThreadPoolExecutor executor{{.max_workers = 2}};
    auto nap_then_square = [](int ms) {
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        return ms * ms;
    };
    std::vector<int> got;
    try {
        for (int y : executor.map(nap_then_square, std::vector{1, 2, 3, 250}, {.timeout = 50ms})) {
            got.push_back(y);
        }
    } catch (const futura::TimeoutError& e) {
        std::cout << "gave up after " << got.size() << " results: " << e.what() << '\n';
    }
    // [map-timeout-end]
    check(got.size() < 4, "map: the timeout stopped the iteration");

    // [map-buffersize]
    // An endless input: with a buffersize, map submits only a few calls ahead of the reader.
    int first_big_square = 0;
    for (int y : executor.map(square, std::views::iota(0), {.buffersize = 4})) {
        if (y > 1000) {
            first_big_square = y;
            break; // destroying the results cancels the calls that have not started
        }
    }
    std::cout << first_big_square << '\n'; // 1024
    // [map-buffersize-end]
    check(first_big_square == 1024, "map: buffersize over an endless range");
}

void step_wait()
{
    heading("wait");
    // [wait]
    const std::vector<std::string> mirrors = {"http://mirror-a.example.org/",
                                              "http://mirror-b.example.org/pub/",
                                              "http://mirror-c.example.org/pub/files/"};

    futura::ThreadPoolExecutor executor{{.max_workers = 2}};
    std::vector<futura::Future<std::string>> downloads;
    for (const auto& url : mirrors) {
        downloads.push_back(executor.submit(load_url, url, 60s));
    }
    auto [done, not_done] =
        futura::wait(downloads, {.return_when = futura::ReturnWhen::first_completed});
    std::cout << done.size() << " done; cancelling " << not_done.size() << '\n';
    for (const auto& future : not_done) {
        future.cancel(); // succeeds for those that have not started
    }
    // [wait-end]
    check(!done.empty() && done.size() + not_done.size() == mirrors.size(),
          "wait: done and not_done split the futures");
    check(std::ranges::all_of(done, [](const auto& f) { return f.done(); }),
          "wait: every future in done is done");
}

void step_timeout()
{
    heading("result with a timeout");
    // [timeout]
    futura::ThreadPoolExecutor executor{{.max_workers = 1}};
    auto slow = executor.submit([] {
        std::this_thread::sleep_for(100ms);
        return 42;
    });
    try {
        std::cout << slow.result(10ms) << '\n';
    } catch (const futura::TimeoutError& e) {
        std::cout << e.what() << "; done: " << slow.done() << '\n'; // done: false
    }
    std::cout << slow.result() << '\n'; // the task went on: waiting again gets 42
    // [timeout-end]
    check(slow.result() == 42, "timeout: the task finished after the timed-out wait");
}

void step_exceptions()
{
    heading("exceptions");
    // [exceptions]
    futura::ThreadPoolExecutor executor;
    auto parsed =
        executor.submit([](const std::string& text) { return std::stoi(text); }, "forty-two");
    try {
        std::cout << parsed.result() << '\n';
    } catch (const std::invalid_argument& e) { // the task's own exception, as it was thrown
        std::cout << "parsing failed: " << e.what() << '\n';
    }
    std::exception_ptr error = parsed.exception(); // Python's future.exception()
    std::cout << "has an exception: " << static_cast<bool>(error) << '\n';
    // [exceptions-end]
    check(error != nullptr, "exceptions: exception() holds the task's exception");
    bool rethrown_as_thrown = false;
    try {
        std::rethrow_exception(error);
    } catch (const std::invalid_argument&) {
        rethrown_as_thrown = true;
    }
    check(rethrown_as_thrown, "exceptions: the exception keeps its type");
}

void step_cancel()
{
    heading("cancel");
    // [cancel]
    std::latch started{1}; // like threading.Event: declared first, so it outlives the pool
    std::latch release{1};
    futura::ThreadPoolExecutor executor{{.max_workers = 1}};

    auto busy = executor.submit([&] {
        started.count_down();
        release.wait();
    });
    auto queued = executor.submit(power, 2, 10);
    started.wait(); // the only worker now runs `busy`, so `queued` is still pending

    std::cout << "cancel queued: " << queued.cancel() << '\n'; // true: it had not started
    std::cout << "cancel busy: " << busy.cancel() << '\n';     // false: it is running
    release.count_down();
    try {
        queued.result();
    } catch (const futura::CancelledError& e) {
        std::cout << e.what() << '\n';
    }
    // [cancel-end]
    check(queued.cancelled() && !busy.cancelled(), "cancel: pending only");
    busy.wait();
    check(busy.done() && !busy.exception(), "cancel: the running task finished");
}

void step_shutdown()
{
    heading("shutdown");
    // [shutdown]
    futura::ThreadPoolExecutor executor{{.max_workers = 1}};
    std::vector<futura::Future<void>> naps;
    for (int i = 0; i < 10; ++i) {
        naps.push_back(executor.submit([] { std::this_thread::sleep_for(10ms); }));
    }
    executor.shutdown({.wait = true, .cancel_futures = true});
    const auto never_ran = std::ranges::count_if(naps, [](const auto& f) { return f.cancelled(); });
    std::cout << never_ran << " of 10 never ran\n"; // 9 or so: the one running went on

    try {
        auto late = executor.submit([] { std::cout << "too late\n"; });
    } catch (const futura::ShutdownError& e) {
        std::cout << e.what() << '\n';
    }
    // [shutdown-end]
    check(never_ran >= 1, "shutdown: pending work was cancelled");
    check(std::ranges::all_of(naps, [](const auto& f) { return f.done(); }),
          "shutdown(wait): every future is done after it");
}

void step_callbacks()
{
    heading("callbacks");
    // [callbacks]
    std::atomic<int> calls{0}; // declared before the pool: callbacks run in its workers
    futura::ThreadPoolExecutor executor;

    auto future = executor.submit(power, 2, 8);
    future.add_done_callback([&calls](const futura::Future<long long>& done) {
        std::cout << "done: " << done.result() << '\n'; // in the worker that finished it
        ++calls;
    });
    future.wait();
    future.add_done_callback([&calls] { // already done: runs at once, in this thread
        std::cout << "already done\n";
        ++calls;
    });
    // [callbacks-end]
    executor.shutdown(); // the first callback may still be running after wait() returned
    check(calls == 2, "callbacks: both ran");
}

void step_own_pool()
{
    heading("a task that waits on its own pool");
    // [own-pool]
    futura::ThreadPoolExecutor executor{{.max_workers = 1}};
    auto wait_on_future = [&executor] {
        auto f = executor.submit(power, 5, 2);
        // Python deadlocks here: the only worker is busy running this very function.
        // futura's worker runs the queued task itself while it waits.
        return f.result();
    };
    std::cout << executor.submit(wait_on_future).result() << '\n'; // 25
    // [own-pool-end]
    check(executor.submit(wait_on_future).result() == 25, "own pool: no deadlock");
}

void step_initializer()
{
    heading("initializer and a broken pool");
    // [initializer]
    futura::ThreadPoolExecutor executor{{
        .max_workers = 2,
        .thread_name_prefix = "db",
        .initializer = [] { throw std::runtime_error("cannot connect to the database"); },
    }};
    try {
        auto future = executor.submit(power, 2, 2);
        std::cout << future.result() << '\n';
    } catch (const futura::BrokenThreadPool&) {
        std::cout << "the pool is broken: its initializer threw\n";
    }
    // [initializer-end]
    bool broken = false;
    try {
        auto future = executor.submit(power, 2, 2);
        future.wait();
    } catch (const futura::BrokenThreadPool&) {
        broken = true;
    }
    check(broken, "initializer: the pool is broken");
}

// [total-bytes]
// Written once against the interface: runs on every executor.
std::size_t total_bytes(futura::Executor& executor, const std::vector<std::string>& urls)
{
    std::vector<futura::Future<std::string>> pages;
    for (const auto& url : urls) {
        pages.push_back(executor.submit(load_url, url, 60s));
    }
    std::size_t total = 0;
    for (const auto& page : pages) {
        total += page.result().size();
    }
    return total;
}
// [total-bytes-end]

void step_inline()
{
    heading("InlineExecutor");
    // [inline]
    const std::vector<std::string> urls = {"http://www.python.org/", "http://www.boost.org/"};
    futura::InlineExecutor debug; // runs each task at once, in the calling thread
    futura::ThreadPoolExecutor pool;
    std::cout << total_bytes(debug, urls) << " bytes, " << total_bytes(pool, urls) << " bytes\n";
    // [inline-end]
    check(total_bytes(debug, urls) == total_bytes(pool, urls), "inline: same result");
    auto future = debug.submit(power, 2, 3);
    check(future.done(), "inline: submit returns a finished future");
}

void step_promise()
{
    heading("Promise");
    // [promise]
    futura::Promise<double> promise;
    futura::Future<double> reading = promise.get_future();

    std::jthread sensor([promise = std::move(promise)]() mutable {
        std::this_thread::sleep_for(2ms); // measuring...
        // Python's protocol: false if the reader cancelled the future meanwhile.
        if (promise.set_running_or_notify_cancel()) {
            promise.set_result(21.5);
        }
    });
    std::cout << "temperature: " << reading.result() << '\n';
    // [promise-end]
    check(reading.result() == 21.5, "promise: the value arrives");

    futura::Future<int> orphan;
    {
        futura::Promise<int> abandoned;
        orphan = abandoned.get_future();
    }
    check(orphan.exception() != nullptr, "promise: a destroyed promise fails its future");
}

void step_processes()
{
    heading("the same code with processes");
    // [processes]
    const std::vector<std::uint64_t> primes = {112272535095293, 112582705942171, 112272535095293,
                                               115280095190773, 115797848077099, 1099726899285419};

    futura::ProcessPoolExecutor executor; // the one change from step 3: processes, not threads
    std::size_t i = 0;
    for (bool prime : executor.map(is_prime, primes)) {
        std::cout << primes[i++] << " is prime: " << prime << '\n';
    }
    // [processes-end]
    check(i == primes.size(), "processes: one result per input");

    // [processes-any-executor]
    const std::vector<std::string> urls = {"http://www.python.org/", "http://www.boost.org/"};
    std::cout << total_bytes(executor, urls) << " bytes\n"; // step 14's function, unchanged
    // [processes-any-executor-end]
    futura::InlineExecutor debug;
    check(total_bytes(executor, urls) == total_bytes(debug, urls), "processes: same result");
}

} // namespace

int main()
{
    std::cout << std::boolalpha;
    try {
        step_submit();
        step_as_completed();
        step_map();
        step_progress();
        step_map_options();
        step_wait();
        step_timeout();
        step_exceptions();
        step_cancel();
        step_shutdown();
        step_callbacks();
        step_own_pool();
        step_initializer();
        step_inline();
        step_promise();
        step_processes();
    } catch (const std::exception& e) {
        std::cerr << "tutorial: unexpected exception: " << e.what() << '\n';
        return 1;
    }
    if (failed_checks != 0) {
        std::cerr << "tutorial: " << failed_checks << " check(s) failed\n";
        return 1;
    }
    std::cout << "\ntutorial: all checks passed\n";
    return 0;
}
