// when_all, when_all_done, when_any and friends. Included at the end of <futura/compose.hpp>.
#pragma once

#include <futura/compose.hpp>
#include <futura/detail/shared_state.hpp>
#include <futura/detail/state_ref.hpp>
#include <futura/errors.hpp>
#include <futura/future.hpp>

#include <atomic>
#include <cstddef>
#include <exception>
#include <iterator>
#include <memory>
#include <ranges>
#include <stdexcept>
#include <tuple>
#include <utility>
#include <vector>

namespace futura::detail {

/// An executor that runs continuations inline, for steps that only pass a result on (`unwrap`).
Executor& inline_continuations() noexcept;

/// The state of a future that combines inputs: `when_all`, `when_all_done`, `when_any`.
///
/// One callback node per input, allocated with the state in one array. The inputs are held (one
/// reference each) until the state has ended and `watch` has registered every node; then
/// whichever of the two comes last removes the nodes still registered (and, if the result was
/// cancelled, cancels the inputs), and drops the inputs.
template <class R>
class Combined : public SharedState<R>
{
public:
    /// Adopts one reference to each input.
    explicit Combined(std::vector<SharedStateBase*> inputs)
        : inputs_(std::move(inputs)), nodes_(std::make_unique<Node[]>(inputs_.size())),
          awaited_(inputs_.size()), live_nodes_(inputs_.size())
    {}

    Combined(const Combined&) = delete;
    Combined& operator=(const Combined&) = delete;

    /// Registers a node on each input; once, right after construction, while the caller holds
    /// a reference (a node may end the state at once: an input is done already).
    void watch() noexcept
    {
        if (!inputs_.empty()) {
            this->add_ref(); // the nodes', dropped by the last node to fire or be removed
        }
        for (std::size_t i = 0; i < inputs_.size(); ++i) {
            nodes_[i].owner = this;
            nodes_[i].index = i;
            inputs_[i]->add_callback(&nodes_[i]);
        }
        end_watch();
    }

    [[nodiscard]] Origin continuation_origin() const noexcept override { return origin_; }

    ~Combined() override
    {
        for (auto* input : inputs_) {
            input->release();
        }
    }

protected:
    /// Input `index` is done: in the thread that completed it (or `watch`'s).
    virtual void arrived(std::size_t index, SharedStateBase& input) noexcept = 0;

    /// Counts an arrival. @return true for the one that completes the count of inputs.
    bool count_arrival() noexcept { return awaited_.fetch_sub(1, std::memory_order_acq_rel) == 1; }

    /// After a successful `try_claim`: continuations of this state go where `input`'s would.
    void inherit_origin(const SharedStateBase& input) noexcept
    {
        origin_ = input.continuation_origin();
    }

    /// Ends this state cancelled (unless it has ended), for the sake of a cancelled input: the
    /// other inputs are left alone.
    void cancel_for_input() noexcept
    {
        cancelled_by_input_.store(true, std::memory_order_relaxed);
        this->cancel();
    }

    /// The ending thread, after it published the result (cancel does this by itself).
    void ended() noexcept { end_watch(); }

    template <class T>
    SharedState<T>& input(std::size_t index) const noexcept
    {
        return static_cast<SharedState<T>&>(*inputs_[index]);
    }

    [[nodiscard]] std::size_t size() const noexcept { return inputs_.size(); }

    void on_cancel() noexcept override
    {
        // Cancelled by the user: pass it on to the inputs (not when an input cancelled us).
        cancel_inputs_ = !cancelled_by_input_.load(std::memory_order_relaxed);
        end_watch();
    }

private:
    struct Node final : DoneCallback
    {
        Combined* owner = nullptr;
        std::size_t index = 0;

        void on_done(SharedStateBase& /*input*/) noexcept override {}
        void fire(SharedStateBase& input) noexcept override
        {
            Combined* const state = owner; // the last node_done may free the state and us
            state->arrived(index, input);
            state->node_done();
        }
        void dispose() noexcept override { owner->node_done(); }
    };

    void node_done() noexcept
    {
        if (live_nodes_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            this->release();
        }
    }

    void end_watch() noexcept
    {
        // Two parties: watch() having registered every node, and the state having ended.
        if (cleanup_gate_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            clean_up();
        }
    }

    void clean_up() noexcept
    {
        auto inputs = std::move(inputs_);
        for (std::size_t i = 0; i < inputs.size(); ++i) {
            inputs[i]->remove_callback(&nodes_[i]); // false (and untouched) if it fired
            if (cancel_inputs_) {
                inputs[i]->cancel();
            }
            inputs[i]->release();
        }
    }

