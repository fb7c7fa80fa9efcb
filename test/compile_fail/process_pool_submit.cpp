// Compile-fail test: ProcessPoolExecutor::submit rejects at compile time, with a readable
// message, a call that cannot travel to a worker process. The build compiles this file once per
// FUTURA_COMPILE_FAIL_CASE and expects the static_assert's message (see test/CMakeLists.txt and
// test/Jamfile); without a case it must compile, which shows that the failures come from the
// constraint and not from a mistake in this file.
#include <futura/process_pool_executor.hpp>

#include <span>
#include <string>

namespace {

// Each case uses some of these.
[[maybe_unused]] int add_one(int x) { return x + 1; }
[[maybe_unused]] int read_through(const int* p) { return *p; }
int counter = 0;
[[maybe_unused]] int* counter_address() { return &counter; }
[[maybe_unused]] std::span<int> counter_view() { return {&counter, 1}; }

} // namespace

void submit_to(futura::ProcessPoolExecutor& pool)
{
#if FUTURA_COMPILE_FAIL_CASE == 1
    // A capturing lambda: "the callable cannot be sent".
    const int offset = 2;
    (void)pool.submit([offset](int x) { return x + offset; }, 1);
#elif FUTURA_COMPILE_FAIL_CASE == 2
    // A pointer argument: "an argument cannot be sent".
    int value = 3;
    (void)pool.submit(read_through, &value);
#elif FUTURA_COMPILE_FAIL_CASE == 3
    // A pointer result: "the result cannot be sent back".
    (void)pool.submit(counter_address);
#elif FUTURA_COMPILE_FAIL_CASE == 4
    // A view result would point into memory the worker's answer no longer holds: "not a view".
    (void)pool.submit(counter_view);
#elif FUTURA_COMPILE_FAIL_CASE == 5
    // Each argument is checked on its own: the error names the position and type of the one
    // that cannot travel ("ArgumentTravels<1, const int*>"). (ProcessPoolExecutor::submit is
    // to check its arguments with this; the check is exercised directly until it does.)
    int value = 3;
    static_assert(futura::detail::arguments_travel<int (*)(int, const int*), int, const int*>);
    (void)value;
#else
    // The control: calls that can travel.
    (void)pool.submit(add_one, 1);
    (void)pool.submit([](int x) { return x + 2; }, 1);
    // A string literal travels as std::string to a std::string parameter.
    static_assert(futura::detail::arguments_travel<std::string (*)(std::string), const char(&)[5]>);
#endif
}
