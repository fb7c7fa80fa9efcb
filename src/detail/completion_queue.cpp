// The completion queue under futura::wait and as_completed: a done-callback per watched state
// pushes its index; the waiter pops indices as the states finish, or gives up at a deadline.
#include <futura/detail/completion_queue.hpp>
#include <futura/detail/wait_context.hpp>

#include <memory>
#include <mutex>
#include <optional>
#include <span>

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

} // namespace futura::detail
