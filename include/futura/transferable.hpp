// What may travel between processes: the `transferable` concept and the value codecs behind it.
#pragma once

#include <futura/detail/bounded_iarchive.hpp>
#include <futura/detail/call_key.hpp>
#include <futura/detail/segment.hpp>
#include <futura/detail/segment_cache.hpp>
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
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <sstream>
#include <stdexcept>
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

/// Views that are trivially copyable but hold a pointer into the sender's memory: never sent
/// as their bytes (a span travels by its own codec, as shared memory or a copy).
template <class T>
inline constexpr bool is_borrowed_view = false;
template <class T, std::size_t Extent>
inline constexpr bool is_borrowed_view<std::span<T, Extent>> = true;
template <class C, class Traits>
inline constexpr bool is_borrowed_view<std::basic_string_view<C, Traits>> = true;

/// Plain bytes that mean the same in another process: no pointers (they would point into the
/// sender's memory). A class with pointer members cannot be told apart; do not send one.
template <class T>
concept trivially_transferable =
    std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> && !std::is_member_pointer_v<T> &&
    !std::is_reference_v<T> && std::is_default_constructible_v<T> && !callable_wrapper<T> &&
    !is_borrowed_view<T>;

/// The message that a Boost.Serialization value is being encoded into or decoded from, for the
/// values inside it that travel beside the archive as descriptors (futura::SharedArray in a
/// user's struct). Set by Codec's Boost path for the duration of one value.
inline thread_local WireWriter* boost_writer = nullptr;
inline thread_local WireReader* boost_reader = nullptr;

/// @throws std::logic_error outside a message to or from a worker process.
inline WireWriter& boost_message_writer()
{
    if (boost_writer == nullptr) {
        throw std::logic_error("futura: shared memory (a SharedArray, SharedValue or MappedArray) "
                               "can be serialized only into a call to, or a result from, a worker "
                               "process: it is a handle to this machine's memory, not data");
    }
    return *boost_writer;
}

/// @throws std::logic_error outside a message to or from a worker process.
inline WireReader& boost_message_reader()
{
    if (boost_reader == nullptr) {
        throw std::logic_error("futura: shared memory (a SharedArray, SharedValue or MappedArray) "
                               "can be deserialized only from a call to, or a result from, a "
                               "worker process");
    }
    return *boost_reader;
}

/// The one Boost.Serialization form of a shared-memory handle (SharedArray, MappedArray,
/// SharedValue, the shared objects' blocks) inside a user type: saving attaches the segment to
/// the message being written (`attach(writer)` returns its handle) and archives the handle;
/// loading reads the handle and opens it from the message being read (`open(reader, handle)`).
template <class Archive, class Attach, class Open>
void serialize_segment_handle(Archive& archive, Attach&& attach, Open&& open)
{
    SegmentHandle handle;
    if constexpr (Archive::is_saving::value) {
        handle = attach(boost_message_writer());
    }
    handle.transfer(archive);
    if constexpr (!Archive::is_saving::value) {
        open(boost_message_reader(), handle);
    }
}

/// Sets a thread's Boost message context for one value, and restores the outer one.
template <class Wire>
class BoostMessageScope
{
public:
    BoostMessageScope(Wire*& slot, Wire& wire) noexcept : slot_(slot), outer_(slot)
    {
        slot = &wire;
    }
    BoostMessageScope(const BoostMessageScope&) = delete;
    BoostMessageScope& operator=(const BoostMessageScope&) = delete;
    ~BoostMessageScope() { slot_ = outer_; }

private:
    Wire*& slot_;
    Wire* outer_;
};

template <class T>
concept serializable_by_member = requires(T& t, boost::archive::binary_oarchive& out,
                                          boost::archive::binary_iarchive& in, unsigned version)
{
    t.serialize(out, version);
    t.serialize(in, version);
};

template <class T>
concept serializable_by_function = requires(T& t, boost::archive::binary_oarchive& out,
                                            boost::archive::binary_iarchive& in, unsigned version)
{
    serialize(out, t, version);
    serialize(in, t, version);
};

/// A class with a Boost.Serialization `serialize` (member, or found by ADL).
template <class T>
concept has_serialize = (std::is_class_v<T> && std::is_default_constructible_v<T> &&
                         (serializable_by_member<T> || serializable_by_function<T>));

/// Encodes and decodes one type. Specialisations for the standard types futura encodes itself
/// (fast, bounds-checked); Boost.Serialization for user types with `serialize`.
template <class T, class = void>
struct Codec
{
    static constexpr bool supported = false;
};

