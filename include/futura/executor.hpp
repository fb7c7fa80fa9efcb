// futura::Executor: the interface every executor offers.
#pragma once

#include <futura/detail/call_key.hpp>
#include <futura/detail/deadline.hpp>
#include <futura/detail/element_result.hpp>
#include <futura/detail/task.hpp>
#include <futura/detail/task_kind.hpp>
#include <futura/future.hpp>
#include <futura/map.hpp>

#include <concepts>
#include <cstddef>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

namespace futura {

class Executor;

/// Options of `Executor::shutdown`.
struct ShutdownOptions
{
    /// Block until all submitted work has run (or been cancelled) and the workers have exited.
    bool wait = true;
    /// Cancel the futures of work that has not started yet.
    bool cancel_futures = false;
};

/// A snapshot of an executor's counters. Once all work is done,
/// `submitted == completed + failed + cancelled`; meanwhile, `queued` and `running` hold the rest
/// (a snapshot taken while work runs may be off by the tasks that change state as it is taken).
struct ExecutorStats
{
    std::size_t submitted = 0;     ///< calls accepted by submit/map/starmap
    std::size_t queued = 0;        ///< waiting for a worker (including cancelled, not yet dropped)
    std::size_t running = 0;       ///< being run by a worker now
    std::size_t completed = 0;     ///< finished with a value
    std::size_t failed = 0;        ///< finished with an exception (or lost with their worker)
    std::size_t cancelled = 0;     ///< cancelled before they ran
    std::size_t workers_alive = 0; ///< worker threads or processes running now
    std::size_t workers_replaced = 0; ///< workers started to replace ones that died or retired
};

/// The number of CPUs this process may run on: its affinity mask, capped by its cgroup's CPU
/// quota (rounded up), and never less than 1. The default `max_workers` of every pool.
[[nodiscard]] std::size_t available_cpus() noexcept;

namespace detail {

/// The value type of the future `submit(f, args...)` returns.
template <class F, class... Args>
using submit_result_t = std::remove_cvref_t<call_result_t<F, Args...>>;

/// What `map` takes: a callable it can copy into each chunk, callable with each input.
template <class F, class Range>
concept mappable = (std::copy_constructible<std::decay_t<F>> &&
                    std::invocable<std::decay_t<F>, std::ranges::range_value_t<Range>>);

/// Calls `f` with the elements of a tuple: the task `starmap` submits per input.
template <class F>
struct ApplyTuple
{
    using wrapped_callable = F; // travels to a worker process as `f` does
    F f;
    template <class Tuple>
    decltype(auto) operator()(Tuple&& args)
    {
        return std::apply(f, std::forward<Tuple>(args));
    }
};

/// Calls `f` on each input of a chunk: the task `map` submits per chunk.
template <class F>
struct MapChunk
{
    using wrapped_callable = F;
    F f;
    template <class Item>
    auto operator()(std::vector<Item> items)
    {
        using R = std::remove_cvref_t<std::invoke_result_t<F&, Item>>;
        std::vector<ElementResult<R>> results(items.size());
        for (std::size_t i = 0; i < items.size(); ++i) {
            try {
                results[i].value.emplace(f(std::move(items[i])));
            } catch (...) {
                results[i].fail();
            }
        }
        return results;
    }
};

/// Calls `f` and gives `std::monostate` for its nothing: what `map` submits for a function
/// that returns void, so that its range has elements (one per call, in order) to wait on.
template <class F>
struct ReturnMonostate
{
    using wrapped_callable = F;
    F f;
    template <class... Items>
    std::monostate operator()(Items&&... items)
    {
        std::invoke(f, std::forward<Items>(items)...);
        return {};
    }
};

/// What `map` submits for `f`: `f` itself, or `f` wrapped to return `std::monostate` if it
/// returns void.
template <class F, class Item>
using map_callable_t =
    std::conditional_t<std::is_void_v<std::invoke_result_t<std::decay_t<F>&, Item>>,
                       ReturnMonostate<std::decay_t<F>>, std::decay_t<F>>;

template <class T>
inline constexpr bool is_char_pointer = false;
template <>
inline constexpr bool is_char_pointer<const char*> = true;
template <>
inline constexpr bool is_char_pointer<char*> = true;

/// A C string (a string literal decays to one).
template <class A>
concept c_string = is_char_pointer<std::decay_t<A>>;

/// Whether `submit(f, args...)` stores its C string arguments as `std::string`: when `f` can
/// take them so (a `std::string` or `std::string_view` parameter). The text is copied at
/// submission, so it can travel to a worker process, and a buffer the caller reuses cannot
/// change it; a `const char*` parameter keeps its pointer (which a worker process refuses).
template <class F, class... Args>
inline constexpr bool strings_as_std_string =
    (c_string<Args> || ...) &&
    std::is_invocable_v<std::decay_t<F>,
                        std::conditional_t<c_string<Args>, std::string, std::decay_t<Args>>...>;

/// The type an argument of `submit(f, args...)` is stored as.
template <class F, class A, class... Args>
using submitted_t = std::conditional_t<c_string<A> && strings_as_std_string<F, Args...>,
                                       std::string, std::decay_t<A>>;

/// Passes an argument on, as a `std::string` if `submitted_t` says so.
template <class Stored, class A>
decltype(auto) submitted(A&& arg)
{
    if constexpr (std::is_same_v<Stored, std::string> && c_string<A>) {
        return std::string(arg);
    } else {
        return std::forward<A>(arg);
    }
}

/// Checks the `max_workers` option: none means `available_cpus()`.
std::size_t checked_max_workers(const std::optional<int>& max_workers, const char* executor);

/// Hands a task to an executor's private `schedule`: how continuations reach their executor.
void schedule_on(Executor& executor, TaskPtr task);

} // namespace detail

/// The interface shared by `ThreadPoolExecutor`, `ProcessPoolExecutor` and `InlineExecutor`,
/// like Python's `concurrent.futures.Executor`: code written against `Executor&` works with each.
///
/// `submit`, `map` and `starmap` are templates that type-erase the call into one allocation
/// holding the call and its future's state, then hand it to the concrete executor.
///
/// @par Thread safety
/// Distinct objects: safe. Shared objects: safe; any thread may submit, map, query or shut down.
class Executor
{
public:
    Executor(const Executor&) = delete;
    Executor& operator=(const Executor&) = delete;
    Executor(Executor&&) = delete;
    Executor& operator=(Executor&&) = delete;

