// Calls that run in another process of the same program: what identifies them on the wire, and
// the worker-side code that decodes, runs and answers them.
#pragma once

#include <futura/detail/call_key.hpp>
#include <futura/detail/element_result.hpp>
#include <futura/detail/protocol.hpp>
#include <futura/detail/wire.hpp>
#include <futura/transferable.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace futura::detail {

/// Worker side of one call type: decodes the callable and its arguments from `call`, runs it and
/// encodes the result into `result`. An exception from the call propagates to the caller.
using RemoteInvoker = void (*)(WireReader& call, WireWriter& result);

/// Registers `invoker` under its call type's mangled name and returns the id that names it on the
/// wire. Runs during static initialisation, so every process of the program registers the same
/// invokers under the same ids, and a worker only ever runs code it registered itself.
std::uint64_t register_remote_invoker(const char* mangled_name, RemoteInvoker invoker) noexcept;

/// The invoker registered under `id`. @throws ProtocolError if none (or two) were.
RemoteInvoker find_remote_invoker(std::uint64_t id);

/// Encodes a function's address as (module, offset): ASLR loads the same program at different
/// addresses in each process.
void encode_function_address(WireWriter& out, const void* function);

/// Decodes and validates an address from `encode_function_address`: the module must be loaded
/// here and the offset must fall in one of its executable segments.
/// @throws ProtocolError otherwise.
const void* decode_function_address(WireReader& in);

template <class T>
inline constexpr bool is_reference_wrapper = false;
template <class T>
inline constexpr bool is_reference_wrapper<std::reference_wrapper<T>> = true;

/// A callable without state: a captureless lambda or an empty function object. Its type alone
/// names the code, so nothing but the type id travels.
template <class F>
concept stateless_callable = std::is_class_v<F> && std::is_empty_v<F> &&
    std::is_default_constructible_v<F> && std::is_trivially_copyable_v<F>;

/// A callable that can be sent to a worker process.
template <class F>
concept transferable_callable = (function_pointer<F> || stateless_callable<F> ||
                                 (std::is_class_v<F> && transferable<F>));

/// A value argument or result that can be sent (not a reference in disguise).
template <class T>
concept transferable_value = transferable<T> && !is_reference_wrapper<std::remove_cvref_t<T>>;

/// Whether `f(args...)` returning `R` can run in a worker process.
template <class R, class F, class... Args>
concept transferable_call = (transferable_callable<F> && (transferable_value<Args> && ...) &&
                             transferable_value<R> && transferable_result<R>);

template <class F>
void encode_callable(WireWriter& out, const F& f)
{
    if constexpr (function_pointer<F>) {
        encode_function_address(out, reinterpret_cast<const void*>(f)); // NOLINT
    } else if constexpr (!stateless_callable<F>) {
        Codec<F>::encode(out, f);
    }
}

template <class F>
F decode_callable(WireReader& in)
{
    if constexpr (function_pointer<F>) {
        // NOLINTNEXTLINE: the address was validated; const only described the bytes' origin
        return reinterpret_cast<F>(const_cast<void*>(decode_function_address(in)));
    } else if constexpr (stateless_callable<F>) {
        return F{};
    } else {
        return Codec<F>::decode(in);
    }
}

/// A wrapper around a callable (map's chunks, starmap's tuples) travels as its callable does.
template <class W>
    requires((callable_wrapper<W>)&&transferable_callable<typename W::wrapped_callable> &&
             !stateless_callable<W>)
struct Codec<W>
{
    static constexpr bool supported = true;
    static void encode(WireWriter& out, const W& wrapper) { encode_callable(out, wrapper.f); }
    static W decode(WireReader& in) { return W{decode_callable<typename W::wrapped_callable>(in)}; }
};

/// A map chunk's element outcome: its value, or its exception as encode_exception sends one.
template <class R>
    requires(Codec<R>::supported)