template <class T>
    requires(trivially_transferable<T>)
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
    static void encode(WireWriter& out, const std::string& value)
    {
        out.u64(value.size());
        // A large one is written to the channel from the string itself where the writer's
        // keeper vouches for it (a gather write), as a vector's elements are.
        out.large_bytes(value.data(), value.size());
    }
    static std::string decode(WireReader& in)
    {
        const auto n = in.count(1);
        if (n < in_place_threshold) {
            const auto bytes = in.take(n);
            return {bytes.data(), bytes.size()};
        }
        // Straight from the channel into the string where the message is read as it arrives.
        std::string value(n, '\0');
        in.large_bytes(value.data(), n);
        return value;
    }
};

/// The top bit of a vector's length says that its elements travel in a shared memory segment
/// (automatic sharing) rather than in the message. No real length comes near it.
inline constexpr std::uint64_t shared_length_flag = std::uint64_t{1} << 63;

template <class T, class Alloc>
    requires(Codec<T>::supported)
struct Codec<std::vector<T, Alloc>>
{
    static constexpr bool supported = true;
    static void encode(WireWriter& out, const std::vector<T, Alloc>& values)
    {
        if constexpr (trivially_transferable<T> && !std::is_same_v<T, bool>) {
            const auto bytes = values.size() * sizeof(T);
            // One comparison on the hot path: a threshold of 0 wraps to the largest size_t.
            if (out.share_threshold() - 1 < bytes) [[unlikely]] {
                out.u64(values.size() | shared_length_flag);
                // Straight from the vector into a (warm, if cached) segment: no message buffer.
                encode_in_cached_segment(out, values.data(), bytes);
                return;
            }
            out.u64(values.size());
            // A large one is written to the channel straight from the vector where the writer's
            // keeper vouches for it (a gather write), else copied: no per-element work either way.
            out.large_bytes(values.data(), bytes);
        } else {
            out.u64(values.size());
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
            const auto length = in.u64();
            if (length & shared_length_flag) [[unlikely]] {
                const auto n = length & ~shared_length_flag;
                if (n > std::numeric_limits<std::size_t>::max() / 2 / sizeof(T)) {
                    WireReader::fail("a shared vector's length is impossibly large");
                }
                const auto bytes = static_cast<std::size_t>(n) * sizeof(T);
                const auto segment = take_cached_segment(in, bytes); // checked before allocating
                values.reserve(static_cast<std::size_t>(n));
                prefault(values.data(), bytes);
                values.resize(static_cast<std::size_t>(n));
                // One copy, out of the segment straight into the vector's own storage.
                read_cached_segment(segment, values.data(), bytes);
                return values;
            }
            if (length > in.remaining() / sizeof(T)) {
                WireReader::fail("a length field is larger than the rest of the message");
            }
            if (length * sizeof(T) >= prefault_threshold) [[unlikely]] {
                values.reserve(static_cast<std::size_t>(length));
                prefault(values.data(), static_cast<std::size_t>(length) * sizeof(T));
            }
            values.resize(static_cast<std::size_t>(length));
            // Straight from the channel into the vector where the frame is read as it is
            // decoded (a worker's large call), else out of the received frame.
            in.large_bytes(values.data(), values.size() * sizeof(T));
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

/// Whether a result of type R can take the last bytes of its message straight into its own
/// storage as they arrive (RemoteTask::receive_result_into): a vector of plain values, or a
/// string (both encoded as their length, then their elements' bytes).
template <class R>
inline constexpr bool receivable_in_place = false;
template <class T, class Alloc>
inline constexpr bool receivable_in_place<std::vector<T, Alloc>> =
    trivially_transferable<T> && !std::is_same_v<T, bool>;
template <>
inline constexpr bool receivable_in_place<std::string> = true;

/// Starts decoding a vector of plain values (or a string) that ends its message: `in` holds the
/// start of it (its length and first elements), and its last `unread` bytes are still to come.
/// Makes `values` (its pages backed at once), copies in what `in` holds and returns the storage
/// still to fill. @return an empty span, `values` left empty, if the bytes are not such a value
/// ending exactly `unread` bytes further (the caller then decodes the whole message as usual).
template <class Contiguous>
    requires(receivable_in_place<Contiguous>)
std::span<char> start_receiving_in_place(WireReader& in, std::uint64_t unread, Contiguous& values)
{
    using T = typename Contiguous::value_type;
    if (in.remaining() < sizeof(std::uint64_t)) {
        return {};
    }
    const auto length = in.u64();
    const auto held = in.remaining();
    const std::uint64_t bytes = held + unread;
    if ((length & shared_length_flag) != 0 || bytes % sizeof(T) != 0 ||
        length != bytes / sizeof(T) || unread == 0) {
        return {};
    }
    values.reserve(static_cast<std::size_t>(length));
    prefault(values.data(), static_cast<std::size_t>(bytes));
    values.resize(static_cast<std::size_t>(length));
    in.bytes(values.data(), held);
    count_received_in_place();
    return {reinterpret_cast<char*>(values.data()) + held, // NOLINT: the elements' bytes
            static_cast<std::size_t>(unread)};
}

/// A span argument views memory of the caller that the worker cannot see, so it travels as
/// shared memory whenever it can:
/// - a span into a SharedArray or MappedArray of the caller: a handle to that memory (writes
///   through a `std::span<T>` in the worker reach the caller);
/// - any other `std::span<const T>`: a copy, in a fresh shared segment if at least
///   `share_threshold` bytes, else in the message;
/// - any other `std::span<T>`: refused (std::invalid_argument), since the worker's writes
///   could not reach the caller's memory.
/// The decoded span stays valid while the call runs (the message keeps its memory alive).
template <class T>
    requires(trivially_transferable<std::remove_const_t<T>> &&
             !std::is_same_v<std::remove_const_t<T>, bool>)
struct Codec<std::span<T>>
{
    static constexpr bool supported = true;

    enum Kind : std::uint8_t
    {
        empty,
        shared,  // a handle to the caller's segment
        copied,  // a fresh segment holding a copy
        inlined, // the bytes, in the message
    };

    static void encode(WireWriter& out, std::span<T> values)
    {
        const auto bytes = values.size_bytes();
        if (bytes == 0) {
            out.raw(Kind::empty);
            return;
        }
        if (const auto segment = Segment::containing(values.data(), bytes)) {
            out.raw(Kind::shared);
            encode_segment_view(out, *segment, values.data(), bytes);
            return;
        }
        if constexpr (!std::is_const_v<T>) {
            throw std::invalid_argument(
                "futura: a std::span<T> passed to a worker process must view a "
                "futura::SharedArray or futura::MappedArray, so that the worker's writes reach "
                "this process; pass a std::span<const T> (or a std::vector) to send a copy");
        } else if (out.share_threshold() - 1 < bytes) {
            out.raw(Kind::copied);
            out.u64(bytes);
            encode_copy_in_segment(out, values.data(), bytes);
        } else {
            out.raw(Kind::inlined);
            out.u64(values.size());
            out.bytes(values.data(), bytes);
        }
    }

    static std::span<T> decode(WireReader& in)
    {
        using Element = std::remove_const_t<T>;
        const auto kind = in.raw<std::uint8_t>();
        SegmentView view;
        if (kind == Kind::empty) {
            return {};
        } else if (kind == Kind::shared) {
            view = decode_segment_view(in, alignof(T), !std::is_const_v<T>);
        } else if (kind == Kind::copied && std::is_const_v<T>) {
            SegmentHandle handle;
            handle.bytes = in.u64();
            handle.index = in.u64();
            view = open_segment(in, handle, alignof(T), false);
        } else if (kind == Kind::inlined && std::is_const_v<T>) {
            const auto n = in.count(sizeof(T));
            auto copy = std::make_shared<Element[]>(n);
            in.bytes(copy.get(), n * sizeof(T));
            in.keep_alive(copy);
            return {copy.get(), n};
        } else {
            WireReader::fail("a span's kind is unknown");
        }
        if (view.bytes % sizeof(T) != 0) {
            WireReader::fail("a span's length is not a whole number of elements");
        }
        in.keep_alive(view.segment);
        return {reinterpret_cast<T*>(view.data), view.bytes / sizeof(T)}; // NOLINT: sender's Ts
    }
};

template <class T, std::size_t N>
    requires(Codec<T>::supported && !trivially_transferable<std::array<T, N>>)
struct Codec<std::array<T, N>>
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
    requires(Codec<T>::supported)
struct Codec<std::optional<T>>
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
    requires((Codec<Ts>::supported && ...) && !trivially_transferable<std::tuple<Ts...>>)
struct Codec<std::tuple<Ts...>>
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
    requires((Codec<A>::supported) && Codec<B>::supported &&
             !trivially_transferable<std::pair<A, B>>)
struct Codec<std::pair<A, B>>
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
    requires(!trivially_transferable<T> && (has_serialize<T> || boost_container<T>))
struct Codec<T>
{
    static constexpr bool supported = true;
    static void encode(WireWriter& out, const T& value)
    {
        std::ostringstream blob;
        {
            const BoostMessageScope scope(boost_writer, out);
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
            const BoostMessageScope scope(boost_reader, in);
            BoundedInputArchive archive(bytes);
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

namespace detail {

/// What a task may return from a worker: a `transferable` value that owns its data. A
/// `std::span` result would view memory that only the call's message keeps alive.
template <class T>
concept transferable_result = transferable<T> && !is_borrowed_view<std::remove_cvref_t<T>>;

} // namespace detail

} // namespace futura