    /// Concrete executors call `shutdown()` in their destructors (`wait = true`).
    virtual ~Executor();

    /// Schedules `f(args...)` and returns the future of its result.
    ///
    /// `f` and `args` are decay-copied (or moved) into the task, as `std::thread` does; use
    /// `std::ref` to pass by reference.
    /// @throws ShutdownError after `shutdown()`; `BrokenExecutor` (a subclass) if broken.
    /// A C string (a string literal) is stored as a `std::string` when `f` takes one (Python's
    /// `pool.submit(f, "text")`): so it can travel to a worker process.
    ///
    /// Where the process transport (`<futura/process_pool_executor.hpp>`) is included before the
    /// call, the task can also travel to a worker process; elsewhere it cannot, and a process
    /// pool reached through `Executor&` fails its future with `std::invalid_argument` saying so
    /// (see "Layers" in doc/design.md). `Tasks` is that choice; leave it to its default.
    template <class F, class... Args, class Tasks = detail::tasks_for<F>>
        requires(std::invocable<std::decay_t<F>, std::decay_t<Args>...>)
    [[nodiscard]] Future<detail::submit_result_t<F, detail::submitted_t<F, Args, Args...>...>>
    submit(F&& f, Args&&... args)
    {
        return submit_as<Tasks>(std::forward<F>(f), std::forward<Args>(args)...);
    }

    /// Calls `f(x)` for each `x` of `inputs` on the executor and returns the results in input
    /// order, like Python's `Executor.map`.
    ///
    /// All inputs are submitted by the call unless `options.buffersize` limits how many run
    /// ahead. An element's exception is thrown when that element is read.
    ///
    /// A function that returns void gives `std::monostate` for each call (Python's
    /// `pool.map(print, xs)` gives `None`s): reading the range, or `to_vector()`, waits for the
    /// calls in order and throws the first exception.
    ///
    /// Chunks (`options.chunksize`, or automatic) are cut short where one more input would make
    /// the message carry more than 253 different shared arrays, values or files, so a map that
    /// works with chunksize 1 works with any.
    /// @throws std::invalid_argument if `options.buffersize` is 0.
    /// @throws ShutdownError after `shutdown()`.
    template <class F, std::ranges::input_range Range, class Tasks = detail::tasks_for<F>>
        requires(detail::mappable<F, Range>)
    [[nodiscard]] auto map(F&& f, Range&& inputs, MapOptions options = {})
    {
        return map_as<Tasks>(std::forward<F>(f), std::forward<Range>(inputs), options);
    }

