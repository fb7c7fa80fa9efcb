// Composing futures: when_all, when_all_done, when_any, unwrap, ready and failed futures, and
// resume_on for co_await. (`Future<T>::then` and `co_await future` are in <futura/future.hpp>.)
#pragma once

#include <futura/errors.hpp>
#include <futura/future.hpp>
#include <futura/wait.hpp>

#include <cstddef>
#include <exception>
#include <initializer_list>
#include <span>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

namespace futura {

/// What `when_any` yields: the first input to finish, and where it was in the input.
template <class T>
struct WhenAnyResult
{
    /// The input's position (0-based) in the range given to `when_any`.
    std::size_t index = 0;
    /// That input: done (finished with a value or an exception, or cancelled).
    Future<T> future;
};

namespace detail {

/// The element type `when_all(Future<Ts>...)` gives a `Future<void>`: a tuple cannot hold `void`.
template <class T>
using when_all_element_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// What `when_all(range)` gives: `std::vector<T>`, or nothing for futures of `void`.
template <class T>
using when_all_range_t = std::conditional_t<std::is_void_v<T>, void, std::vector<T>>;

} // namespace detail

/// A future already finished with `value` (as `std::decay_t` of its type).
///
/// Its continuations run on the shared continuation pool unless `ThenOptions::executor` says
/// otherwise (no executor ran it); a `co_await` of it does not suspend.
/// @par Thread safety
/// Safe.
template <class T>
[[nodiscard]] Future<std::decay_t<T>> make_ready_future(T&& value);

/// A `Future<void>` already finished.
[[nodiscard]] Future<void> make_ready_future();

/// A future already failed with `error`; `result()` rethrows it.
/// @throws std::invalid_argument if `error` is null.
template <class T>
[[nodiscard]] Future<T> make_exceptional_future(std::exception_ptr error);

/// A future already failed with the exception object `error`:
/// `futura::make_exceptional_future<int>(std::runtime_error("no"))`.
template <class T, class E>
    requires(!std::same_as<std::decay_t<E>, std::exception_ptr>)
[[nodiscard]] Future<T> make_exceptional_future(E&& error);

/// The future of the future `outer` yields: finishes as the inner one does.
///
/// Fails if `outer` fails; cancelled if either is cancelled. Cancelling the result while `outer`
/// is pending cancels `outer`; once the inner future is known, cancel that one instead.
/// @par Thread safety
/// Safe.
template <class T>
[[nodiscard]] Future<T> unwrap(Future<Future<T>> outer);

/// A future of all the inputs' values, as a tuple, once all have finished (Boost.Thread's and
/// folly's `when_all`, Python's `asyncio.gather`).
///
/// Fails as soon as one input fails, with its exception, without waiting for the others; it is
/// cancelled as soon as one input is cancelled. The other inputs are left running, and their
/// outcomes are not lost: they stay in the input futures (keep copies and read each one's
/// `exception()`), or use `when_all_done` to get every input back, done, without failing.
/// A `Future<void>` input yields `std::monostate`. Inputs may come from any executors, mixed.
///
/// Cancelling the result cancels the inputs that have not started (as `asyncio.gather` does).
///
/// @par Example
/// @code
/// auto both = futura::when_all(pool.submit(load, "a"), processes.submit(count, 7));
/// auto [text, n] = both.result(); // std::tuple<std::string, int>
/// @endcode
///
/// @par Thread safety
/// Safe. The inputs may complete (and be cancelled) concurrently, in any threads.
/// @throws InvalidStateError if an input has no state.
template <class... Ts>
[[nodiscard]] Future<std::tuple<detail::when_all_element_t<Ts>...>> when_all(Future<Ts>... futures);

/// A future of all the inputs' values, in input order (`Future<void>` for futures of `void`).
///
/// As the variadic `when_all`: the first exception fails it, a cancelled input cancels it, and
/// the other inputs are not lost. Values are moved from inputs the caller no longer holds
/// (pass the range as an rvalue), copied otherwise. No input: a finished future of an empty
/// vector.
/// @throws InvalidStateError if an input has no state.
template <detail::range_of_futures Range>
[[nodiscard]] Future<detail::when_all_range_t<detail::future_value_t<Range>>>
when_all(Range&& futures);

/// `futura::when_all({f1, f2, f3})`.
template <class T>
[[nodiscard]] Future<detail::when_all_range_t<T>>
when_all(std::initializer_list<Future<T>> futures);

/// A future of the inputs themselves, in input order, once every one is done, however it ended;
/// it never fails (Python's `asyncio.gather(..., return_exceptions=True)`, folly's
/// `collectAll`). Read each input's `result()` or `exception()` from the vector.
/// @throws InvalidStateError if an input has no state.
template <detail::range_of_futures Range>
[[nodiscard]] Future<std::vector<Future<detail::future_value_t<Range>>>>
when_all_done(Range&& futures);

/// `futura::when_all_done({f1, f2, f3})`.
template <class T>
[[nodiscard]] Future<std::vector<Future<T>>>
when_all_done(std::initializer_list<Future<T>> futures);

/// A future of the first input to be done (with a value, an exception, or cancelled), and its
/// position (Boost.Thread's `when_any`, Python's `asyncio.wait(..., FIRST_COMPLETED)`). Its
/// result never fails for the input's sake: read `result().future`. If inputs are done already,
/// the first of them in input order wins.
///
/// Cancelling the result before any input is done cancels the inputs that have not started.
/// @par Example
/// @code
/// auto first = futura::when_any(mirrors).result();
/// std::cout << "mirror " << first.index << ": " << first.future.result() << '\n';
/// @endcode
/// @throws std::invalid_argument if there is no input (it would never finish);
/// InvalidStateError if an input has no state.
template <detail::range_of_futures Range>
[[nodiscard]] Future<WhenAnyResult<detail::future_value_t<Range>>> when_any(Range&& futures);

/// `futura::when_any({f1, f2, f3})`.
template <class T>
[[nodiscard]] Future<WhenAnyResult<T>> when_any(std::initializer_list<Future<T>> futures);

/// `co_await futura::resume_on(future, executor)`: as `co_await future`, but the coroutine
/// resumes on `executor`, always (also when the future is done already), e.g. to move from a
/// process pool's answer back to a thread pool, or to continue inline (`InlineExecutor`) in the
/// thread that completes the future. `executor` must outlive the wait.
template <class T>
[[nodiscard]] auto resume_on(Future<T> future, Executor& executor);

} // namespace futura

#include <futura/impl/compose.hpp>
