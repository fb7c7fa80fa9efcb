// The options of Executor::map and the lazy range of results it returns.
#pragma once

#include <futura/detail/deadline.hpp>
#include <futura/detail/element_result.hpp>
#include <futura/detail/map_cursor.hpp>
#include <futura/errors.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <iterator>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace futura {

/// Options of `Executor::map` and `Executor::starmap`.
struct MapOptions
{
    /// Inputs sent to a worker per message; matters for processes, where a message costs a
    /// round trip. `0` lets the executor choose. Thread pools ignore it, as Python's do.
    std::size_t chunksize = 0;
    /// Overall limit, counted from the call to `map`: reaching a result later than this throws
    /// `TimeoutError`. None: wait as long as it takes.
    std::optional<std::chrono::duration<double>> timeout = std::nullopt;
    /// At most this many inputs are submitted ahead of the one being read (Python 3.14's
    /// `buffersize`), so an endless or huge input range is consumed lazily. None: all inputs are
    /// submitted by the call. Must not be 0.
    std::optional<std::size_t> buffersize = std::nullopt;
};

/// The results of `Executor::map`, in input order: an input range whose elements are read as
/// the calls finish. `to_vector()` collects them (Python's `list(pool.map(...))`). For a
/// function that returns void, `R` is `std::monostate`: one per call, read once it is done.
///
/// Reading an element waits for its call; if the call threw, reading it rethrows that exception;
/// past the `timeout` of `MapOptions`, reading throws `TimeoutError`. Destroying the range
/// cancels the calls that have not started, like closing Python's `map` generator.
///
/// @par Thread safety
/// Distinct objects: safe. Shared objects: unsafe.
template <class R>
class MapResults
{
    struct State;

public:
    class iterator
    {
    public:
        using value_type = R;
        using difference_type = std::ptrdiff_t;

        iterator() = default;

        /// The current result: waits for it, or rethrows its call's exception.
        R& operator*() const { return state_->current(); }
        R* operator->() const { return &state_->current(); }
        iterator& operator++()
        {
            state_->advance();
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept
        {
            return it.state_->at_end();
        }

    private:
        friend class MapResults;
        explicit iterator(State* state) noexcept : state_(state) {}
        State* state_ = nullptr;
    };

    /// For executors: `feed` submits the inputs; at most `buffersize` of its calls run ahead.
    MapResults(std::unique_ptr<detail::MapFeed> feed, std::optional<std::size_t> buffersize,
               detail::Deadline deadline)
        : state_(std::make_unique<State>(std::move(feed), buffersize, deadline))
    {}

    [[nodiscard]] iterator begin() { return iterator(state_.get()); }
    [[nodiscard]] std::default_sentinel_t end() const noexcept { return {}; }

    /// Reads the remaining results into a vector, in input order: Python's
    /// `list(pool.map(f, xs))` in one expression (GCC 12 has no `std::ranges::to`).
    ///
    /// @par Example
    /// @code
    /// std::vector<int> squares = pool.map(square, std::views::iota(0, 100)).to_vector();
    /// @endcode
    /// @throws the exception of the first call that failed (the results before it are lost, as
    /// with Python's `list`); `TimeoutError` past `MapOptions::timeout`.
    [[nodiscard]] std::vector<R> to_vector()
    {
        std::vector<R> results;
        for (auto it = begin(); it != end(); ++it) {
            results.push_back(std::move(*it));
        }
        return results;
    }

private:
    struct State
    {
        State(std::unique_ptr<detail::MapFeed> feed, std::optional<std::size_t> buffersize,
              detail::Deadline deadline)
            : cursor(std::move(feed), buffersize, deadline)
        {}

        R& current()
        {
            if (error) {
                std::rethrow_exception(error); // reading a failed element again fails again
            }
            if (value) {
                return *value;
            }
            if (chunk_next < chunk.size()) {
                return take_from_chunk();
            }
            detail::MapSlot slot = cursor.take_next(); // a timeout leaves the element in place
            try {
                // This range is its calls' only reader: it moves their results out.
                if (!slot.chunk()) {
                    auto* state = static_cast<detail::SharedState<R>*>(slot.state());
                    state->rethrow_if_failed();
                    value.emplace(std::move(state->value()));
                    return *value;
                }
                auto* state =
                    static_cast<detail::SharedState<std::vector<detail::ElementResult<R>>>*>(
                        slot.state());
                chunk_next = 0;
                if (state->phase() == detail::SharedStateBase::Phase::finished &&
                    !state->stored_exception()) {
                    chunk = std::move(state->value());
                } else {
                    // The chunk failed as a whole (its worker died, say): so does each of its
                    // elements.
                    std::exception_ptr whole;
                    try {
                        state->rethrow_if_failed();
                    } catch (...) {
                        whole = std::current_exception();
                    }
                    chunk.clear();
                    chunk.resize(slot.inputs()); // no assign(): R may be move-only
                    for (auto& element : chunk) {
                        element.error = whole;
                    }
                }
                if (chunk.empty()) {
                    throw InvalidStateError("futura::map: a chunk of results came back empty");
                }
                return take_from_chunk();
            } catch (...) {
                // The failed element is the current one until the iterator moves past it.
                error = std::current_exception();
                throw;
            }
        }

        R& take_from_chunk()
        {
            auto& element = chunk[chunk_next++];
            if (element.error) {
                error = element.error;
                std::rethrow_exception(error);
            }
            value.emplace(std::move(*element.value));
            return *value;
        }

        void advance()
        {
            if (value || error) {
                value.reset();
                error = nullptr;
            } else if (chunk_next < chunk.size()) {
                ++chunk_next;
            } else if (!cursor.exhausted() && !cursor.skip_single()) {
                try {
                    current(); // an element of a chunk can only be skipped once it is in
                } catch (...) {
                }
                value.reset();
                error = nullptr;
            }
        }

        [[nodiscard]] bool at_end() const noexcept
        {
            return !value && !error && chunk_next >= chunk.size() && cursor.exhausted();
        }

        detail::MapCursor cursor;
        std::optional<R> value;
        std::exception_ptr error;                    // the current element's exception, once read
        std::vector<detail::ElementResult<R>> chunk; // the chunk being read
        std::size_t chunk_next = 0;
    };

    std::unique_ptr<State> state_;
};

} // namespace futura
