// Helper program of test/process_pool_executor.cpp: a parent that gets killed while its workers
// are alive. It starts a pool, runs tasks so that workers exist, prints each worker's pid
// ("worker PID" lines, then "ready"), and sleeps until it is killed (or a minute passes). The test
// SIGKILLs it and checks that its workers die too.
#include <futura/process_pool_executor.hpp>

#include <chrono>
#include <cstdio>
#include <set>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

int pid_after(int milliseconds)
{
    std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
    return static_cast<int>(::getpid());
}

} // namespace

int main()
{
    futura::ProcessPoolExecutor pool{{.max_workers = 2}};
    std::vector<futura::Future<int>> futures;
    for (int i = 0; i < 4; ++i) {
        futures.push_back(pool.submit(pid_after, 50));
    }
    std::set<int> workers;
    for (const auto& future : futures) {
        workers.insert(future.result());
    }
    for (const int pid : workers) {
        std::printf("worker %d\n", pid);
    }
    std::printf("ready\n");
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::minutes(1)); // until the test kills us
    return 0;
}
