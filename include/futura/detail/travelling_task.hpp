// Tasks that can travel to a worker process: the core's tasks plus their wire form, and the
// task kind that makes `submit`, `map` and `then` build them in every translation unit that
// includes the process transport (see detail/task_kind.hpp).
#pragma once

#include <futura/detail/descriptor_budget.hpp>
#include <futura/detail/remote_call.hpp>
#include <futura/detail/remote_task.hpp>
#include <futura/detail/segment_cache.hpp>
#include <futura/detail/task.hpp>
#include <futura/detail/wire.hpp>
#include <futura/executor.hpp>
#include <futura/future.hpp>

#include <atomic>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace futura::detail {

/// Completes `state` (a task's, running) from a worker's answer: the encoded value of an `R`.
template <class R>
void complete_from_answer(SharedState<R>& state, WireReader& result) noexcept
{
    if (!state.try_claim()) {
        // Cancelled while its worker ran it (ProcessPoolExecutor::kill): drop the answer.
    } else if constexpr (transferable_value<R>) {
        if constexpr (std::is_void_v<R>) {
            state.publish();
        } else {
            try {
                state.emplace_and_publish(Codec<R>::decode(result));
            } catch (...) {
                state.publish_exception(std::current_exception());
            }
        }
    } else {
        (void)result;
        state.publish_exception(std::make_exception_ptr(
            InvalidStateError("futura: a result that cannot travel came from a worker")));
    }
}

/// A `Task` with its wire form: what `submit` builds where the process transport is included.
///
/// Its call's frame refers to the storage of its large vector arguments rather than holding a
/// copy (a gather write, with automatic sharing off): the task vouches for that storage as the
/// frame's PayloadKeeper. The callable and arguments are then destroyed once the task is done
/// *and* every frame that refers to them is written (or dropped), whichever comes last: a call
/// taken back from a busy worker and answered by another, or killed, may still be on its way to
/// the first worker. Each frame's owner holds a reference to the task and one of `call_holds_`.
template <class R, class F, class... Args>
class TravellingTask final : public Task<R, F, Args...>, public RemoteTask, private PayloadKeeper
{
public:
    using Task<R, F, Args...>::Task;

    [[nodiscard]] RemoteTask* remote() noexcept override { return this; }

    bool start() noexcept override { return this->try_start(); }

    bool encode_call(WireWriter& out) const override
    {
        if constexpr (transferable_call<R, F, Args...>) {
            // The arguments are the task's own: a large vector among them is given up as it goes
            // into its segment, which is kept to send again (the lvalue rule, ArgumentSegments).
            sent_arguments_.next = 0;
            out.argument_segments(&sent_arguments_);
            out.payload_keeper(this);
            try {
                std::apply(
                    [&](const F& f, const Args&... args) {
                        RemoteCall<R, F, Args...>::encode(out, f, args...);
                    },
                    this->call());
            } catch (...) {
                out.payload_keeper(nullptr);
                out.argument_segments(nullptr);
                throw;
            }
            out.payload_keeper(nullptr);
            out.argument_segments(nullptr);
            return true;
        } else {
            (void)out;
            return false;
        }
    }

    [[nodiscard]] std::string not_transferable_message() const override
    {
        return detail::not_transferable_message(typeid(F), {&typeid(Args)...}, typeid(R));
    }

    void complete_from(WireReader& result) noexcept override
    {
        let_go_of_call();
        sent_arguments_.segments.clear();
        complete_from_answer<R>(*this, result);
        this->release_producer_ref();
    }

    std::span<char> receive_result_into(WireReader& held, std::uint64_t unread) noexcept override
    {
        if constexpr (receivable_in_place<R>) {
            try {
                auto into = start_receiving_in_place(held, unread, arriving_.emplace());
                if (into.empty()) {
                    arriving_.reset();
                }
                return into;
            } catch (...) {
                arriving_.reset(); // out of memory, or bytes that do not add up: decoded whole
                return {};
            }
        } else {
            return RemoteTask::receive_result_into(held, unread);
        }
    }

    void complete_from_received() noexcept override
    {
        if constexpr (receivable_in_place<R>) {
            let_go_of_call();
            sent_arguments_.segments.clear();
            if (arriving_ && this->try_claim()) { // else cancelled while it ran: dropped
                try {
                    this->emplace_and_publish(std::move(*arriving_));
                } catch (...) {
                    this->publish_exception(std::current_exception());
                }
            }
            arriving_.reset();
            this->release_producer_ref();
        }
    }

    void discard(std::exception_ptr reason) noexcept override
    {
        if constexpr (receivable_in_place<R>) {
            arriving_.reset(); // its worker died while the result arrived
        }
        sent_arguments_.segments.clear();
        // As Task::discard, but the call may still be referred to by a frame being written.
        this->settle_discarded(std::move(reason));
        let_go_of_call();
        this->release_producer_ref();
    }

private:
    /// An owner of the call's storage for a frame that refers to it (PayloadKeeper): a
    /// reference to the task and a hold on its call, both dropped when the frame is written.
    [[nodiscard]] std::shared_ptr<const void> keep() const override
    {
        auto* self = const_cast<TravellingTask*>(this); // NOLINT: a reference count, not data
        self->add_ref();
        call_holds_.fetch_add(1, std::memory_order_relaxed);
        // Should the control block not be allocated, the deleter runs here: nothing is held.
        return std::shared_ptr<const void>(this, [](const void* task) {
            auto* held = const_cast<TravellingTask*>(static_cast<const TravellingTask*>(task));
            held->let_go_of_call();
            held->release();
        });
    }

