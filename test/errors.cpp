// futura's exception hierarchy (the contract's Errors section) and the messages the library
// gives: what happened and, where it helps, what to do.
#include <futura/errors.hpp>

#include <boost/test/unit_test.hpp>

#include <exception>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "support.hpp"

using namespace futura_test;

namespace {

template <class Derived, class Base>
constexpr bool is_a = std::is_base_of_v<Base, Derived>&& std::is_convertible_v<Derived*, Base*>;

// The hierarchy, as the contract draws it.
static_assert(is_a<futura::Error, std::runtime_error>);
static_assert(is_a<futura::CancelledError, futura::Error>);
static_assert(is_a<futura::TimeoutError, futura::Error>);
static_assert(is_a<futura::InvalidStateError, futura::Error>);
static_assert(is_a<futura::ShutdownError, futura::Error>);
static_assert(is_a<futura::BrokenExecutor, futura::Error>);
static_assert(is_a<futura::BrokenThreadPool, futura::BrokenExecutor>);
static_assert(is_a<futura::BrokenProcessPool, futura::BrokenExecutor>);
static_assert(is_a<futura::WorkerCrashed, futura::BrokenProcessPool>);
static_assert(is_a<futura::WorkerCrashed, futura::BrokenExecutor>);
static_assert(is_a<futura::WorkerCrashed, futura::Error>);
static_assert(is_a<futura::WorkerCrashed, std::runtime_error>);
static_assert(is_a<futura::RemoteError, futura::Error>);

// Siblings stay apart: catching one never catches another.
static_assert(!is_a<futura::BrokenThreadPool, futura::BrokenProcessPool>);
static_assert(!is_a<futura::BrokenProcessPool, futura::BrokenThreadPool>);
static_assert(!is_a<futura::CancelledError, futura::TimeoutError>);
static_assert(!is_a<futura::TimeoutError, futura::CancelledError>);
static_assert(!is_a<futura::RemoteError, futura::BrokenExecutor>);
static_assert(!is_a<futura::InvalidStateError, futura::ShutdownError>);

// Exceptions must copy without throwing (they are copied when thrown and rethrown).
static_assert(std::is_nothrow_copy_constructible_v<futura::CancelledError>);
static_assert(std::is_nothrow_copy_constructible_v<futura::WorkerCrashed>);

/// The message of `error` as thrown and caught as `Base`.
template <class Base, class E>
std::string caught_as(const E& error)
{
    try {
        throw error;
    } catch (const Base& e) {
        return e.what();
    }
    return "not caught";
}

} // namespace

BOOST_AUTO_TEST_SUITE(errors)

BOOST_AUTO_TEST_CASE(worker_crashed_is_caught_by_every_base)
{
    const futura::WorkerCrashed crash("worker 3 killed by signal 9 (SIGKILL)");
    BOOST_TEST(caught_as<futura::WorkerCrashed>(crash) == "worker 3 killed by signal 9 (SIGKILL)");
    BOOST_TEST(caught_as<futura::BrokenProcessPool>(crash) == crash.what());
    BOOST_TEST(caught_as<futura::BrokenExecutor>(crash) == crash.what());
    BOOST_TEST(caught_as<futura::Error>(crash) == crash.what());
    BOOST_TEST(caught_as<std::runtime_error>(crash) == crash.what());
    BOOST_TEST(caught_as<std::exception>(crash) == crash.what());
}

BOOST_AUTO_TEST_CASE(broken_thread_pool_is_a_broken_executor_not_a_broken_process_pool)
{
    try {
        throw futura::BrokenThreadPool("initializer failed");
    } catch (const futura::BrokenProcessPool&) {
        BOOST_FAIL("caught as BrokenProcessPool");
    } catch (const futura::BrokenExecutor& e) {
        BOOST_TEST(std::string(e.what()) == "initializer failed");
    }
}

BOOST_AUTO_TEST_CASE(every_error_is_caught_as_futura_error)
{
    BOOST_TEST(caught_as<futura::Error>(futura::CancelledError()) != "not caught");
    BOOST_TEST(caught_as<futura::Error>(futura::TimeoutError()) != "not caught");
    BOOST_TEST(caught_as<futura::Error>(futura::InvalidStateError("x")) == "x");
    BOOST_TEST(caught_as<futura::Error>(futura::ShutdownError()) != "not caught");
    BOOST_TEST(caught_as<futura::Error>(futura::BrokenExecutor("y")) == "y");
    BOOST_TEST(caught_as<futura::Error>(futura::RemoteError("T", "m", "s")) != "not caught");
}

BOOST_AUTO_TEST_CASE(default_messages_say_what_happened)
{
    const std::string cancelled = futura::CancelledError().what();
    const std::string timeout = futura::TimeoutError().what();
    const std::string shutdown = futura::ShutdownError().what();
    BOOST_TEST(cancelled.find("cancelled") != std::string::npos, cancelled);
    BOOST_TEST(timeout.find("timeout") != std::string::npos, timeout);
    // Python's words, so a search for them finds this error too.
    BOOST_TEST(shutdown.find("cannot schedule new futures after shutdown") != std::string::npos,
               shutdown);
    for (const auto& message : {cancelled, timeout, shutdown}) {
        BOOST_TEST(message.size() > 20U, message);
        BOOST_TEST(message.find("futura") != std::string::npos, message);
    }
}

