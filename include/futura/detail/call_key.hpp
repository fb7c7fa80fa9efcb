// What identifies the code a call runs, for duration estimates, and the traits of callables that
// both the core (call_key_of) and the process transport (what travels) need.
#pragma once

#include <cstdint>
#include <type_traits>
#include <typeinfo>

namespace futura::detail {

/// A function's address, or a callable type's `type_info` address: the same for every call of
/// that code in one process.
using CallKey = std::uintptr_t;

/// Whether `T` wraps a callable (map's chunks, starmap's tuples) that stands for it: it is
/// identified, and travels to a worker process, as the callable it wraps.
template <class T>
concept callable_wrapper = requires
{
    typename T::wrapped_callable;
};

template <class F>
concept function_pointer = std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>;

/// What identifies the code `f` runs, for duration estimates: a function's address, else the
/// callable's type; a wrapper (map's chunks, starmap's tuples) is identified by what it wraps.
template <class F>
CallKey call_key_of(const F& f) noexcept
{
    if constexpr (callable_wrapper<F>) {
        return call_key_of(f.f);
    } else if constexpr (function_pointer<F>) {
        return reinterpret_cast<CallKey>(f); // NOLINT: an identity, never called through
    } else {
        (void)f;
        return reinterpret_cast<CallKey>(&typeid(F)); // NOLINT: an identity
    }
}

} // namespace futura::detail
