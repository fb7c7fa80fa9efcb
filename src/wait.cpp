// The compiled part of futura::wait: waiting for some or all of a set of futures.
#include <futura/detail/completion_queue.hpp>
#include <futura/detail/wait_context.hpp>
#include <futura/wait.hpp>

#include <algorithm>

namespace futura::detail {

namespace {

bool failed(const SharedStateBase& state) noexcept
{
    return state.phase() == SharedStateBase::Phase::finished && state.stored_exception();
}

} // namespace

void wait_states(std::span<SharedStateBase* const> states, ReturnWhen when, Deadline deadline)
{
    if (when == ReturnWhen::all_completed) {
        // No callbacks needed: wait for each in turn, all against the same deadline.
        for (auto* state : states) {
            if (!state->wait(deadline)) {
                return;
            }
        }
        return;
    }
    const auto any_done = std::any_of(states.begin(), states.end(),
                                      [](const SharedStateBase* s) { return s->done(); });
    const auto all_done = std::all_of(states.begin(), states.end(),
                                      [](const SharedStateBase* s) { return s->done(); });
    const auto any_failed = std::any_of(states.begin(), states.end(),
                                        [](const SharedStateBase* s) { return failed(*s); });
    if (states.empty() || all_done || (when == ReturnWhen::first_completed && any_done) ||
        (when == ReturnWhen::first_exception && any_failed)) {
        return;
    }
    auto queue = CompletionQueue::watch(states);
    std::size_t finished = 0;
    while (finished < states.size()) {
        const auto index = queue->pop(deadline);
        if (!index) {
            break; // timed out
        }
        ++finished;
        if (when == ReturnWhen::first_completed || failed(*states[*index])) {
            break;
        }
    }
    queue->unwatch();
}

} // namespace futura::detail