BOOST_AUTO_TEST_CASE(explicit_messages_are_kept)
{
    BOOST_TEST(std::string(futura::CancelledError("custom c").what()) == "custom c");
    BOOST_TEST(std::string(futura::TimeoutError("custom t").what()) == "custom t");
    BOOST_TEST(std::string(futura::ShutdownError("custom s").what()) == "custom s");
    BOOST_TEST(std::string(futura::BrokenProcessPool("custom b").what()) == "custom b");
}

BOOST_AUTO_TEST_CASE(remote_error_carries_type_message_and_stack_trace)
{
    const futura::RemoteError error("my::ParseError", "bad token at 3",
                                    "#0 parse()\n#1 worker_main()\n");
    BOOST_TEST(error.type_name() == "my::ParseError");
    BOOST_TEST(error.message() == "bad token at 3");
    BOOST_TEST(error.stack_trace() == "#0 parse()\n#1 worker_main()\n");
    const std::string what = error.what();
    BOOST_TEST(what.find("my::ParseError") != std::string::npos, what);
    BOOST_TEST(what.find("bad token at 3") != std::string::npos, what);
    // It survives a throw and a copy with its accessors.
    try {
        throw error;
    } catch (const futura::Error& e) {
        const auto* remote = dynamic_cast<const futura::RemoteError*>(&e);
        BOOST_REQUIRE(remote != nullptr);
        BOOST_TEST(remote->type_name() == "my::ParseError");
        BOOST_TEST(remote->stack_trace() == error.stack_trace());
    }
}

// ---------------------------------------------------------------------------------------------
// Messages of the errors the library raises

BOOST_AUTO_TEST_CASE(invalid_max_workers_message_names_the_value_and_the_fix)
{
    try {
        futura::ThreadPoolExecutor pool{{.max_workers = -3}};
        BOOST_FAIL("no exception");
    } catch (const std::invalid_argument& e) {
        const std::string what = e.what();
        BOOST_TEST(what.find("max_workers") != std::string::npos, what);
        BOOST_TEST(what.find("-3") != std::string::npos, what);
    }
}

BOOST_AUTO_TEST_CASE(double_set_result_message_says_only_once)
{
    futura::Promise<int> promise;
    promise.set_result(1);
    try {
        promise.set_result(2);
        BOOST_FAIL("no exception");
    } catch (const futura::InvalidStateError& e) {
        const std::string what = e.what();
        BOOST_TEST(what.find("already done") != std::string::npos, what);
    }
}

BOOST_AUTO_TEST_CASE(abandoned_promise_message_explains)
{
    futura::Future<int> future;
    {
        futura::Promise<int> promise;
        future = promise.get_future();
    }
    try {
        (void)future.result();
        BOOST_FAIL("no exception");
    } catch (const futura::BrokenExecutor& e) {
        const std::string what = e.what();
        BOOST_TEST(what.find("Promise destroyed") != std::string::npos, what);
    }
}

BOOST_AUTO_TEST_CASE(broken_thread_pool_message_includes_the_initializer_error)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1, .initializer = [] {
                                         throw std::runtime_error("cannot open config.ini");
                                     }}};
    std::string what;
    try {
        auto future = pool.submit(square, 2);
        (void)future.result(should_happen);
    } catch (const futura::BrokenThreadPool& e) {
        what = e.what();
    }
    BOOST_TEST(what.find("cannot open config.ini") != std::string::npos, what);
    BOOST_TEST(what.find("initializer") != std::string::npos, what);
}

BOOST_AUTO_TEST_CASE(cancelled_result_message_explains)
{
    futura::Promise<int> promise;
    const auto future = promise.get_future();
    future.cancel();
    try {
        (void)future.result();
        BOOST_FAIL("no exception");
    } catch (const futura::CancelledError& e) {
        const std::string what = e.what();
        BOOST_TEST(what.find("cancelled") != std::string::npos, what);
    }
}

BOOST_AUTO_TEST_SUITE_END()

// ---- issue 10: errors a user can catch, and what happened where ------------------------------

static_assert(is_a<futura::ProtocolError, futura::Error>);
static_assert(is_a<futura::RemoteTraceback, futura::Error>);
static_assert(is_a<futura::SharedMemoryExhausted, std::bad_alloc>);

namespace {

bool text_has(const std::string& text, const std::string& part)
{
    return text.find(part) != std::string::npos;
}

} // namespace

BOOST_AUTO_TEST_SUITE(describing_errors)

BOOST_AUTO_TEST_CASE(describe_says_what_happened_and_follows_nested_exceptions)
{
    std::exception_ptr error;
    try {
        try {
            throw std::out_of_range("index 7");
        } catch (...) {
            std::throw_with_nested(std::runtime_error("loading the table failed"));
        }
    } catch (...) {
        error = std::current_exception();
    }
    const auto text = futura::describe(error);
    BOOST_TEST(text_has(text, "loading the table failed\n"), text);
    BOOST_TEST(text_has(text, "caused by: std::out_of_range: index 7\n"), text);
    BOOST_TEST(!futura::remote_stack_trace(error).has_value());
}

BOOST_AUTO_TEST_CASE(a_remote_error_describes_its_type_message_and_trace)
{
    const auto error = std::make_exception_ptr(
        futura::RemoteError("my::ParseError", "bad token", "#0 parse()\n#1 worker_main()\n"));
    BOOST_TEST(futura::remote_stack_trace(error).value_or("") == "#0 parse()\n#1 worker_main()\n");
    const auto text = futura::describe(error);
    BOOST_TEST(text.starts_with("my::ParseError: bad token\n"), text);
    BOOST_TEST(text_has(text, "    #0 parse()\n"), text);
}

BOOST_AUTO_TEST_SUITE_END()
