// The options of Executor::map and the lazy range of results it returns.
#pragma once

#include <futura/detail/deadline.hpp>
#include <futura/future.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <utility>

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
/// the calls finish.
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

    /// Submits the next input and returns its future, or nothing when the inputs are exhausted.
    using Feeder = std::function<std::optional<Future<R>>()>;

    /// For executors: `futures` already submitted, `feed` for the rest (may be empty).
    MapResults(std::deque<Future<R>> futures, Feeder feed, std::optional<std::size_t> buffersize,
               detail::Deadline deadline)
        : state_(std::make_unique<State>(std::move(futures), std::move(feed), buffersize, deadline))
    {
    }

    [[nodiscard]] iterator begin() { return iterator(state_.get()); }
    [[nodiscard]] std::default_sentinel_t end() const noexcept { return {}; }

private:
    struct State
    {
        State(std::deque<Future<R>> f, Feeder feed_next, std::optional<std::size_t> ahead,
              detail::Deadline until)
            : futures(std::move(f)), feed(std::move(feed_next)), buffersize(ahead), deadline(until)
        {
            top_up();
        }
        State(const State&) = delete;
        State& operator=(const State&) = delete;
        ~State()
        {
            for (const auto& future : futures) {
                future.cancel();
            }
        }

        void top_up()
        {
            while (feed && (!buffersize || futures.size() < *buffersize)) {
                auto next = feed();
                if (!next) {
                    feed = nullptr;
                    break;
                }
                futures.push_back(std::move(*next));
            }
        }

        R& current()
        {
            if (!value) {
                if (futures.empty()) {
                    throw InvalidStateError("futura::MapResults: read past the last result");
                }
                Future<R> front = std::move(futures.front());
                futures.pop_front();
                top_up();
                // The deadline counts from the call to map, as Python's does.
                if (!detail::state_of(front)->wait(deadline)) {
                    futures.push_front(std::move(front));
                    throw TimeoutError("futura::map: the timeout elapsed before the next result "
                                       "was ready");
                }
                value.emplace(std::move(front).result());
            }
            return *value;
        }

        void advance()
        {
            if (value) {
                value.reset();
            } else if (!futures.empty()) {
                futures.pop_front(); // skipped unread: no need to wait for it
                top_up();
            }
        }

        [[nodiscard]] bool at_end() const noexcept { return !value && futures.empty() && !feed; }

        std::deque<Future<R>> futures;
        Feeder feed;
        std::optional<std::size_t> buffersize;
        detail::Deadline deadline;
        std::optional<R> value;
    };

    std::unique_ptr<State> state_;
};

} // namespace futura
