// Helper program of test/process_pool_executor.cpp: proves that a worker process never runs
// `main`. This `main` appends one line to the file named by its argument, then runs tasks in a
// pool that starts several workers (each worker retires after one task, so more are spawned).
// If a worker ran `main` too, the file would get more than one line.
//
//   main_once FILE    exit status 0 if every task gave the right result
#include <futura/process_pool_executor.hpp>

#include <cstdio>
#include <fstream>
#include <unistd.h>
#include <vector>

namespace {

int square(int x) { return x * x; }

} // namespace

int main(int argc, char** argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: main_once FILE\n");
        return 2;
    }
    {
        std::ofstream out(argv[1], std::ios::app);
        out << "main ran in process " << ::getpid() << '\n';
    }
    futura::ProcessPoolExecutor pool{{.max_workers = 2, .max_tasks_per_child = 1}};
    std::vector<futura::Future<int>> futures;
    for (int i = 0; i < 6; ++i) {
        futures.push_back(pool.submit(square, i));
    }
    int wrong = 0;
    for (int i = 0; i < 6; ++i) {
        if (futures[static_cast<std::size_t>(i)].result() != i * i) {
            ++wrong;
        }
    }
    if (wrong != 0) {
        std::fprintf(stderr, "main_once: %d wrong results\n", wrong);
        return 1;
    }
    return 0;
}