    /// Like `map`, unpacking each input tuple into the arguments of `f` (Python's
    /// `itertools.starmap` over an executor).
    template <class F, std::ranges::input_range Range, class Tasks = detail::tasks_for<F>>
        requires(std::copy_constructible<std::decay_t<F>>)
    [[nodiscard]] auto starmap(F&& f, Range&& inputs, MapOptions options = {})
    {
        return map_as<Tasks>(detail::ApplyTuple<std::decay_t<F>>{std::forward<F>(f)},
                             std::forward<Range>(inputs), options);
    }

protected:
    /// `submit` building tasks of kind `Tasks` (detail/task_kind.hpp), for executors that know
    /// which kind they need whatever the translation unit includes.
    template <class Tasks, class F, class... Args>
    Future<detail::submit_result_t<F, detail::submitted_t<F, Args, Args...>...>>
    submit_as(F&& f, Args&&... args)
    {
        return submit_elements<Tasks>(
            1, std::forward<F>(f),
            detail::submitted<detail::submitted_t<F, Args, Args...>>(std::forward<Args>(args))...);
    }

    /// `map` building tasks of kind `Tasks`.
    template <class Tasks, class F, class Range>
    auto map_as(F&& f, Range&& inputs, MapOptions options) -> MapResults<
        detail::submit_result_t<detail::map_callable_t<F, std::ranges::range_value_t<Range>>,
                                std::ranges::range_value_t<Range>>>
    {
        using Callable = detail::map_callable_t<F, std::ranges::range_value_t<Range>>;
        if constexpr (!std::is_same_v<Callable, std::decay_t<F>>) {
            return map_values<Tasks>(Callable{std::forward<F>(f)}, std::forward<Range>(inputs),
                                     options);
        } else {
            return map_values<Tasks>(std::forward<F>(f), std::forward<Range>(inputs), options);
        }
    }

private:
    /// `map` of a function that returns a value.
    template <class Tasks, class F, class Range>
    [[nodiscard]] auto map_values(F&& f, Range&& inputs, MapOptions options)
        -> MapResults<detail::submit_result_t<F, std::ranges::range_value_t<Range>>>
    {
        using R = detail::submit_result_t<F, std::ranges::range_value_t<Range>>;
        using Item = std::remove_cvref_t<std::ranges::range_value_t<Range>>;
        if (options.buffersize && *options.buffersize == 0) {
            throw std::invalid_argument("futura::Executor::map: buffersize must be at least 1");
        }
        const auto deadline =
            options.timeout ? detail::deadline_after(*options.timeout) : detail::never;
        // Built on the heap and never moved: the iterator may point into the view.
        struct Feed final : detail::MapFeed
        {
            Feed(Executor& to, F&& fn, Range&& range)
                : executor(to), f(std::forward<F>(fn)),
                  view(std::views::all(std::forward<Range>(range))),
                  next_input(std::ranges::begin(view))
            {}

            std::optional<detail::MapSlot> next() override
            {
                // In a discarded branch, not a member of its own: a local class's members are
                // all instantiated, and tasks that never leave the process have no chunks.
                if constexpr (Tasks::chunk_budget::chunks_map) {
                    if (chunksize > 1) {
                        std::vector<Item> chunk;
                        typename Tasks::chunk_budget budget(executor.do_share_threshold());
                        while (chunk.size() < chunksize) {
                            std::optional<Item> item = std::exchange(held, std::nullopt);
                            if (!item) {
                                if (next_input == std::ranges::end(view)) {
                                    break;
                                }
                                item.emplace(take());
                                ++next_input;
                            }
                            // One message carries at most 253 descriptors: cut the chunk
                            // before an input whose shared memory would not fit.
                            if (!budget.admit(*item, chunk.empty())) {
                                held = std::move(item);
                                break;
                            }
                            chunk.push_back(std::move(*item));
                        }
                        if (chunk.empty()) {
                            return std::nullopt;
                        }
                        const auto size = chunk.size();
                        auto future = executor.submit_elements<Tasks>(
                            size, detail::MapChunk<std::decay_t<F>>{f}, std::move(chunk));
                        return detail::MapSlot(detail::state_of(future), size, true);
                    }
                }
                if (next_input == std::ranges::end(view)) {
                    return std::nullopt;
                }
                auto future = executor.submit_as<Tasks>(f, take());
                ++next_input;
                return detail::MapSlot(detail::state_of(future), 1, false);
            }

            // Elements of a range we own (passed as an rvalue) may be moved into their tasks.
            decltype(auto) take()
            {
                if constexpr (std::is_lvalue_reference_v<Range>) {
                    return *next_input;
                } else {
                    return std::ranges::iter_move(next_input);
                }
            }

            Executor& executor;
            std::decay_t<F> f;
            std::views::all_t<Range> view;
            std::ranges::iterator_t<std::views::all_t<Range>> next_input;
            std::size_t chunksize = 1;
            std::optional<Item> held; // taken, but left for the next chunk (descriptor budget)
        };
        auto feed = std::make_unique<Feed>(*this, std::forward<F>(f), std::forward<Range>(inputs));
        if constexpr (Tasks::chunk_budget::chunks_map) {
            std::optional<std::size_t> total;
            if constexpr (std::ranges::sized_range<Range>) {
                total = static_cast<std::size_t>(std::ranges::size(feed->view));
            }
            // buffersize counts tasks; with an unknown number of inputs, automatic chunks would
            // read an unbounded number ahead, so they are single inputs then.
            // A chunk's results travel in one answer: no more of them than it can carry.
            const std::size_t wanted = options.chunksize != 0 ? options.chunksize
                                       : (options.buffersize && !total)
                                           ? 1
                                           : do_auto_chunksize(total, detail::call_key_of(feed->f));
            constexpr std::size_t most = Tasks::chunk_budget::template max_results<R>;
            feed->chunksize = wanted < most ? wanted : most;
        }
        return MapResults<R>(std::move(feed), options.buffersize, deadline);
    }

public:
    /// Asio: `submit(f, args...)`, then `async_wait(token)` on its future, the token last:
    /// `int r = co_await pool.async_submit(work, x, asio::use_awaitable);`.
    /// Part of futura's Asio layer: include `<futura/asio.hpp>` to use it (without it, the
    /// compiler says so).
    template <class... ArgsAndToken, class Tasks = detail::tasks_for<ArgsAndToken...>>
    auto async_submit(ArgsAndToken&&... args_and_token)
    {
        constexpr std::size_t count = sizeof...(ArgsAndToken);
        static_assert(count >= 2, "futura::Executor::async_submit(f, args..., token)");
        auto all = std::forward_as_tuple(std::forward<ArgsAndToken>(args_and_token)...);
        auto future = [&]<std::size_t... I>(std::index_sequence<I...>)
        {
            return submit_as<Tasks>(std::get<I>(std::move(all))...);
        }
        (std::make_index_sequence<count - 1>{});
        return future.async_wait(std::get<count - 1>(std::move(all)));
    }

