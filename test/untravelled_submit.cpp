// Part of test_process_pool_executor: submits through Executor& from a translation unit that
// includes only the core (not the process transport), as a library written against Executor&
// might. Its tasks have no wire form; a process pool must fail them saying what to include.
#include <futura/executor.hpp>

namespace futura_test {

namespace {

int add_two(int x) { return x + 2; }

} // namespace

futura::Future<int> submit_without_transport(futura::Executor& executor, int x)
{
    return executor.submit(add_two, x);
}

} // namespace futura_test
