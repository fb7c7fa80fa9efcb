// User exception types that cross from a worker process as themselves.
#pragma once

#include <futura/detail/protocol.hpp>
#include <futura/transferable.hpp>

#include <concepts>
#include <exception>
#include <typeinfo>

namespace futura {

namespace detail {

/// What `register_exception` takes: an exception type that can travel.
template <class E>
concept registrable_exception = (std::derived_from<E, std::exception> && transferable<E>);

} // namespace detail

/// Lets exceptions of type `E` thrown by process tasks arrive in the parent as `E`, with their
/// state, instead of as `RemoteError`. `E` derives from `std::exception` and is transferable
/// (usually: default-constructible with a Boost.Serialization `serialize`).
///
/// Call it during static initialisation, so that workers (the same program) know `E` too:
///
///     inline const bool insufficient_funds_travels =
///         futura::register_exception<InsufficientFunds>();
///
/// Registration is needed because C++ cannot find the `serialize` of a caught exception's
/// dynamic type; the standard exception types and futura's own need none. Only objects of
/// exactly type `E` use it: a type derived from `E` arrives as `RemoteError` unless registered
/// itself, as slicing it would lose what made it different.
/// @return true, so that a namespace-scope `const bool` can hold the call.
template <class E>
    requires(detail::registrable_exception<E>)
bool register_exception()
{
    detail::register_exception_codec(
        typeid(E),
        [](const std::exception& error, detail::WireWriter& out) {
            detail::Codec<E>::encode(out, dynamic_cast<const E&>(error));
        },
        [](detail::WireReader& in) {
            return std::make_exception_ptr(detail::Codec<E>::decode(in));
        });
    return true;
}

} // namespace futura