struct Codec<ElementResult<R>>
{
    static constexpr bool supported = true;
    static void encode(WireWriter& out, const ElementResult<R>& element)
    {
        out.raw(static_cast<std::uint8_t>(element.value.has_value()));
        if (element.value) {
            Codec<R>::encode(out, *element.value);
        } else {
            encode_exception(out, element.error, element.trace ? *element.trace : std::string{});
        }
    }
    static ElementResult<R> decode(WireReader& in)
    {
        if (in.boolean()) {
            return {Codec<R>::decode(in), nullptr, nullptr};
        }
        return {std::nullopt, decode_exception(in), nullptr};
    }
};

/// A std::vector of plain bytes (what automatic sharing sends in a segment).
template <class T>
inline constexpr bool is_contiguous_vector = false;
template <class T, class A>
inline constexpr bool is_contiguous_vector<std::vector<T, A>> =
    trivially_transferable<T> && !std::is_same_v<T, bool>;

/// A worker's result as the PayloadKeeper of its answer: the answer may refer to the result's
/// large vectors instead of holding a copy, so the result lives until the answer is written
/// (the outbox holds it), not until the invoker returns.
template <class R>
class ResultKeeper final : public PayloadKeeper
{
public:
    explicit ResultKeeper(std::shared_ptr<const R> value) noexcept : value_(std::move(value)) {}
    [[nodiscard]] std::shared_ptr<const void> keep() const override { return value_; }

private:
    std::shared_ptr<const R> value_;
};

/// Sets a writer's payload keeper for a scope: the keeper must not outlive it in the writer.
class PayloadKeeperScope
{
public:
    PayloadKeeperScope(WireWriter& out, const PayloadKeeper& keeper) noexcept : out_(out)
    {
        out.payload_keeper(&keeper);
    }
    PayloadKeeperScope(const PayloadKeeperScope&) = delete;
    PayloadKeeperScope& operator=(const PayloadKeeperScope&) = delete;
    ~PayloadKeeperScope() { out_.payload_keeper(nullptr); }

private:
    WireWriter& out_;
};

/// The wire form of calls `F(Args...) -> R`: the invoker id, the callable, the arguments.
template <class R, class F, class... Args>
    requires(transferable_call<R, F, Args...>)
struct RemoteCall
{
    static void encode(WireWriter& out, const F& f, const Args&... args)
    {
        out.u64(id);
        encode_callable(out, f);
        (Codec<Args>::encode(out, args), ...);
    }

    static void invoke(WireReader& call, WireWriter& result)
    {
        F f = decode_callable<F>(call);
        // Braced initialisation decodes the arguments left to right, as they were encoded.
        std::tuple<Args...> args{Codec<Args>::decode(call)...};
        if constexpr (std::is_void_v<R>) {
            std::apply(f, std::move(args));
        } else if constexpr (trivially_transferable<R>) {
            Codec<R>::encode(result, std::apply(f, std::move(args)));
        } else {
            // Held until the answer is written: its large vectors go out from where they are.
            const auto value = std::make_shared<R>(std::apply(f, std::move(args)));
            const ResultKeeper<R> keeper(value);
            const PayloadKeeperScope keeping(result, keeper);
            if constexpr (is_contiguous_vector<R>) {
                // The result is the call's own: given up as it goes into its segment, so that it
                // and the segment are never both whole (the tree holds the data once less at its
                // peak).
                ArgumentSegments given_up;
                result.argument_segments(&given_up);
                Codec<R>::encode(result, *value);
                result.argument_segments(nullptr);
                if (value->size() * sizeof(typename R::value_type) >= prefault_threshold) {
                    // Freeing 400 MB takes 60 ms: after the answer is sent, not before.
                    result.keep_until_sent(value);
                }
            } else {
                Codec<R>::encode(result, *value);
            }
        }
    }

    static inline const std::uint64_t id =
        register_remote_invoker(typeid(RemoteCall).name(), &RemoteCall::invoke);
};

} // namespace futura::detail
