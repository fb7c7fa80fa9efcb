// Helper program of test/process_pool_executor.cpp: a process pool at namespace scope, as a
// program may keep one for its whole life. It is constructed before main (and again in each
// spawned worker, where it starts no worker of its own); submitting from main must work.
//
//   global_pool       prints "6 8" and exits 0
#include <futura/process_pool_executor.hpp>

#include <cstdio>

namespace {

int twice(int x) { return 2 * x; }

futura::ProcessPoolExecutor pool{{.max_workers = 2}};

} // namespace

int main()
{
    auto a = pool.submit(twice, 3);
    auto b = pool.submit(twice, 4);
    std::printf("%d %d\n", a.result(), b.result());
    return 0;
}
