// Helper program of test/shared_containers.cpp: a parent that gets killed while it and a worker
// hold shared objects. It makes a SharedDict of 64 MiB (backed up front, so the machine's
// shared memory grows by that much), a SharedQueue, a SharedLock and a SharedEvent, hands them
// all to a worker task that blocks in the queue's get, prints "worker PID" and "ready", and
// sleeps until it is killed (or a minute passes). The test SIGKILLs it and checks that the
// worker goes, the memory is freed, and nothing was left in /dev/shm or the temp folder.
#include <futura/process_pool_executor.hpp>
#include <futura/shared_dict.hpp>
#include <futura/shared_event.hpp>
#include <futura/shared_lock.hpp>
#include <futura/shared_queue.hpp>
#include <futura/shared_value.hpp>

#include <chrono>
#include <cstdio>
#include <thread>
#include <unistd.h>

namespace {

using Dict = futura::SharedDict<int, long>;

// Runs in the worker: says who it is, then waits in get until the queue is closed (never).
void hold(Dict dict, futura::SharedQueue<int> queue, futura::SharedLock lock,
          futura::SharedEvent event, futura::SharedValue<int> worker)
{
    dict.insert_or_assign(1, 1);
    {
        const std::lock_guard held(lock);
    }
    event.set();
    worker.store(static_cast<int>(::getpid()));
    (void)queue.next();
}

} // namespace

int main()
{
    futura::ProcessPoolExecutor pool{{.max_workers = 1}};
    const Dict dict{{.capacity = std::size_t{64} << 20}};
    const futura::SharedQueue<int> queue;
    const futura::SharedLock lock;
    const futura::SharedEvent event;
    const futura::SharedValue<int> worker(0);
    auto held = pool.submit(hold, dict, queue, lock, event, worker);
    (void)event.wait(std::chrono::seconds(30));
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (worker.load() == 0 && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::printf("worker %d\nready\n", worker.load());
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::minutes(1)); // until the test kills us
    return 0;
}
