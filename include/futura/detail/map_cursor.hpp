// The part of `Executor::map`'s result range that does not depend on the result type: the queue
// of submitted calls, how far it runs ahead of the reader, and the deadline. It is compiled once
// in src/detail/map_cursor.cpp, so that each `map` instantiates only what reads its results.
#pragma once

#include <futura/detail/deadline.hpp>
#include <futura/detail/shared_state.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <utility>

namespace futura::detail {

/// One submitted call of a `map`: a counted reference to its state, and whether it is a chunk
/// (a call on several inputs, whose value is a vector of per-input results) or a single input.
class MapSlot
{
public:
    /// Adds a reference to `state`, which must not be null.
    MapSlot(SharedStateBase* state, std::size_t inputs, bool chunk) noexcept
        : state_(state), inputs_(inputs), chunk_(chunk)
    {
        state_->add_ref();
    }
    MapSlot(MapSlot&& other) noexcept
        : state_(std::exchange(other.state_, nullptr)), inputs_(other.inputs_), chunk_(other.chunk_)
    {}
    MapSlot& operator=(MapSlot&& other) noexcept
    {
        std::swap(state_, other.state_);
        inputs_ = other.inputs_;
        chunk_ = other.chunk_;
        return *this;
    }
    MapSlot(const MapSlot&) = delete;
    MapSlot& operator=(const MapSlot&) = delete;
    ~MapSlot()
    {
        if (state_ != nullptr) {
            state_->release();
        }
    }

    /// The call's state: a `SharedState<R>` for a single input, a
    /// `SharedState<std::vector<ElementResult<R>>>` for a chunk.
    [[nodiscard]] SharedStateBase* state() const noexcept { return state_; }
    [[nodiscard]] std::size_t inputs() const noexcept { return inputs_; }
    [[nodiscard]] bool chunk() const noexcept { return chunk_; }

private:
    SharedStateBase* state_;
    std::size_t inputs_;
    bool chunk_;
};

/// Submits a `map`'s inputs, one call at a time: what `Executor::map` builds for its range.
class MapFeed
{
public:
    MapFeed() = default;
    MapFeed(const MapFeed&) = delete;
    MapFeed& operator=(const MapFeed&) = delete;
    virtual ~MapFeed() = default;

    /// Submits the next input (or chunk of inputs), or gives nothing once they are exhausted.
    virtual std::optional<MapSlot> next() = 0;
};

/// The submitted calls of a `map`, in input order, kept at most `buffersize` ahead of the reader.
class MapCursor
{
public:
    /// Submits the first inputs (all of them without a `buffersize`).
    MapCursor(std::unique_ptr<MapFeed> feed, std::optional<std::size_t> buffersize,
              Deadline deadline);
    MapCursor(const MapCursor&) = delete;
    MapCursor& operator=(const MapCursor&) = delete;
    /// Cancels the calls that have not started, like closing Python's `map` generator.
    ~MapCursor();

    /// Waits for the oldest call and takes it out, submitting the next input in its place.
    /// @throws InvalidStateError if there is none (read past the end); TimeoutError if the
    /// deadline passes first (the call stays in place: reading again waits again).
    MapSlot take_next();

    /// Drops the oldest call unread if it is a single input (no need to wait for it).
    /// @return false if it is a chunk (or there is none), which the reader must take instead.
    bool skip_single();

    /// No call is left and no input is left to submit.
    [[nodiscard]] bool exhausted() const noexcept;

private:
    struct Slots; // a std::deque<MapSlot>, kept out of this header: every user of map reads it

    void top_up();

    std::unique_ptr<Slots> slots_;
    std::unique_ptr<MapFeed> feed_; // null once the inputs are exhausted
    std::optional<std::size_t> buffersize_;
    Deadline deadline_;
};

} // namespace futura::detail
