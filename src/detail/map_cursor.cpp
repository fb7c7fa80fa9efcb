// The type-independent part of Executor::map's result range (detail/map_cursor.hpp): the queue
// of submitted calls, the lookahead and the deadline.
#include <futura/detail/map_cursor.hpp>
#include <futura/errors.hpp>

#include <deque>
#include <utility>

namespace futura::detail {

struct MapCursor::Slots : std::deque<MapSlot>
{};

MapCursor::MapCursor(std::unique_ptr<MapFeed> feed, std::optional<std::size_t> buffersize,
                     Deadline deadline)
    : slots_(std::make_unique<Slots>()), feed_(std::move(feed)), buffersize_(buffersize),
      deadline_(deadline)
{
    top_up();
}

MapCursor::~MapCursor()
{
    for (const auto& slot : *slots_) {
        slot.state()->cancel();
    }
}

void MapCursor::top_up()
{
    while (feed_ && (!buffersize_ || slots_->size() < *buffersize_)) {
        auto next = feed_->next();
        if (!next) {
            feed_.reset();
            break;
        }
        slots_->push_back(std::move(*next));
    }
}

MapSlot MapCursor::take_next()
{
    if (slots_->empty()) {
        throw InvalidStateError("futura::MapResults: read past the last result");
    }
    // The deadline counts from the call to map, as Python's does.
    if (!slots_->front().state()->wait(deadline_)) {
        throw TimeoutError("futura::map: the timeout elapsed before the next result was ready");
    }
    MapSlot front = std::move(slots_->front());
    slots_->pop_front();
    top_up();
    return front;
}

bool MapCursor::exhausted() const noexcept { return slots_->empty() && !feed_; }

bool MapCursor::skip_single()
{
    if (slots_->empty() || slots_->front().chunk()) {
        return false;
    }
    slots_->pop_front();
    top_up();
    return true;
}

} // namespace futura::detail
