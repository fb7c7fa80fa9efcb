#include <futura/detail/completion_queue.hpp>
#include <futura/detail/wait_context.hpp>
#include <futura/wait.hpp>

#include <algorithm>

namespace futura::detail {

/// The callback each watched state runs when it finishes.
class CompletionQueue::Notify final : public DoneCallback
{
public:
    Notify(std::shared_ptr<CompletionQueue> queue, std::size_t index)
        : queue_(std::move(queue)), index_(index)
    {}
    void on_done(SharedStateBase& /*state*/) noexcept override { queue_->push(index_); }

private:
    std::shared_ptr<CompletionQueue> queue_; // shared: it may fire after the waiter gave up
    std::size_t index_;
};

CompletionQueue::CompletionQueue(std::span<SharedStateBase* const> states)
    : states_(states.begin(), states.end()), callbacks_(states.size(), nullptr)
{}

std::shared_ptr<CompletionQueue> CompletionQueue::watch(std::span<SharedStateBase* const> states)
{
    auto queue = std::make_shared<CompletionQueue>(states);
    for (std::size_t i = 0; i < states.size(); ++i) {
        auto* notify = new Notify(queue, i);
        queue->callbacks_[i] = notify;
        states[i]->add_callback(notify); // runs at once (and frees notify) if already done
    }
    return queue;
}

void CompletionQueue::push(std::size_t index) noexcept
{
    std::shared_ptr<Parker> waiter;
    {
        const std::lock_guard lock(mutex_);
        finished_.push_back(index);
        waiter = waiter_;
    }
    if (waiter) {
        waiter->unpark();
    }
}

std::optional<std::size_t> CompletionQueue::pop(Deadline deadline)
{
    {
        const std::lock_guard lock(mutex_);
        if (finished_.empty()) {
            waiter_ = current_parker();
        }
    }
    block_until(
        [this] {
            const std::lock_guard lock(mutex_);
            return !finished_.empty();
        },
        deadline);
    const std::lock_guard lock(mutex_);
    waiter_.reset();
    if (finished_.empty()) {
        return std::nullopt;
    }
    const auto index = finished_.front();
    finished_.pop_front();
    return index;
}

void CompletionQueue::unwatch() noexcept
{
    for (std::size_t i = 0; i < states_.size(); ++i) {
        // remove_callback looks at the callback only while its state is pending, i.e. while the
        // callback is certainly alive.
        if (callbacks_[i] != nullptr) {
            states_[i]->remove_callback(callbacks_[i]);
            callbacks_[i] = nullptr;
        }
    }
}

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
