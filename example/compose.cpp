// The code of doc/tutorial.md's "Composing futures": then, when_all, when_any, co_await.
//
// The lines between `// [name]` and `// [name-end]` are shown in the tutorial verbatim
// (scripts/check-docs keeps them in sync). The checks make this program a test: its exit status
// is 0 when every check passed, 1 otherwise.

#include <futura/futura.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <coroutine>
#include <cstddef>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace asio = boost::asio;

namespace {

int failed_checks = 0;

void check(bool ok, const char* what)
{
    if (!ok) {
        std::cerr << "compose: check failed: " << what << '\n';
        ++failed_checks;
    }
}

void heading(const char* title) { std::cout << "\n== " << title << '\n'; }

std::string download(const std::string& url) { return "<html>" + url + "</html>"; }

int word_count(const std::string& text) { return static_cast<int>(text.size() / 5); }

int square(int x) { return x * x; }

void step_then()
{
    heading("then");
    // [then]
    futura::ThreadPoolExecutor pool{{.max_workers = 4}};
    futura::Future<int> words = pool.submit(download, "https://example.org")
                                    .then([](std::string page) { return word_count(page); })
                                    .then([](int n) { return n * 2; });
    std::cout << words.result() << '\n'; // runs on `pool`, link after link
    // [then-end]
    check(words.result() == 2 * word_count(download("https://example.org")), "then chain");

    // [then-errors]
    auto parsed = pool.submit([] { return std::stoi("not a number"); })
                      .then([](int n) { return n + 1; }) // skipped: the exception flows past
                      .then([](futura::Future<int> f) {  // takes the whole future: sees it
                          try {
                              return f.result();
                          } catch (const std::invalid_argument&) {
                              return -1; // recovered
                          }
                      });
    std::cout << parsed.result() << '\n'; // -1
    // [then-errors-end]
    check(parsed.result() == -1, "then recovers from an exception");

    // [then-where]
    futura::ProcessPoolExecutor processes{{.max_workers = 2}};
    futura::InlineExecutor inline_executor;
    auto report = processes
                      .submit(square, 12)                            // in a worker process
                      .then([](int n) { return std::to_string(n); }) // futura's shared pool
                      .then([](std::string s) { return s + " ok"; }, // a cheap step: inline,
                            {.executor = &inline_executor})          // where the last ended
                      .then([](std::string s) { return s.size(); }, {.executor = &pool});
    std::cout << report.result() << '\n'; // 6, the size of "144 ok"
    // [then-where-end]
    check(report.result() == 6, "then on chosen executors");

    // [then-cancel]
    futura::Promise<int> slow; // stands for a task that has not started
    auto next = slow.get_future().then([](int n) { return n + 1; });
    next.cancel();                                      // the continuation never runs...
    std::cout << slow.get_future().cancelled() << '\n'; // ...and the antecedent is cancelled
    // [then-cancel-end]
    check(slow.get_future().cancelled(), "cancelling the result cancels the antecedent");
}

void step_when_all()
{
    heading("when_all, when_all_done, when_any");
    futura::ThreadPoolExecutor pool{{.max_workers = 4}};
    futura::ProcessPoolExecutor processes{{.max_workers = 2}};
    // [when-all]
    auto both = futura::when_all(pool.submit(download, "https://example.org"),
                                 processes.submit(square, 7)); // executors mixed
    auto [page, squared] = both.result();                      // std::tuple<std::string, int>
    std::cout << page.size() << ' ' << squared << '\n';

    std::vector<futura::Future<int>> squares;
    for (int i = 0; i < 10; ++i) {
        squares.push_back(processes.submit(square, i));
    }
    std::vector<int> values = futura::when_all(squares).result(); // in input order
    // [when-all-end]
    check(squared == 49 && values[9] == 81, "when_all");

    // [when-all-done]
    auto good = pool.submit(square, 3);
    auto bad = pool.submit([]() -> int { throw std::runtime_error("no"); });
    auto outcomes = futura::when_all_done({good, bad}).result(); // never fails: the inputs, done
    for (auto& outcome : outcomes) {
        std::cout << (outcome.exception() ? "failed" : std::to_string(outcome.result())) << '\n';
    }
    // [when-all-done-end]
    check(outcomes[0].result() == 9 && outcomes[1].exception() != nullptr, "when_all_done");

    // [when-any]
    futura::Promise<std::string> never; // a mirror that does not answer
    auto first = futura::when_any({never.get_future(), pool.submit(download, "mirror-2")}).result();
    std::cout << "mirror " << first.index << ": " << first.future.result() << '\n';
    // [when-any-end]
    check(first.index == 1, "when_any");
    never.set_result("late");
}

// [coroutine-type]
/// A minimal coroutine type of our own (not Asio's): it starts at once and its result is a
/// futura::Future. Any coroutine type can `co_await` a futura::Future.
template <class T>
struct Async
{
    struct promise_type
    {
        futura::Promise<T> result;
        Async get_return_object() { return {result.get_future()}; }
        std::suspend_never initial_suspend() noexcept { return {}; }
        std::suspend_never final_suspend() noexcept { return {}; }
        void return_value(T value) { result.set_result(std::move(value)); }
        void unhandled_exception() { result.set_exception(std::current_exception()); }
    };
    futura::Future<T> future;
};
// [coroutine-type-end]

// [co-await]
Async<int> sum_of_squares(futura::Executor& processes, futura::ThreadPoolExecutor& pool)
{
    int a = co_await processes.submit(square, 3); // resumes on futura's shared pool
    int b = co_await futura::resume_on(processes.submit(square, 4), pool); // on `pool`
    co_return a + b;
}
// [co-await-end]

// [parallel-group]
asio::awaitable<int> both_via_asio(futura::Future<int> a, futura::Future<int> b)
{
    auto [order, error_a, value_a, error_b, value_b] =
        co_await asio::experimental::make_parallel_group(a.async_wait(asio::deferred),
                                                         b.async_wait(asio::deferred))
            .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
    if (error_a || error_b) {
        std::rethrow_exception(error_a ? error_a : error_b);
    }
    co_return value_a + value_b;
}
// [parallel-group-end]

void step_co_await()
{
    heading("co_await");
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    futura::ProcessPoolExecutor processes{{.max_workers = 2}};
    const int sum = sum_of_squares(processes, pool).future.result();
    std::cout << sum << '\n'; // 25
    check(sum == 25, "co_await");

    asio::io_context io;
    int via_asio = 0;
    asio::co_spawn(io, both_via_asio(pool.submit(square, 5), processes.submit(square, 6)),
                   [&via_asio](std::exception_ptr error, int value) {
                       check(!error, "parallel group");
                       via_asio = value;
                   });
    io.run();
    std::cout << via_asio << '\n'; // 61
    check(via_asio == 61, "parallel group sum");
}

} // namespace

int main()
{
    std::cout << std::boolalpha;
    try {
        step_then();
        step_when_all();
        step_co_await();
    } catch (const std::exception& e) {
        std::cerr << "compose: unexpected exception: " << e.what() << '\n';
        return 1;
    }
    if (failed_checks != 0) {
        std::cerr << "compose: " << failed_checks << " check(s) failed\n";
        return 1;
    }
    std::cout << "\ncompose: all checks passed\n";
    return 0;
}