    /// Drops one hold on the call (the task's own when it is done, or a frame's once written);
    /// the last destroys it.
    void let_go_of_call() noexcept
    {
        if (call_holds_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            this->destroy_call();
        }
    }

    /// Nothing: for results that are not received in place.
    struct NothingArriving
    {};

    // Touched only by whoever holds the task to send or complete it (the pool's I/O thread).
    mutable ArgumentSegments sent_arguments_;
    // A large result being read straight into its storage (receive_result_into).
    [[no_unique_address]] std::conditional_t<receivable_in_place<R>, std::optional<R>,
                                             NothingArriving>
        arriving_;
    // The task's own hold (until it is done) and one per frame owner alive.
    mutable std::atomic<std::size_t> call_holds_{1};
};

/// A `then` continuation with its wire form: the call travels as `f(value)` (or `f()`), the
/// antecedent's value as its argument.
template <class U, class T, class F>
class TravellingContinuation final : public ContinuationTask<U, T, F>, public RemoteTask
{
    using Base = ContinuationTask<U, T, F>;

public:
    using Base::Base;

    [[nodiscard]] RemoteTask* remote() noexcept override { return this; }

    bool start() noexcept override { return this->try_start(); }

    bool encode_call(WireWriter& out) const override
    {
        if constexpr (!Base::flattens && Base::input == ContinuationInput::value) {
            if constexpr (transferable_call<U, F, T>) {
                RemoteCall<U, F, T>::encode(out, this->callable(), this->antecedent().value());
                return true;
            }
        } else if constexpr (!Base::flattens && Base::input == ContinuationInput::nothing) {
            if constexpr (transferable_call<U, F>) {
                RemoteCall<U, F>::encode(out, this->callable());
                return true;
            }
        }
        (void)out;
        return false;
    }

    [[nodiscard]] std::string not_transferable_message() const override
    {
        if constexpr (Base::input == ContinuationInput::value) {
            return detail::not_transferable_message(typeid(F), {&typeid(T)}, typeid(U));
        } else if constexpr (Base::input == ContinuationInput::nothing) {
            return detail::not_transferable_message(typeid(F), {}, typeid(U));
        } else {
            return "futura::Future::then: a continuation that takes the whole future cannot run "
                   "in another process (a future cannot travel); take the value instead";
        }
    }

    void complete_from(WireReader& result) noexcept override
    {
        this->drop_call();
        if constexpr (!Base::flattens) {
            complete_from_answer<U>(*this, result);
        } else if (this->try_claim()) {
            (void)result;
            this->publish_exception(std::make_exception_ptr(
                InvalidStateError("futura: a result that cannot travel came from a worker")));
        }
        this->release();
    }
};

/// Tasks that can travel: what `submit`, `map` and `then` build wherever this header is
/// included, and what `ProcessPoolExecutor` always builds. A map chunk is cut where one more
/// input would make its message carry more descriptors than one message can.
struct TravellingTasks
{
    template <class R, class F, class... Args>
    using task = TravellingTask<R, F, Args...>;
    template <class U, class T, class F>
    using continuation = TravellingContinuation<U, T, F>;
    using chunk_budget = DescriptorBudget;
};

/// Found by `tasks_for` (argument-dependent lookup) once this header is included; the `int`
/// makes it a better match than the core's `LocalTasks` overload.
template <class Probe>
TravellingTasks task_kind(Probe /*probe*/, int);

/// One argument of a call to a worker process, checked at compile time: when it cannot travel,
/// the compiler's first lines name this class with the argument's position (counted from 0)
/// and its type, before any instantiation notes.
template <std::size_t Position, class Argument>
struct ArgumentTravels
{
    static_assert(transferable_value<Argument>,
                  "futura::ProcessPoolExecutor::submit: an argument cannot be sent to a worker "
                  "process: the one whose position (from 0) and type 'ArgumentTravels<position, "
                  "type>' names just above. Arguments must be futura::transferable (trivially "
                  "copyable data without pointers, std::string, standard containers of such "
                  "values, or classes with a Boost.Serialization serialize()); for text, declare "
                  "the parameter std::string or std::string_view, not const char*");
    static constexpr bool value = transferable_value<Argument>;
};

template <class... Args, std::size_t... Position>
constexpr bool each_argument_travels(std::index_sequence<Position...> /*positions*/)
{
    return (ArgumentTravels<Position, Args>::value && ...);
}

/// Whether every argument of `submit(f, args...)`, as it is stored (`submitted_t`), can travel
/// to a worker process; each one that cannot fails a static_assert of its own that names its
/// position and type. For ProcessPoolExecutor::submit.
template <class F, class... Args>
inline constexpr bool arguments_travel =
    each_argument_travels<submitted_t<F, Args, Args...>...>(std::index_sequence_for<Args...>{});

} // namespace futura::detail