    /// Stops accepting work; optionally cancels pending work and waits for running work.
    /// Idempotent, and safe to call from any thread, including from a task of this executor
    /// (then it does not wait for that task itself).
    void shutdown(ShutdownOptions options = {});

    /// The number of workers this executor runs at most.
    [[nodiscard]] std::size_t max_workers() const noexcept;

    /// A snapshot of the executor's counters.
    [[nodiscard]] ExecutorStats stats() const;

protected:
    Executor() = default;

private:
    friend void detail::schedule_on(Executor& executor, detail::TaskPtr task);

    /// `submit` of a call that handles `elements` inputs (a map chunk), for duration estimates.
    template <class Tasks, class F, class... Args>
    Future<detail::submit_result_t<F, Args...>> submit_elements(std::size_t elements, F&& f,
                                                                Args&&... args)
    {
        using R = detail::submit_result_t<F, Args...>;
        const detail::CallKey key = detail::call_key_of<std::decay_t<F>>(f);
        auto* task = new typename Tasks::template task<R, std::decay_t<F>, std::decay_t<Args>...>(
            std::forward<F>(f), std::forward<Args>(args)...);
        task->call_key = key;
        task->call_elements = elements;
        auto future = detail::make_future(detail::StateRef<R>(task)); // adopts the first ref
        schedule(detail::TaskPtr(task));                              // hands over the second
        return future;
    }

    /// Takes the executor's reference to a task. @throws ShutdownError or BrokenExecutor, in
    /// which case the task is discarded (its future cancelled) by the `TaskPtr`.
    virtual void schedule(detail::TaskPtr task) = 0;
    virtual void do_shutdown(const ShutdownOptions& options) = 0;
    [[nodiscard]] virtual std::size_t do_max_workers() const noexcept = 0;
    [[nodiscard]] virtual ExecutorStats do_stats() const = 0;
    /// ProcessPoolOptions::share_threshold (contiguous data of this many bytes or more travels
    /// in a segment of its own), for `map` to count a chunk's descriptors. The default's by
    /// default; executors that send no messages never reach it with a chunk that has any.
    [[nodiscard]] virtual std::size_t do_share_threshold() const noexcept;
    /// The chunk size `map` uses when `MapOptions::chunksize` is 0, for `total` inputs (if
    /// known) of the callable `key`. One per message unless a message costs more than a call,
    /// as in a process pool.
    [[nodiscard]] virtual std::size_t do_auto_chunksize(std::optional<std::size_t> total,
                                                        detail::CallKey key) const;
};

} // namespace futura
