// What may travel between processes: the `transferable` concept and the value codecs behind it.
#pragma once

#include <futura/detail/wire.hpp>

#include <boost/archive/binary_iarchive.hpp>
#include <boost/archive/binary_oarchive.hpp>
#include <boost/serialization/deque.hpp>
#include <boost/serialization/list.hpp>
#include <boost/serialization/map.hpp>
#include <boost/serialization/set.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/unordered_map.hpp>
#include <boost/serialization/unordered_set.hpp>
#include <boost/serialization/utility.hpp>
#include <boost/serialization/vector.hpp>

#include <array>
#include <cstddef>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <streambuf>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace futura {

namespace detail {

/// Plain bytes that mean the same in another process: no pointers (they would point into the
/// sender's memory).
/// Whether `T` wraps a callable that travels by its own rules (see remote_call.hpp).
template <class T>
concept callable_wrapper = requires
{
    typename T::wrapped_callable;
};

/// Plain bytes that mean the same in another process: no pointers (they would point into the
/// sender's memory). A class with pointer members cannot be told apart; do not send one.
template <class T>
concept trivially_transferable =
    std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> && !std::is_member_pointer_v<T> &&
    !std::is_reference_v<T> && std::is_default_constructible_v<T> && !callable_wrapper<T>;

/// A class with a Boost.Serialization `serialize` (member, or found by ADL).
template <class T>
concept has_serialize = std::is_class_v<T> && std::is_default_constructible_v<T> &&(
    requires(T& t, boost::archive::binary_oarchive& out, boost::archive::binary_iarchive& in,
             unsigned version) {
        t.serialize(out, version);
        t.serialize(in, version);
    } ||
    requires(T & t, boost::archive::binary_oarchive& out, boost::archive::binary_iarchive& in,
             unsigned version) {
        serialize(out, t, version);
        serialize(in, t, version);
    });

/// Encodes and decodes one type. Specialisations for the standard types futura encodes itself
/// (fast, bounds-checked); Boost.Serialization for user types with `serialize`.
template <class T, class = void>
struct Codec
{
    static constexpr bool supported = false;
};

template <class T>
requires trivially_transferable<T>
struct Codec<T>
{
    static constexpr bool supported = true;
    static void encode(WireWriter& out, const T& value) { out.raw(value); }
    static T decode(WireReader& in) { return in.raw<T>(); }
};

template <>
struct Codec<bool>
{
    static constexpr bool supported = true;
    static void encode(WireWriter& out, bool value) { out.raw(static_cast<std::uint8_t>(value)); }
    static bool decode(WireReader& in) { return in.boolean(); }
};

template <>
struct Codec<std::string>
{
    static constexpr bool supported = true;
    static void encode(WireWriter& out, const std::string& value) { out.string(value); }
    static std::string decode(WireReader& in) { return std::string(in.string()); }
};

template <class T, class Alloc>
requires Codec<T>::supported struct Codec<std::vector<T, Alloc>>
{
    static constexpr bool supported = true;
    static void encode(WireWriter& out, const std::vector<T, Alloc>& values)
    {
        out.u64(values.size());
        if constexpr (trivially_transferable<T> && !std::is_same_v<T, bool>) {
            out.bytes(values.data(), values.size() * sizeof(T)); // one copy, no per-element work
        } else {
            for (const auto& value : values) {
                Codec<T>::encode(out, value);
            }
        }
    }
    static std::vector<T, Alloc> decode(WireReader& in)
    {
        std::vector<T, Alloc> values;
        if constexpr (trivially_transferable<T> &&
                      !std::is_same_v<T, bool>) { // no vector<bool>::data
            values.resize(in.count(sizeof(T)));
            in.bytes(values.data(), values.size() * sizeof(T));
        } else {
            const auto n = in.count(1); // each element takes at least a byte, or none:
            values.reserve(std::min<std::size_t>(n, in.remaining())); // never trust n to size
            for (std::size_t i = 0; i < n; ++i) {
                values.push_back(Codec<T>::decode(in));
            }
        }
        return values;
    }
};

template <class T, std::size_t N>
requires(Codec<T>::supported &&
         !trivially_transferable<std::array<T, N>>) struct Codec<std::array<T, N>>
{
    static constexpr bool supported = true;
    static void encode(WireWriter& out, const std::array<T, N>& values)
    {
        for (const auto& value : values) {
            Codec<T>::encode(out, value);
        }
    }
    static std::array<T, N> decode(WireReader& in)
    {
        std::array<T, N> values{};
        for (auto& value : values) {
            value = Codec<T>::decode(in);
        }
        return values;
    }
};

template <class T>
requires Codec<T>::supported struct Codec<std::optional<T>>
{
    static constexpr bool supported = true;
    static void encode(WireWriter& out, const std::optional<T>& value)
    {
        out.raw(static_cast<std::uint8_t>(value.has_value()));
        if (value) {
            Codec<T>::encode(out, *value);
        }
    }
    static std::optional<T> decode(WireReader& in)
    {
        if (!in.boolean()) {
            return std::nullopt;
        }
        return Codec<T>::decode(in);
    }
};

template <class... Ts>
requires((Codec<Ts>::supported && ...) &&
         !trivially_transferable<std::tuple<Ts...>>) struct Codec<std::tuple<Ts...>>
{
    static constexpr bool supported = true;
    static void encode(WireWriter& out, const std::tuple<Ts...>& values)
    {
        std::apply([&](const auto&... v) { (Codec<Ts>::encode(out, v), ...); }, values);
    }
    static std::tuple<Ts...> decode(WireReader& in)
    {
        return std::tuple<Ts...>{Codec<Ts>::decode(in)...}; // braces: left-to-right order
    }
};

template <class A, class B>
requires(Codec<A>::supported&& Codec<B>::supported &&
         !trivially_transferable<std::pair<A, B>>) struct Codec<std::pair<A, B>>
{
    static constexpr bool supported = true;
    static void encode(WireWriter& out, const std::pair<A, B>& value)
    {
        Codec<A>::encode(out, value.first);
        Codec<B>::encode(out, value.second);
    }
    static std::pair<A, B> decode(WireReader& in)
    {
        auto first = Codec<A>::decode(in);
        return {std::move(first), Codec<B>::decode(in)};
    }
};

/// Standard containers whose elements Boost.Serialization can save, for the Boost path.
template <class T>
inline constexpr bool boost_container = false;
template <class K, class V, class C, class A>
inline constexpr bool boost_container<std::map<K, V, C, A>> = true;
template <class K, class C, class A>
inline constexpr bool boost_container<std::set<K, C, A>> = true;
template <class K, class V, class H, class E, class A>
inline constexpr bool boost_container<std::unordered_map<K, V, H, E, A>> = true;
template <class K, class H, class E, class A>
inline constexpr bool boost_container<std::unordered_set<K, H, E, A>> = true;
template <class T, class A>
inline constexpr bool boost_container<std::list<T, A>> = true;
template <class T, class A>
inline constexpr bool boost_container<std::deque<T, A>> = true;

/// A read-only stream buffer over bytes already in memory, for Boost archives.
class ViewStreamBuf : public std::streambuf
{
public:
    explicit ViewStreamBuf(std::string_view bytes)
    {
        auto* first = const_cast<char*>(bytes.data()); // NOLINT: get area is never written
        setg(first, first, first + bytes.size());
    }
};

/// Saves a user type through Boost.Serialization into a length-prefixed blob.
template <class T>
requires(!trivially_transferable<T> && (has_serialize<T> || boost_container<T>)) struct Codec<T>
{
    static constexpr bool supported = true;
    static void encode(WireWriter& out, const T& value)
    {
        std::ostringstream blob;
        {
            boost::archive::binary_oarchive archive(blob, boost::archive::no_header);
            archive << value;
        }
        out.string(std::move(blob).str());
    }
    static T decode(WireReader& in)
    {
        ViewStreamBuf bytes(in.string());
        T value;
        try {
            boost::archive::binary_iarchive archive(bytes, boost::archive::no_header);
            archive >> value;
        } catch (const std::exception& e) {
            throw ProtocolError(
                std::string("futura: a Boost.Serialization value did not decode: ") + e.what());
        }
        return value;
    }
};

} // namespace detail

/// A value that can be passed to, or returned from, a task of a `ProcessPoolExecutor`:
/// trivially copyable data without pointers, `std::string`, standard containers, `std::optional`,
/// `std::pair`, `std::tuple` of such values, and classes with a Boost.Serialization `serialize`.
template <class T>
concept transferable = std::is_void_v<T> || detail::Codec<std::remove_cvref_t<T>>::supported;

} // namespace futura
