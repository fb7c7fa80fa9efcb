// The code of doc/asio.md: a line-based TCP server on 127.0.0.1 whose coroutines answer cheap
// requests at once and hand CPU-heavy ones to a process pool with co_await, so the event loop
// never blocks.
//
//   asio_server PORT    serve on 127.0.0.1:PORT (0: any free port) until SIGINT or SIGTERM;
//                       prints "listening on 127.0.0.1:<port>" once it accepts connections
//   asio_server         a demo, run as a test: serve on a free port, and from a client in the
//                       same loop, ask for a heavy count while sending pings; exit status 0
//                       when the pings were answered meanwhile and the count is right
//
// Requests, one per line: `ping` (answer `pong`), `primes N` (answer the number of primes
// below N, 0 <= N <= 100000000), anything else (answer `error: ...`).
//
// The lines between `// [name]` and `// [name-end]` are shown in the docs verbatim
// (scripts/check-docs keeps them in sync).

#include <futura/futura.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <charconv>
#include <csignal>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// [count-primes]
// A plain function, so that the process pool can run it in a worker process (this program).
int count_primes(int below)
{
    int count = 0;
    for (int n = 2; n < below; ++n) {
        bool prime = true;
        for (int d = 2; d <= n / d; ++d) {
            if (n % d == 0) {
                prime = false;
                break;
            }
        }
        count += prime ? 1 : 0;
    }
    return count;
}
// [count-primes-end]

constexpr int largest_request = 100'000'000;

/// The N of `primes N`, if it is a number in range.
std::optional<int> parse_limit(std::string_view text)
{
    int value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || value < 0 ||
        value > largest_request) {
        return std::nullopt;
    }
    return value;
}

// [session]
// One coroutine per connection: read a line, answer it, repeat. A heavy request suspends only
// this coroutine; the loop thread goes on serving every other connection meanwhile.
asio::awaitable<void> session(tcp::socket socket, futura::ProcessPoolExecutor& pool)
{
    std::string input;
    for (;;) {
        auto [error, length] = co_await asio::async_read_until(
            socket, asio::dynamic_buffer(input), '\n', asio::as_tuple(asio::use_awaitable));
        if (error) {
            co_return; // the client left
        }
        const std::string line = input.substr(0, length - 1);
        input.erase(0, length);

        std::string reply;
        if (line == "ping") {
            reply = "pong";
        } else if (line.starts_with("primes ")) {
            if (auto below = parse_limit(std::string_view(line).substr(7))) {
                // Runs in a worker process; this coroutine resumes on the loop with the result.
                const int count =
                    co_await pool.async_submit(count_primes, *below, asio::use_awaitable);
                reply = std::to_string(count);
            } else {
                reply = "error: primes takes a number from 0 to 100000000";
            }
        } else {
            reply = "error: unknown request (ping, primes N)";
        }
        reply += '\n';
        co_await asio::async_write(socket, asio::buffer(reply), asio::use_awaitable);
    }
}

asio::awaitable<void> listen(tcp::acceptor& acceptor, futura::ProcessPoolExecutor& pool)
{
    for (;;) {
        tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
        asio::co_spawn(acceptor.get_executor(), session(std::move(socket), pool), asio::detached);
    }
}
// [session-end]

/// A line-at-a-time client connection for the demo.
class Client
{
public:
    explicit Client(tcp::socket socket) : socket_(std::move(socket)) {}

    tcp::socket& socket() { return socket_; }

    asio::awaitable<std::string> ask(std::string request)
    {
        request += '\n';
        co_await asio::async_write(socket_, asio::buffer(request), asio::use_awaitable);
        const std::size_t length = co_await asio::async_read_until(
            socket_, asio::dynamic_buffer(input_), '\n', asio::use_awaitable);
        std::string line = input_.substr(0, length - 1);
        input_.erase(0, length);
        co_return line;
    }

private:
    tcp::socket socket_;
    std::string input_;
};

/// The demo's client: one heavy request on its own connection, pings on another meanwhile.
asio::awaitable<void> demo(tcp::endpoint server, bool& passed)
{
    auto executor = co_await asio::this_coro::executor;
    Client heavy{tcp::socket(executor)};
    Client light{tcp::socket(executor)};
    // (Two connections: one connection's requests are answered in order.)
    co_await heavy.socket().async_connect(server, asio::use_awaitable);
    co_await light.socket().async_connect(server, asio::use_awaitable);

    bool heavy_done = false;
    std::string heavy_answer;
    asio::co_spawn(
        executor,
        [&]() -> asio::awaitable<void> {
            heavy_answer = co_await heavy.ask("primes 3000000");
            heavy_done = true;
        },
        asio::detached);
    int pongs_meanwhile = 0;
    for (int i = 0; i < 100'000 && !heavy_done; ++i) {
        if (co_await light.ask("ping") == "pong" && !heavy_done) {
            ++pongs_meanwhile;
        }
    }
    while (!heavy_done) { // the ping budget ran out first: wait for the answer all the same
        co_await light.ask("ping");
    }
    std::cout << "primes below 3000000: " << heavy_answer << " (" << pongs_meanwhile
              << " pings answered while it was computed)\n";
    std::cout << "bad request: " << co_await light.ask("primes many") << '\n';
    passed = heavy_answer == "216816" && pongs_meanwhile > 0;
}

} // namespace

int main(int argc, char** argv)
{
    try {
        // [main]
        // The loop is declared first so that it outlives the pool: the pool's destructor waits
        // for running tasks, whose completions still post to the loop.
        asio::io_context io;
        futura::ProcessPoolExecutor pool;

        const unsigned short port = argc > 1 ? static_cast<unsigned short>(std::stoul(argv[1])) : 0;
        tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), port));
        asio::co_spawn(io, listen(acceptor, pool), asio::detached);

        asio::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([&](boost::system::error_code, int) { io.stop(); });
        // [main-end]

        if (argc > 1) {
            std::cout << "listening on 127.0.0.1:" << acceptor.local_endpoint().port()
                      << std::endl; // flushed: a parent process may wait for this line
            io.run();
            return EXIT_SUCCESS;
        }
        bool passed = false;
        asio::co_spawn(io, demo(acceptor.local_endpoint(), passed), [&](std::exception_ptr error) {
            if (error) {
                std::rethrow_exception(error);
            }
            io.stop();
        });
        io.run();
        return passed ? EXIT_SUCCESS : EXIT_FAILURE;
    } catch (const std::exception& e) {
        std::cerr << "asio_server: " << e.what() << '\n';
        return EXIT_FAILURE;
    }
}
