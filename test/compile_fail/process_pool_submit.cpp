// Compile-fail test: ProcessPoolExecutor::submit rejects at compile time, with a readable
// message, a call that cannot travel to a worker process. The build compiles this file once per
// FUTURA_COMPILE_FAIL_CASE and expects the static_assert's message (see test/CMakeLists.txt and
// test/Jamfile); without a case it must compile, which shows that the failures come from the
// constraint and not from a mistake in this file.
#include <futura/process_pool_executor.hpp>

#include <span>

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
#else
    // The control: calls that can travel.
    (void)pool.submit(add_one, 1);
    (void)pool.submit([](int x) { return x + 2; }, 1);
#endif
}
