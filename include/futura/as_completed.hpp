// futura::as_completed: iterate futures in the order they finish.
#pragma once

#include <futura/detail/completion_queue.hpp>
#include <futura/detail/deadline.hpp>
#include <futura/future.hpp>
#include <futura/wait.hpp>

#include <chrono>
#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace futura {

namespace detail {

/// The type-independent part of an `AsCompleted` range.
class CompletionOrder
{
public:
    CompletionOrder(std::span<SharedStateBase* const> states, Deadline deadline);
    CompletionOrder(const CompletionOrder&) = delete;
    CompletionOrder& operator=(const CompletionOrder&) = delete;
    ~CompletionOrder();

    /// The index of the current (next finished) state, waiting for it if needed.
    /// @throws TimeoutError if the deadline passes first.
    std::size_t current();
    void advance();
    [[nodiscard]] bool at_end() const noexcept { return yielded_ == total_; }

private:
    std::shared_ptr<CompletionQueue> queue_;
    std::size_t total_;
    std::size_t yielded_ = 0;
    std::optional<std::size_t> current_;
    Deadline deadline_;
};

} // namespace detail

/// The range `futura::as_completed` returns: each distinct input future once, as it finishes.
///
/// @par Thread safety
/// Distinct objects: safe. Shared objects: unsafe.
template <class T>
class AsCompleted
{
    struct State
    {
        State(std::vector<Future<T>> distinct, detail::Deadline deadline)
            : futures(std::move(distinct)), states(detail::states_of(futures)),
              order(states, deadline)
        {}
        std::vector<Future<T>> futures;
        std::vector<detail::SharedStateBase*> states;
        detail::CompletionOrder order; // declared last: it unwatches before the futures go
    };

public:
    class iterator
    {
    public:
        using value_type = Future<T>;
        using difference_type = std::ptrdiff_t;

        iterator() = default;
        /// The next future to finish; waits for it. @throws TimeoutError past the timeout.
        const Future<T>& operator*() const { return state_->futures[state_->order.current()]; }
        const Future<T>* operator->() const { return &**this; }
        iterator& operator++()
        {
            state_->order.advance();
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept
        {
            return it.state_->order.at_end();
        }

    private:
        friend class AsCompleted;
        explicit iterator(State* state) noexcept : state_(state) {}
        State* state_ = nullptr;
    };

    AsCompleted(std::vector<Future<T>> distinct, detail::Deadline deadline)
        : state_(std::make_unique<State>(std::move(distinct), deadline))
    {}

    [[nodiscard]] iterator begin() { return iterator(state_.get()); }
    [[nodiscard]] std::default_sentinel_t end() const noexcept { return {}; }
    /// How many distinct futures the range yields in all.
    [[nodiscard]] std::size_t size() const noexcept { return state_->futures.size(); }

private:
    std::unique_ptr<State> state_;
};

/// Yields each distinct future of `futures` as it finishes (those already done first), like
/// Python's `concurrent.futures.as_completed`. Futures may come from different executors.
///
/// @par Example
/// @code
/// for (const auto& f : futura::as_completed(futures)) {
///     std::cout << f.result() << '\n';
/// }
/// @endcode
/// @throws InvalidStateError if a future has no state.
template <detail::range_of_futures Range>
[[nodiscard]] AsCompleted<detail::future_value_t<Range>> as_completed(Range&& futures)
{
    using T = detail::future_value_t<Range>;
    return AsCompleted<T>(detail::distinct_futures<T>(std::forward<Range>(futures)), detail::never);
}

/// As `as_completed(futures)`, but reading the next future throws `TimeoutError` once `timeout`
/// has passed since this call with futures still unfinished.
template <detail::range_of_futures Range, class Rep, class Period>
[[nodiscard]] AsCompleted<detail::future_value_t<Range>>
as_completed(Range&& futures, std::chrono::duration<Rep, Period> timeout)
{
    using T = detail::future_value_t<Range>;
    const auto deadline = detail::deadline_after(timeout); // counts from the call, as in Python
    return AsCompleted<T>(detail::distinct_futures<T>(std::forward<Range>(futures)), deadline);
}

/// `futura::as_completed({f1, f2, f3})`.
template <class T>
[[nodiscard]] AsCompleted<T> as_completed(std::initializer_list<Future<T>> futures)
{
    return futura::as_completed(std::span<const Future<T>>(futures.begin(), futures.size()));
}

/// `futura::as_completed({f1, f2, f3}, timeout)`.
template <class T, class Rep, class Period>
[[nodiscard]] AsCompleted<T> as_completed(std::initializer_list<Future<T>> futures,
                                          std::chrono::duration<Rep, Period> timeout)
{
    return futura::as_completed(std::span<const Future<T>>(futures.begin(), futures.size()),
                                timeout);
}

} // namespace futura