    std::vector<SharedStateBase*> inputs_;
    std::unique_ptr<Node[]> nodes_;
    std::atomic<std::size_t> awaited_;
    std::atomic<std::size_t> live_nodes_;
    std::atomic<int> cleanup_gate_{2};
    std::atomic<bool> cancelled_by_input_{false};
    bool cancel_inputs_ = false; // written before the gate's release, read after its acquire
    Origin origin_;              // written after the claim, read once done
};

/// `when_all(range)`: every value, or the first failure.
template <class T>
class AllValues final : public Combined<when_all_range_t<T>>
{
    using Base = Combined<when_all_range_t<T>>;

public:
    using Base::Base;

private:
    void arrived(std::size_t /*index*/, SharedStateBase& input) noexcept override
    {
        if (input.phase() == SharedStateBase::Phase::cancelled) {
            this->cancel_for_input();
        } else if (input.stored_exception()) {
            if (this->try_claim()) {
                this->inherit_origin(input);
                this->publish_exception(input.stored_exception());
                this->ended();
            }
        } else if (this->count_arrival() && this->try_claim()) {
            this->inherit_origin(input);
            if constexpr (std::is_void_v<T>) {
                this->publish();
            } else {
                try {
                    std::vector<T> values;
                    values.reserve(this->size());
                    for (std::size_t i = 0; i < this->size(); ++i) {
                        values.push_back(take_value(this->template input<T>(i)));
                    }
                    this->emplace_and_publish(std::move(values));
                } catch (...) {
                    this->publish_exception(std::current_exception());
                }
            }
            this->ended();
        }
    }
};

/// `when_all(Future<Ts>...)`: every value as a tuple, or the first failure.
template <class... Ts>
class AllTuple final : public Combined<std::tuple<when_all_element_t<Ts>...>>
{
    using Base = Combined<std::tuple<when_all_element_t<Ts>...>>;

public:
    using Base::Base;

private:
    void arrived(std::size_t /*index*/, SharedStateBase& input) noexcept override
    {
        if (input.phase() == SharedStateBase::Phase::cancelled) {
            this->cancel_for_input();
        } else if (input.stored_exception()) {
            if (this->try_claim()) {
                this->inherit_origin(input);
                this->publish_exception(input.stored_exception());
                this->ended();
            }
        } else if (this->count_arrival() && this->try_claim()) {
            this->inherit_origin(input);
            try {
                this->emplace_and_publish(values(std::index_sequence_for<Ts...>{}));
            } catch (...) {
                this->publish_exception(std::current_exception());
            }
            this->ended();
        }
    }

    template <std::size_t... I>
    std::tuple<when_all_element_t<Ts>...> values(std::index_sequence<I...> /*indices*/)
    {
        // Braced: the values are taken left to right.
        return std::tuple<when_all_element_t<Ts>...>{value<Ts>(I)...};
    }

    template <class T>
    when_all_element_t<T> value(std::size_t index)
    {
        if constexpr (std::is_void_v<T>) {
            (void)index;
            return {};
        } else {
            return take_value(this->template input<T>(index));
        }
    }
};

/// `when_all_done(range)`: the inputs, once all are done.
template <class T>
class AllDone final : public Combined<std::vector<Future<T>>>
{
    using Base = Combined<std::vector<Future<T>>>;

public:
    using Base::Base;

private:
    void arrived(std::size_t /*index*/, SharedStateBase& input) noexcept override
    {
        if (this->count_arrival() && this->try_claim()) {
            this->inherit_origin(input);
            try {
                std::vector<Future<T>> futures;
                futures.reserve(this->size());
                for (std::size_t i = 0; i < this->size(); ++i) {
                    auto& state = this->template input<T>(i);
                    state.add_ref();
                    futures.push_back(make_future(StateRef<T>(&state)));
                }
                this->emplace_and_publish(std::move(futures));
            } catch (...) {
                this->publish_exception(std::current_exception());
            }
            this->ended();
        }
    }
};

/// `when_any(range)`: the first input done.
template <class T>
class AnyDone final : public Combined<WhenAnyResult<T>>
{
    using Base = Combined<WhenAnyResult<T>>;

public:
    using Base::Base;

private:
    void arrived(std::size_t index, SharedStateBase& input) noexcept override
    {
        if (this->try_claim()) {
            this->inherit_origin(input);
            auto& state = static_cast<SharedState<T>&>(input);
            state.add_ref();
            this->emplace_and_publish(WhenAnyResult<T>{index, make_future(StateRef<T>(&state))});
            this->ended();
        }
    }
};

/// The states of `futures`, one reference each. @throws InvalidStateError for a future without.
template <class T, class Range>
std::vector<SharedStateBase*> referenced_states(Range&& futures, const char* function)
{
    std::vector<SharedStateBase*> states;
    if constexpr (std::ranges::sized_range<Range>) {
        states.reserve(static_cast<std::size_t>(std::ranges::size(futures)));
    }
    try {
        for (auto&& future : futures) {
            SharedState<T>* state = state_of(future);
            if (state == nullptr) {
                throw InvalidStateError(std::string("futura::") + function +
                                        ": an input future has no result to refer to "
                                        "(default-constructed or moved from)");
            }
            state->add_ref();
            states.push_back(state);
            if constexpr (!std::is_lvalue_reference_v<Range> &&
                          !std::ranges::view<std::remove_cvref_t<Range>>) {
                future = Future<T>(); // a container given as an rvalue: its values may move
            }
        }
    } catch (...) {
        for (auto* state : states) {
            state->release();
        }
        throw;
    }
    return states;
}

/// Builds a combined state over `states`, watches them, and returns its future.
template <class State, class R>
Future<R> start_combined(std::vector<SharedStateBase*> states)
{
    State* state = nullptr;
    try {
        state = new State(std::move(states));
    } catch (...) {
        for (auto* input : states) { // not moved from if the allocation failed
            input->release();
        }
        throw;
    }
    auto future = make_future(StateRef<R>(state));
    state->watch();
    return future;
}

} // namespace futura::detail

