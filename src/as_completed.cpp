// The compiled part of futura::as_completed: the iterator that yields futures as they finish.
#include <futura/as_completed.hpp>
#include <futura/errors.hpp>

#include <string>

namespace futura::detail {

CompletionOrder::CompletionOrder(std::span<SharedStateBase* const> states, Deadline deadline)
    : queue_(CompletionQueue::watch(states)), total_(states.size()), deadline_(deadline)
{}

CompletionOrder::~CompletionOrder() { queue_->unwatch(); }

std::size_t CompletionOrder::current()
{
    if (!current_) {
        if (at_end()) {
            throw InvalidStateError("futura::as_completed: read past the last future");
        }
        current_ = queue_->pop(deadline_);
        if (!current_) {
            throw TimeoutError("futura::as_completed: the timeout elapsed with " +
                               std::to_string(total_ - yielded_) + " (of " +
                               std::to_string(total_) + ") futures unfinished");
        }
    }
    return *current_;
}

void CompletionOrder::advance()
{
    current();
    current_.reset();
    ++yielded_;
}

} // namespace futura::detail
