// Helper program of test/shared_memory.cpp: a parent that gets killed while it and a worker hold
// shared memory. It makes a 128 MiB SharedArray, hands it to a worker task that keeps it mapped
// (and touches every page), prints "worker PID" and "ready", and sleeps until it is killed (or a
// minute passes). The test SIGKILLs it and checks that the memory is freed and that nothing was
// left in /dev/shm or the temp folder.
#include <futura/process_pool_executor.hpp>
#include <futura/shared_array.hpp>
#include <futura/shared_value.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <unistd.h>

namespace {

// Runs in the worker: fills the array, says so through `ready`, then holds it for a minute.
void hold(futura::SharedArray<std::int64_t> array, futura::SharedValue<int> worker)
{
    for (auto& x : array) {
        x = 1;
    }
    worker.store(static_cast<int>(::getpid()));
    std::this_thread::sleep_for(std::chrono::minutes(1));
}

} // namespace

int main()
{
    futura::ProcessPoolExecutor pool{{.max_workers = 1}};
    const futura::SharedArray<std::int64_t> array(std::size_t{16} << 20); // 128 MiB
    const futura::SharedValue<int> worker(0);
    auto held = pool.submit(hold, array, worker);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (worker.load() == 0 && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::printf("worker %d\nready\n", worker.load());
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::minutes(1)); // until the test kills us
    return 0;
}