namespace futura {

template <class T>
Future<std::decay_t<T>> make_ready_future(T&& value)
{
    Promise<std::decay_t<T>> promise;
    promise.set_result(std::forward<T>(value));
    return promise.get_future();
}

template <class T>
Future<T> make_exceptional_future(std::exception_ptr error)
{
    if (!error) {
        throw std::invalid_argument("futura::make_exceptional_future: the exception_ptr is null");
    }
    Promise<T> promise;
    promise.set_exception(std::move(error));
    return promise.get_future();
}

template <class T, class E>
    requires(!std::same_as<std::decay_t<E>, std::exception_ptr>)
Future<T> make_exceptional_future(E&& error)
{
    return make_exceptional_future<T>(std::make_exception_ptr(std::forward<E>(error)));
}

template <class T>
Future<T> unwrap(Future<Future<T>> outer)
{
    return outer.then([](Future<T> inner) { return inner; },
                      {.executor = &detail::inline_continuations()});
}

template <class... Ts>
Future<std::tuple<detail::when_all_element_t<Ts>...>> when_all(Future<Ts>... futures)
{
    using R = std::tuple<detail::when_all_element_t<Ts>...>;
    std::vector<detail::SharedStateBase*> states;
    states.reserve(sizeof...(Ts));
    const bool valid = (futures.valid() && ...);
    if (!valid) {
        throw InvalidStateError("futura::when_all: an input future has no result to refer to "
                                "(default-constructed or moved from)");
    }
    (states.push_back(detail::state_of(futures)), ...);
    for (auto* state : states) {
        state->add_ref();
    }
    if constexpr (sizeof...(Ts) == 0) {
        return make_ready_future(R{});
    } else {
        return detail::start_combined<detail::AllTuple<Ts...>, R>(std::move(states));
    }
}

template <detail::range_of_futures Range>
Future<detail::when_all_range_t<detail::future_value_t<Range>>> when_all(Range&& futures)
{
    using T = detail::future_value_t<Range>;
    using R = detail::when_all_range_t<T>;
    auto states = detail::referenced_states<T>(std::forward<Range>(futures), "when_all");
    if (states.empty()) {
        if constexpr (std::is_void_v<T>) {
            return make_ready_future();
        } else {
            return make_ready_future(R{});
        }
    }
    return detail::start_combined<detail::AllValues<T>, R>(std::move(states));
}

template <class T>
Future<detail::when_all_range_t<T>> when_all(std::initializer_list<Future<T>> futures)
{
    return futura::when_all(std::span<const Future<T>>(futures.begin(), futures.size()));
}

template <detail::range_of_futures Range>
Future<std::vector<Future<detail::future_value_t<Range>>>> when_all_done(Range&& futures)
{
    using T = detail::future_value_t<Range>;
    using R = std::vector<Future<T>>;
    auto states = detail::referenced_states<T>(std::forward<Range>(futures), "when_all_done");
    if (states.empty()) {
        return make_ready_future(R{});
    }
    return detail::start_combined<detail::AllDone<T>, R>(std::move(states));
}

template <class T>
Future<std::vector<Future<T>>> when_all_done(std::initializer_list<Future<T>> futures)
{
    return futura::when_all_done(std::span<const Future<T>>(futures.begin(), futures.size()));
}

template <detail::range_of_futures Range>
Future<WhenAnyResult<detail::future_value_t<Range>>> when_any(Range&& futures)
{
    using T = detail::future_value_t<Range>;
    auto states = detail::referenced_states<T>(std::forward<Range>(futures), "when_any");
    if (states.empty()) {
        throw std::invalid_argument("futura::when_any: no input future; the result would never "
                                    "finish");
    }
    return detail::start_combined<detail::AnyDone<T>, WhenAnyResult<T>>(std::move(states));
}

template <class T>
Future<WhenAnyResult<T>> when_any(std::initializer_list<Future<T>> futures)
{
    return futura::when_any(std::span<const Future<T>>(futures.begin(), futures.size()));
}

template <class T>
auto resume_on(Future<T> future, Executor& executor)
{
    if (!future.valid()) {
        throw InvalidStateError("futura::resume_on: the future has no result to refer to");
    }
    return detail::FutureAwaiter<T>(std::move(future), &executor, true);
}

} // namespace futura
