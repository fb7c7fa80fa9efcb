// The example server (example/asio_server.cpp) as a child process, driven by a client: cheap
// requests are answered while heavy ones run in the server's process pool, and the heavy
// answers are right. The server's path comes on the command line after `--`.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <poll.h>
#include <spawn.h>
#include <string>
#include <string_view>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ; // NOLINT(readability-redundant-declaration): POSIX declares it nowhere

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr auto generous = 120s;

std::string server_program()
{
    const auto& suite = boost::unit_test::framework::master_test_suite();
    for (int i = 1; i < suite.argc; ++i) {
        const std::filesystem::path candidate(suite.argv[i]);
        if (candidate.filename() == "asio_server") {
            return candidate.string();
        }
    }
    return {};
}

/// The number of primes below `n`, by a sieve: independent of the server's trial division.
int primes_below(int n)
{
    std::vector<bool> composite(static_cast<std::size_t>(std::max(n, 2)), false);
    int count = 0;
    for (int i = 2; i < n; ++i) {
        if (!composite[static_cast<std::size_t>(i)]) {
            ++count;
            for (long j = static_cast<long>(i) * i; j < n; j += i) {
                composite[static_cast<std::size_t>(j)] = true;
            }
        }
    }
    return count;
}

/// The server as a child process, listening on a port it picked; killed if still running when
/// the test ends (a failed check must not leave it behind).
class ServerProcess
{
public:
    explicit ServerProcess(const std::string& program)
    {
        int out[2];
        BOOST_REQUIRE(::pipe(out) == 0);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
        posix_spawn_file_actions_addclose(&actions, out[0]);
        posix_spawn_file_actions_addclose(&actions, out[1]);
        std::string port_argument = "0";
        std::string program_copy = program;
        char* argv[] = {program_copy.data(), port_argument.data(), nullptr};
        const int spawned = posix_spawn(&pid_, program.c_str(), &actions, nullptr, argv, environ);
        posix_spawn_file_actions_destroy(&actions);
        ::close(out[1]);
        output_ = out[0];
        BOOST_REQUIRE(spawned == 0);
    }

    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;

    ~ServerProcess()
    {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            int status = 0;
            ::waitpid(pid_, &status, 0);
        }
        ::close(output_);
    }

    /// The port from the server's first line, "listening on 127.0.0.1:<port>".
    std::optional<unsigned short> port()
    {
        std::string line;
        const auto until = std::chrono::steady_clock::now() + generous;
        while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < until) {
            pollfd readable{output_, POLLIN, 0};
            if (::poll(&readable, 1, 1000) <= 0) {
                continue;
            }
            char buffer[256];
            const auto got = ::read(output_, buffer, sizeof buffer);
            if (got <= 0) {
                break; // the server died
            }
            line.append(buffer, static_cast<std::size_t>(got));
        }
        constexpr std::string_view prefix = "listening on 127.0.0.1:";
        if (!line.starts_with(prefix) || line.find('\n') == std::string::npos) {
            return std::nullopt;
        }
        return static_cast<unsigned short>(std::stoul(line.substr(prefix.size())));
    }

    /// Sends SIGTERM and waits (bounded) for the exit. @return the wait status, if it exited.
    std::optional<int> terminate()
    {
        ::kill(pid_, SIGTERM);
        const auto until = std::chrono::steady_clock::now() + generous;
        while (std::chrono::steady_clock::now() < until) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return status;
            }
            std::this_thread::sleep_for(10ms);
        }
        return std::nullopt;
    }

private:
    pid_t pid_ = -1;
    int output_ = -1;
};

asio::awaitable<std::string> ask(tcp::socket& socket, std::string& input, std::string request)
{
    request += '\n';
    co_await asio::async_write(socket, asio::buffer(request), asio::use_awaitable);
    const std::size_t length = co_await asio::async_read_until(socket, asio::dynamic_buffer(input),
                                                               '\n', asio::use_awaitable);
    std::string line = input.substr(0, length - 1);
    input.erase(0, length);
    co_return line;
}

} // namespace

BOOST_AUTO_TEST_SUITE(asio_server)

BOOST_AUTO_TEST_CASE(pings_are_answered_while_heavy_requests_run_and_heavy_answers_are_right)
{
    const auto program = server_program();
    BOOST_REQUIRE_MESSAGE(!program.empty(), "pass the asio_server program after --");
    ServerProcess server(program);
    const auto port = server.port();
    BOOST_REQUIRE(port.has_value());
    const tcp::endpoint endpoint(asio::ip::address_v4::loopback(), *port);

    // Each heavy request takes the server's worker a good fraction of a second; there are more
    // than a 2-CPU machine's workers, so some wait in the pool's queue as well.
    const std::vector<int> limits{3'000'000, 2'500'000, 2'000'000, 3'500'000};
    constexpr int ping_budget = 200'000; // bounds the loop if heavy answers never come

    asio::io_context io;
    std::vector<std::string> heavy_answers(limits.size());
    std::vector<int> pongs_at_answer(limits.size(), -1);
    std::size_t heavy_left = limits.size();
    int pongs = 0;
    int wrong_pongs = 0;
    std::string bad_request_answer;
    for (std::size_t i = 0; i < limits.size(); ++i) {
        asio::co_spawn(
            io,
            [&, i]() -> asio::awaitable<void> {
                tcp::socket socket(io);
                co_await socket.async_connect(endpoint, asio::use_awaitable);
                std::string input;
                heavy_answers[i] =
                    co_await ask(socket, input, "primes " + std::to_string(limits[i]));
                pongs_at_answer[i] = pongs;
                --heavy_left;
            },
            asio::detached);
    }
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            tcp::socket socket(io);
            co_await socket.async_connect(endpoint, asio::use_awaitable);
            std::string input;
            while (heavy_left > 0 && pongs + wrong_pongs < ping_budget) {
                if (co_await ask(socket, input, "ping") == "pong") {
                    ++pongs;
                } else {
                    ++wrong_pongs;
                }
            }
            bad_request_answer = co_await ask(socket, input, "primes -1");
        },
        asio::detached);
    io.run_for(generous);

    BOOST_TEST(heavy_left == 0U);
    for (std::size_t i = 0; i < limits.size(); ++i) {
        BOOST_TEST(heavy_answers[i] == std::to_string(primes_below(limits[i])));
        // Liveness, not speed: many pings were answered before this heavy answer came back.
        BOOST_TEST(pongs_at_answer[i] >= 10);
    }
    BOOST_TEST(wrong_pongs == 0);
    BOOST_TEST(bad_request_answer.starts_with("error:"));

    const auto status = server.terminate();
    BOOST_REQUIRE(status.has_value());
    BOOST_TEST(WIFEXITED(*status));
    BOOST_TEST(WEXITSTATUS(*status) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
