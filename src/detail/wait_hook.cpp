// The "progress while waiting" hook (see wait_hook.hpp).
#include <futura/detail/wait_hook.hpp>

#include <atomic>
#include <thread>

namespace futura::detail {

namespace {

std::atomic<WaitHook*> installed{nullptr};
// Threads inside a hook's poll (or about to be). remove_wait_hook clears `installed`, then waits
// for this to reach zero; a poller counts itself in before it loads `installed` again. Both
// sides are sequentially consistent: either the poller's increment comes first in the single
// total order (the remover waits for it), or the remover's store does (the poller sees null).
std::atomic<unsigned> polling{0};
// How many of those are this thread (a poll may complete a future whose done callback waits
// again, or lets the transport go): remove_wait_hook must not wait for its own thread.
thread_local unsigned polling_here = 0;

} // namespace

bool install_wait_hook(WaitHook& hook) noexcept
{
    WaitHook* none = nullptr;
    return installed.compare_exchange_strong(none, &hook);
}

void remove_wait_hook(WaitHook& hook) noexcept
{
    WaitHook* expected = &hook;
    if (!installed.compare_exchange_strong(expected, nullptr)) {
        return; // another's, or none
    }
    while (polling.load() != polling_here) {
        std::this_thread::yield(); // a poll is short: it never blocks
    }
}

void poll_wait_hook() noexcept
{
    // The common case (no transport that needs polling): one relaxed load.
    if (installed.load(std::memory_order_relaxed) == nullptr) {
        return;
    }
    polling.fetch_add(1);
    ++polling_here;
    if (WaitHook* hook = installed.load(); hook != nullptr) {
        hook->poll(*hook);
    }
    --polling_here;
    polling.fetch_sub(1);
}

} // namespace futura::detail
