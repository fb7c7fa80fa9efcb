// The frames between a ProcessPoolExecutor and its workers: headers, exceptions, checks.
#include <futura/detail/protocol.hpp>
#include <futura/errors.hpp>

#include <boost/core/demangle.hpp>

#include <algorithm>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <typeinfo>
#include <unordered_map>
#include <utility>

namespace futura::detail {

namespace {

/// A MAC keyed with the channel key that has read the header with both checks zero: both of
/// a frame's checks start from it (see FrameHeader), so the header is hashed once per frame.
SipHash header_mac(const FrameHeader& header, const ChannelKey& key) noexcept
{
    FrameHeader bare = header;
    bare.check = 0;
    bare.header_check = 0;
    SipHash mac(key);
    mac.update(std::as_bytes(std::span(&bare, 1)));
    return mac;
}

/// `header_check`: the MAC of the header alone, checked as soon as the header is in.
std::uint32_t header_check_from(SipHash mac) noexcept
{
    return static_cast<std::uint32_t>(mac.finish() >> 32);
}

/// `check`: the MAC of the header and of the payload's first `checked_prefix` bytes: only a
/// process that knows the key makes frames that pass.
std::uint32_t frame_check_from(SipHash mac, std::span<const char> payload) noexcept
{
    mac.update(std::as_bytes(payload.first(std::min(payload.size(), FrameHeader::checked_prefix))));
    return static_cast<std::uint32_t>(mac.finish());
}

bool known_kind(FrameKind kind) noexcept
{
    switch (kind) {
    case FrameKind::call:
    case FrameKind::initialize:
    case FrameKind::claims:
    case FrameKind::ring:
    case FrameKind::ready:
    case FrameKind::value:
    case FrameKind::exception:
    case FrameKind::initialize_failed:
    case FrameKind::wake:
        return true;
    }
    return false;
}

} // namespace

std::size_t begin_frame(std::vector<char>& out)
{
    const auto start = out.size();
    out.resize(start + sizeof(FrameHeader));
    return start;
}

void finish_frame(std::vector<char>& out, std::size_t frame_start, FrameKind kind,
                  std::uint64_t task_id, std::size_t descriptors, const ChannelKey& key)
{
    if (descriptors > Attachments::max_descriptors) {
        throw ProtocolError("futura: a message refers to more than 253 file descriptors");
    }
    FrameHeader header;
    header.kind = kind;
    header.descriptors = static_cast<std::uint8_t>(descriptors);
    header.task_id = task_id;
    header.payload_size = out.size() - frame_start - sizeof(FrameHeader);
    const std::span<const char> payload(out.data() + frame_start + sizeof(FrameHeader),
                                        header.payload_size);
    const auto mac = header_mac(header, key);
    header.header_check = header_check_from(mac);
    header.check = frame_check_from(mac, payload);
    std::memcpy(out.data() + frame_start, &header, sizeof header);
}

void finish_frame(std::vector<char>& out, std::size_t frame_start, FrameKind kind,
                  std::uint64_t task_id, const Attachments& attachments, const ChannelKey& key)
{
    const auto& in_place = attachments.in_place;
    if (in_place.empty()) {
        finish_frame(out, frame_start, kind, task_id, attachments.descriptors.size(), key);
        return;
    }
    if (attachments.descriptors.size() > Attachments::max_descriptors) {
        throw ProtocolError("futura: a message refers to more than 253 file descriptors");
    }
    const std::size_t payload_start = frame_start + sizeof(FrameHeader);
    FrameHeader header;
    header.kind = kind;
    header.descriptors = static_cast<std::uint8_t>(attachments.descriptors.size());
    header.task_id = task_id;
    std::uint64_t size = out.size() - payload_start;
    for (const auto& piece : in_place) {
        if (piece.at < payload_start || piece.at > out.size()) {
            throw std::logic_error("futura: an in-place payload lies outside its frame");
        }
        size += piece.size;
    }
    if (size > FrameHeader::max_payload) {
        throw ProtocolError("futura: a message between processes would be larger than 1 TiB");
    }
    header.payload_size = size;
    // The checked prefix as it goes out: the buffer's bytes with the payloads between them.
    std::vector<char> prefix;
    prefix.reserve(
        static_cast<std::size_t>(std::min<std::uint64_t>(size, FrameHeader::checked_prefix)));
    std::size_t at = payload_start;
    auto take = [&](const char* data, std::size_t count) {
        count = std::min(count, FrameHeader::checked_prefix - prefix.size());
        prefix.insert(prefix.end(), data, data + count);
    };
    for (const auto& piece : in_place) {
        take(out.data() + at, piece.at - at);
        take(piece.data, piece.size);
        at = piece.at;
    }
    take(out.data() + at, out.size() - at);
    const auto mac = header_mac(header, key);
    header.header_check = header_check_from(mac);
    header.check = frame_check_from(mac, prefix);
    std::memcpy(out.data() + frame_start, &header, sizeof header);
}

void append_frame(std::vector<char>& out, FrameKind kind, std::uint64_t task_id,
                  std::span<const char> payload, const ChannelKey& key)
{
    const auto start = begin_frame(out);
    out.insert(out.end(), payload.begin(), payload.end());
    finish_frame(out, start, kind, task_id, 0, key);
}

std::optional<Frame> parse_frame(std::span<const char> bytes, const ChannelKey& key)
{
    return parse_frame_start(bytes, FrameHeader::max_payload + 1, key); // never unread bytes
}

std::optional<Frame> parse_frame_start(std::span<const char> bytes, std::uint64_t min_unread,
                                       const ChannelKey& key)
{
    if (bytes.size() < sizeof(FrameHeader)) {
        return std::nullopt;
    }
    FrameHeader header;
    std::memcpy(&header, bytes.data(), sizeof header);
    if (header.magic != FrameHeader::expected_magic) {
        throw ProtocolError("futura: a message between processes does not start with a frame "
                            "header (corrupted or foreign bytes on the channel)");
    }
    if (!known_kind(header.kind) || header.payload_size > FrameHeader::max_payload ||
        header.descriptors > Attachments::max_descriptors) {
        throw ProtocolError("futura: a message between processes has an invalid header");
    }
    const auto mac = header_mac(header, key);
    if (header_check_from(mac) != header.header_check) {
        throw ProtocolError("futura: a message between processes fails its authentication (its "
                            "header is corrupted, or it was not written by this pool)");
    }
    const auto held = bytes.size() - sizeof(FrameHeader);
    std::uint64_t unread = 0;
    if (held < header.payload_size) {
        unread = header.payload_size - held;
        if (unread < min_unread || held < FrameHeader::checked_prefix) {
            return std::nullopt; // wait for the rest (or for the prefix, to check it)
        }
    }
    const auto payload =
        bytes.subspan(sizeof(FrameHeader), static_cast<std::size_t>(header.payload_size - unread));
    if (frame_check_from(mac, payload) != header.check) {
        throw ProtocolError("futura: a message between processes fails its authentication "
                            "(corrupted bytes on the channel, or not written by this pool)");
    }
    return Frame{header.kind,
                 header.task_id,
                 header.descriptors,
                 payload,
                 sizeof(FrameHeader) + payload.size(),
                 unread};
}

// ---------------------------------------------------------------------------------------------
// Exceptions

namespace {

using Rebuild =
    std::function<std::exception_ptr(const std::string& what, const RemoteTraceback& where)>;

/// `E` as rebuilt in the parent: the same type to every `catch`, with the worker's stack trace
/// nested (a `std::nested_exception` captures the exception being handled as it is made).
/// Python keeps the remote traceback the same way, as the rebuilt exception's `__cause__`.
/// Nested rather than kept in a table by address: the trace lives and dies with the
/// exception, wherever its `exception_ptr` is copied.
template <class E>
class Traced : public E, public std::nested_exception
{
public:
    template <class... Args>
    explicit Traced(Args&&... args) : E(std::forward<Args>(args)...)
    {}
};

template <class E, class... Args>
std::exception_ptr traced(const RemoteTraceback& where, Args&&... args)
{
    if (where.stack_trace().empty()) {
        return std::make_exception_ptr(E(std::forward<Args>(args)...)); // nothing to add
    }
    try {
        throw where;
    } catch (...) {
        return std::make_exception_ptr(Traced<E>(std::forward<Args>(args)...));
    }
}

template <class E>
std::pair<const std::type_info*, Rebuild> rebuild_as()
{
    return {&typeid(E), [](const std::string& what, const RemoteTraceback& where) {
                return traced<E>(where, what);
            }};
}

template <class E>
std::pair<const std::type_info*, Rebuild> rebuild_without_message()
{
    return {&typeid(E),
            [](const std::string&, const RemoteTraceback& where) { return traced<E>(where); }};
}

/// Exceptions rebuilt as their own type, keyed by mangled name (the same in every process of one
/// program).
const std::unordered_map<std::string_view, Rebuild>& rebuildable()
{
    static const auto table = [] {
        const std::pair<const std::type_info*, Rebuild> entries[] = {
            rebuild_as<std::runtime_error>(),
            rebuild_as<std::logic_error>(),
            rebuild_as<std::invalid_argument>(),
            rebuild_as<std::domain_error>(),
            rebuild_as<std::length_error>(),
            rebuild_as<std::out_of_range>(),
            rebuild_as<std::range_error>(),
            rebuild_as<std::overflow_error>(),
            rebuild_as<std::underflow_error>(),
            rebuild_without_message<std::bad_alloc>(),
            rebuild_without_message<std::bad_cast>(),
            rebuild_as<Error>(),
            rebuild_as<CancelledError>(),
            rebuild_as<TimeoutError>(),
            rebuild_as<InvalidStateError>(),
            rebuild_as<ShutdownError>(),
            rebuild_as<BrokenExecutor>(),
            rebuild_as<BrokenThreadPool>(),
            rebuild_as<BrokenProcessPool>(),
            rebuild_as<WorkerCrashed>(),
        };
        std::unordered_map<std::string_view, Rebuild> map;
        for (const auto& [type, rebuild] : entries) {
            map.emplace(type->name(), rebuild);
        }
        return map;
    }();
    return table;
}

/// User exception types registered with futura::register_exception, by mangled name.
struct RegisteredExceptions
{
    struct Codec
    {
        ExceptionEncoder encode;
        ExceptionDecoder decode;
    };
    std::mutex mutex; // static initialisers of dlopen'ed libraries may race
    std::unordered_map<std::string, Codec> codecs;
};

RegisteredExceptions& registered_exceptions()
{
    static RegisteredExceptions registry;
    return registry;
}

std::optional<RegisteredExceptions::Codec> registered_codec(const std::string& mangled)
{
    auto& registry = registered_exceptions();
    const std::lock_guard lock(registry.mutex);
    const auto found = registry.codecs.find(mangled);
    if (found == registry.codecs.end()) {
        return std::nullopt;
    }
    return found->second;
}

} // namespace

void register_exception_codec(const std::type_info& type, ExceptionEncoder encode,
                              ExceptionDecoder decode)
{
    auto& registry = registered_exceptions();
    const std::lock_guard lock(registry.mutex);
    registry.codecs.insert_or_assign(type.name(), RegisteredExceptions::Codec{encode, decode});
}

namespace {

void write_header(WireWriter& out, const std::string& mangled, const std::string& what,
                  const std::string& trace)
{
    out.string(mangled);
    out.string(mangled.empty() ? std::string("unknown exception")
                               : boost::core::demangle(mangled.c_str()));
    out.string(what);
    out.string(trace);
}

} // namespace

void encode_exception(WireWriter& out, const std::exception_ptr& error, const std::string& trace)
{
    std::string mangled;
    std::string what;
    try {
        std::rethrow_exception(error);
    } catch (const RemoteError& e) {
        // Already remote (a nested pool): keep the original type and trace.
        out.string("");
        out.string(e.type_name());
        out.string(e.message());
        out.string(e.stack_trace());
        out.raw(std::uint8_t{0});
        return;
    } catch (const std::exception& e) {
        mangled = typeid(e).name();
        what = e.what();
        if (const auto codec = registered_codec(mangled)) {
            write_header(out, mangled, what, trace);
            // Its state goes last, after what a parent needs for a RemoteError should the
            // state fail to save.
            const auto state_at = out.mark();
            try {
                out.raw(std::uint8_t{1});
                codec->encode(e, out);
            } catch (...) {
                out.rewind(state_at);
                out.raw(std::uint8_t{0});
            }
            return;
        }
    } catch (...) {
        mangled = "";
        what = "an exception not derived from std::exception";
    }
    write_header(out, mangled, what, trace);
    out.raw(std::uint8_t{0});
}

std::exception_ptr decode_exception(WireReader& in)
{
    const std::string mangled(in.string());
    std::string type_name(in.string());
    std::string what(in.string());
    std::string trace(in.string());
    if (in.boolean()) { // the state of a registered type
        const auto codec = registered_codec(mangled);
        if (!codec) {
            throw ProtocolError("futura: a worker sent the state of an exception type this "
                                "process has not registered");
        }
        return codec->decode(in);
    }
    const auto& table = rebuildable();
    if (const auto found = table.find(mangled); found != table.end()) {
        return found->second(what, RemoteTraceback(type_name, std::move(trace)));
    }
    return std::make_exception_ptr(
        RemoteError(std::move(type_name), std::move(what), std::move(trace)));
}

} // namespace futura::detail
