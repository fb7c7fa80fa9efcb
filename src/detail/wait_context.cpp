// Wait contexts: what a thread that is about to block in a futura wait does instead (a pool's
// worker helps, or lets the pool replace it), and the threads that must never block.
#include <futura/detail/blocking.hpp>
#include <futura/detail/parker.hpp>
#include <futura/detail/wait_context.hpp>
#include <futura/errors.hpp>

#include <memory>

namespace futura::detail {

namespace {
thread_local WaitContext* this_thread_context = nullptr;
} // namespace

WaitContext* current_wait_context() noexcept { return this_thread_context; }

void set_current_wait_context(WaitContext* context) noexcept { this_thread_context = context; }

namespace {
thread_local const char* blocking_forbidden = nullptr; // why, on a thread that must not block
} // namespace

void forbid_blocking(const char* why) noexcept { blocking_forbidden = why; }

void check_may_block(Deadline deadline)
{
    if (blocking_forbidden != nullptr && deadline > Clock::now()) {
        throw InvalidStateError(blocking_forbidden);
    }
}

const std::shared_ptr<Parker>& current_parker()
{
    if (this_thread_context != nullptr) {
        return this_thread_context->parker();
    }
    thread_local const std::shared_ptr<Parker> own = std::make_shared<Parker>();
    return own;
}

} // namespace futura::detail
