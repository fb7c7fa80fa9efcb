// futura::wait: block until some or all of a set of futures are done.
#pragma once

#include <futura/detail/deadline.hpp>
#include <futura/future.hpp>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <initializer_list>
#include <optional>
#include <ranges>
#include <span>
#include <type_traits>
#include <vector>

namespace futura {

/// When `futura::wait` returns (Python's `FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED`).
enum class ReturnWhen
{
    first_completed, ///< as soon as any future is done (or cancelled)
    first_exception, ///< as soon as any future finishes with an exception; else all_completed
    all_completed,   ///< once every future is done
};

/// Options of `futura::wait`.
struct WaitOptions
{
    /// How long to wait at most; none means no limit. Reaching it is not an error: `wait` then
    /// returns what is done so far.
    std::optional<std::chrono::duration<double>> timeout = std::nullopt;
    ReturnWhen return_when = ReturnWhen::all_completed;
};

/// What `futura::wait` returns: the distinct input futures, split by whether they are done, each
/// part in input order. Use with structured bindings: `auto [done, not_done] = futura::wait(fs);`
template <class T>
struct WaitResult
{
    std::vector<Future<T>> done;
    std::vector<Future<T>> not_done;
};

namespace detail {

template <class Range>
using future_value_t = typename std::ranges::range_value_t<Range>::value_type;

template <class Range>
concept range_of_futures = std::ranges::input_range<Range> &&
    std::same_as<std::ranges::range_value_t<Range>, Future<future_value_t<Range>>>;

/// Blocks until `states` meet `when` or the deadline passes.
void wait_states(std::span<SharedStateBase* const> states, ReturnWhen when, Deadline deadline);

/// The futures of `futures` without repeats, in first-seen order.
template <class T, class Range>
std::vector<Future<T>> distinct_futures(Range&& futures)
{
    std::vector<Future<T>> distinct;
    for (auto&& future : futures) {
        if (!future.valid()) {
            throw InvalidStateError("futura: cannot wait for a future with no result to refer to "
                                    "(default-constructed or moved from)");
        }
        if (std::find(distinct.begin(), distinct.end(), future) == distinct.end()) {
            distinct.push_back(future);
        }
    }
    return distinct;
}

template <class T>
std::vector<SharedStateBase*> states_of(const std::vector<Future<T>>& futures)
{
    std::vector<SharedStateBase*> states;
    states.reserve(futures.size());
    for (const auto& future : futures) {
        states.push_back(state_of(future));
    }
    return states;
}

} // namespace detail

/// Waits for futures (of one executor or several) like Python's `concurrent.futures.wait`.
///
/// @par Example
/// @code
/// auto [done, not_done] = futura::wait(futures, {.timeout = 2s,
///                                                .return_when =
///                                                futura::ReturnWhen::first_completed});
/// @endcode
/// @return the distinct futures split into done and not done.
/// @throws InvalidStateError if a future has no state.
template <detail::range_of_futures Range>
[[nodiscard]] WaitResult<detail::future_value_t<Range>> wait(Range&& futures,
                                                             WaitOptions options = {})
{
    using T = detail::future_value_t<Range>;
    auto distinct = detail::distinct_futures<T>(std::forward<Range>(futures));
    const auto deadline =
        options.timeout ? detail::deadline_after(*options.timeout) : detail::never;
    detail::wait_states(detail::states_of(distinct), options.return_when, deadline);
    WaitResult<T> result;
    for (auto& future : distinct) {
        (future.done() ? result.done : result.not_done).push_back(std::move(future));
    }
    return result;
}

/// `futura::wait({f1, f2, f3}, options)`.
template <class T>
[[nodiscard]] WaitResult<T> wait(std::initializer_list<Future<T>> futures, WaitOptions options = {})
{
    return futura::wait(std::span<const Future<T>>(futures.begin(), futures.size()), options);
}

} // namespace futura
