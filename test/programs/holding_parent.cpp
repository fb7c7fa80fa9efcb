// Helper program of test/shared_memory.cpp: a parent that gets killed while it and a worker hold
// shared memory. It makes a 128 MiB SharedArray, hands it to a worker task that keeps it mapped
// (and touches every page), after a 64 MiB vector went there and back (so that both hold warm
// cached segments), prints "worker PID" and "ready", and sleeps until it is killed (or a
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
#include <vector>

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

std::vector<std::int64_t> doubled(std::vector<std::int64_t> values)
{
    for (auto& x : values) {
        x *= 2;
    }
    return values;
}

} // namespace

int main()
{
    futura::ProcessPoolExecutor pool{{.max_workers = 1}};
    // A 64 MiB vector there and back first: the pool and the worker then each hold a warm
    // segment in their caches (issue 13), which must go with them too.
    std::vector<std::int64_t> values(std::size_t{8} << 20, 1);
    values = pool.submit(doubled, std::move(values)).result();
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
