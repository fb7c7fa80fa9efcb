// Compile-fail test: Future::async_wait and Executor::async_submit belong to the Asio layer; used
// without <futura/asio.hpp>, the compiler says what to include (instead of "used before its
// return type is deduced"). Compiled once per FUTURA_COMPILE_FAIL_CASE (see test/CMakeLists.txt
// and test/Jamfile); the control case includes the Asio layer and must compile.
#if FUTURA_COMPILE_FAIL_CASE == 0
#include <futura/asio.hpp>
#endif
#include <futura/inline_executor.hpp>

#include <boost/asio/detached.hpp>

namespace {

[[maybe_unused]] int add_one(int x) { return x + 1; }

} // namespace

void wait_for(futura::Executor& executor)
{
#if FUTURA_COMPILE_FAIL_CASE == 0
    executor.submit(add_one, 1).async_wait([](std::exception_ptr, int) {});
    executor.async_submit(add_one, 1, boost::asio::detached);
#elif FUTURA_COMPILE_FAIL_CASE == 1
    // "part of futura's Asio layer: #include <futura/asio.hpp>"
    executor.submit(add_one, 1).async_wait(boost::asio::detached);
#elif FUTURA_COMPILE_FAIL_CASE == 2
    executor.async_submit(add_one, 1, boost::asio::detached);
#else
    (void)executor;
#endif
}
