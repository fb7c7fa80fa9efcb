// libFuzzer target: every decoder that reads bytes sent by another process, on a buffer (those
// that take file descriptors, and both ends of a real channel, are decode_channel.cpp's).
//
// The contract under test: a corrupted or hostile message ends in a clear ProtocolError (a
// futura::Error), never a crash, a sanitizer report, a hang, a huge allocation or a jump to
// garbage. Anything else that escapes a decoder is a finding, and the target aborts on it so
// that libFuzzer saves the input.
//
// Input: one flags byte, then a byte stream as it arrives on a channel.
//   flags bit 0     repair the MACs of the stream's frames before parsing (fuzz_support.hpp:
//                   the mutator cannot keep a keyed MAC right by itself); with the bit off the
//                   MAC and header checks themselves are exercised.
//   flags bits 1-7  if not zero, also deliver the stream in reads of this many bytes, as the
//                   worker loop does, and check that it yields the same frames; and in any
//                   case, decode each value with only this many of its payload's bytes held
//                   and the rest read as they arrive (a worker's large call), which must
//                   give the same outcome.
// Each frame's payload then goes, each time from its first byte, through decode_exception (with
// a registered user exception), the value codecs, the worker's call path (find_remote_invoker,
// the invoker, a call through a function pointer) and decode_function_address: the receiver
// picks the decoder by frame kind and task, so any payload may meet any of them.
//
// Build and run: scripts/lib/fuzz.sh (the `fuzz` stage of scripts/test). Seeds: the program
// writes them with `decode_message -write_seeds=DIR` (test/fuzz/corpus/decode_message holds a
// copy).
#include <futura/detail/element_result.hpp>
#include <futura/detail/protocol.hpp>
#include <futura/detail/remote_call.hpp>
#include <futura/detail/wire.hpp>
#include <futura/errors.hpp>
#include <futura/register_exception.hpp>
#include <futura/transferable.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cxxabi.h>
#include <fstream>
#include <limits>
#include <link.h>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <typeinfo>
#include <unistd.h>
#include <utility>
#include <vector>

#include "fuzz_support.hpp"

namespace fuzz {

using futura::detail::Codec;
using futura::detail::ElementResult;
using futura::detail::Frame;
using futura::detail::FrameHeader;
using futura::detail::FrameKind;
using futura::detail::ProtocolError;
using futura::detail::RemoteCall;
using futura::detail::RemoteInvoker;
using futura::detail::WireReader;
using futura::detail::WireWriter;

// ---------------------------------------------------------------------------------------------
// Types that travel: the value types under test and call types registered in this program

struct Sample
{
    int id = 0;
    double weight = 0;
    std::string label;
    std::vector<int> tags;
    bool enabled = false;

    template <class Archive>
    void serialize(Archive& archive, unsigned /*version*/)
    {
        archive& id& weight& label& tags& enabled;
    }
};

/// A function object with state, which travels through Boost.Serialization.
struct Prefix
{
    std::string text;

    template <class Archive>
    void serialize(Archive& archive, unsigned /*version*/)
    {
        archive& text;
    }
    std::string operator()(const std::string& tail) const { return text + tail; }
};

/// Stateless function objects: only their type travels.
struct CountChars
{
    std::size_t operator()(const std::vector<std::string>& words,
                           const std::tuple<int, std::string>& extra) const
    {
        std::size_t n = std::get<1>(extra).size();
        for (const auto& word : words) {
            n += word.size();
        }
        return n;
    }
};

struct Summarize
{
    std::optional<std::vector<int>> operator()(const std::map<std::string, int>& counts,
                                               const Sample& sample,
                                               const std::vector<double>& weights) const
    {
        if (counts.empty() && weights.empty()) {
            return std::nullopt;
        }
        return std::vector<int>{static_cast<int>(counts.size()), sample.id,
                                static_cast<int>(weights.size())};
    }
};

int twice(int x) { return static_cast<int>(static_cast<unsigned>(x) * 2U); }

using CountCall =
    RemoteCall<std::size_t, CountChars, std::vector<std::string>, std::tuple<int, std::string>>;
using SummarizeCall = RemoteCall<std::optional<std::vector<int>>, Summarize,
                                 std::map<std::string, int>, Sample, std::vector<double>>;
using PrefixCall = RemoteCall<std::string, Prefix, std::string>;
// A call through a function pointer: its callable travels as (module, offset).
using TwiceCall = RemoteCall<int, int (*)(int), int>;

/// A user exception registered to travel as itself (futura::register_exception), with state.
struct Overdrawn : std::exception
{
    int account = 0;
    std::string reason;

    Overdrawn() = default;
    Overdrawn(int which, std::string why) : account(which), reason(std::move(why)) {}

    template <class Archive>
    void serialize(Archive& archive, unsigned /*version*/)
    {
        archive& account& reason;
    }
    [[nodiscard]] const char* what() const noexcept override { return reason.c_str(); }
};

const bool overdrawn_travels = futura::register_exception<Overdrawn>();

struct Registered
{
    std::uint64_t id;
    RemoteInvoker invoker;
};

// Boost.Serialization's own binary archive sizes strings and collections from the length fields
// it reads, before reading their bytes: a hostile length made the receiver allocate gigabytes (an
// earlier finding of this target). futura decodes through BoundedInputArchive, which checks each
// length against the bytes left; the Boost path is fuzzed like the rest.
constexpr bool fuzz_boost_path = true;

const std::vector<Registered>& registered()
{
    static const std::vector<Registered> calls = {
        {CountCall::id, &CountCall::invoke},
        {SummarizeCall::id, &SummarizeCall::invoke},
        {PrefixCall::id, &PrefixCall::invoke},
        {TwiceCall::id, &TwiceCall::invoke},
    };
    return calls;
}

// ---------------------------------------------------------------------------------------------
// Value codecs

template <class T>
constexpr bool boost_path = futura::detail::has_serialize<T> || futura::detail::boost_container<T>;

template <class T>
std::vector<char> encode(const T& value)
{
    WireWriter out;
    Codec<T>::encode(out, value);
    return std::move(out.buffer());
}

/// The bytes of a message after those a reader holds, as a channel delivers them to a reader
/// that decodes a large frame as it arrives (FrameInbox in a worker).
class MemoryTail final : public futura::detail::MessageTail
{
public:
    explicit MemoryTail(std::span<const char> rest) noexcept : rest_(rest) {}

    void read(char* into, std::size_t size) override
    {
        if (size > rest_.size()) {
            finding("a reader asked its tail for more bytes than its message has left");
        }
        std::memcpy(into, rest_.data(), size);
        rest_ = rest_.subspan(size);
    }

private:
    std::span<const char> rest_;
};

/// Where the payloads are split between the bytes a reader holds and its tail (fuzz_one sets
/// it from the input's flags): decoding as the bytes arrive must not change the outcome.
std::size_t tail_split = 0;

/// What decoding a T from `in` gave: its encoding, and how much of the message was left.
struct Outcome
{
    std::vector<char> encoding;
    std::size_t remaining = 0;
    bool operator==(const Outcome&) const = default;
};

/// Decodes a T from the payload. futura's own codecs are canonical: what decodes re-encodes to
/// exactly the bytes it consumed. The Boost path need not be; there encode(decode(encode(v)))
/// must give the bytes of encode(v). The same payload read through a tail (its first bytes
/// held, the rest pulled as needed) must decode to the same value, or fail as well.
template <class T>
void decode_value(std::span<const char> payload)
{
    static const std::string step = "Codec<" + type_name<T>() + ">::decode";
    std::optional<Outcome> whole;
    expect_clean(step, [&] {
        WireReader in(payload);
        const T value = Codec<T>::decode(in);
        const auto consumed = payload.first(payload.size() - in.remaining());
        const auto again = encode(value);
        whole = Outcome{again, in.remaining()};
        if constexpr (boost_path<T>) {
            WireReader reread(again);
            const auto twice = encode(Codec<T>::decode(reread));
            if (again != twice || reread.remaining() != 0) {
                finding(step + " gave a value that does not round-trip");
            }
        } else if (!std::equal(again.begin(), again.end(), consumed.begin(), consumed.end())) {
            finding(step + " accepted bytes that do not encode back to themselves (it misread "
                           "them)");
        }
    });
    const auto split = std::min(tail_split, payload.size());
    std::optional<Outcome> arriving;
    expect_clean(step + " as it arrives", [&] {
        MemoryTail tail(payload.subspan(split));
        WireReader in(payload.first(split), tail, payload.size() - split);
        const T value = Codec<T>::decode(in);
        arriving = Outcome{encode(value), in.remaining()};
    });
    if (whole != arriving) {
        finding(step + " decoded the payload otherwise when its last " +
                std::to_string(payload.size() - split) + " bytes were read as they arrived");
    }
}

void decode_values(std::span<const char> payload)
{
    decode_value<int>(payload);
    decode_value<std::string>(payload);
    decode_value<std::vector<double>>(payload);
    decode_value<std::vector<std::string>>(payload);
    if constexpr (fuzz_boost_path) {
        decode_value<std::map<std::string, int>>(payload); // Boost path
        decode_value<Sample>(payload);                     // Boost path, user type
    }
    decode_value<std::optional<std::vector<int>>>(payload);
    decode_value<std::tuple<int, std::string>>(payload);
    // A map chunk's answer: per-element values or exceptions.
    expect_clean("Codec<std::vector<ElementResult<int>>>::decode", [&] {
        WireReader in(payload);
        for (const auto& element : Codec<std::vector<ElementResult<int>>>::decode(in)) {
            if (element.value.has_value() == (element.error != nullptr)) {
                finding("an ElementResult decoded with both or neither of value and error");
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Exceptions

void decode_exception(std::span<const char> payload)
{
    std::exception_ptr error;
    expect_clean("decode_exception", [&] {
        WireReader in(payload);
        error = futura::detail::decode_exception(in);
        if (!error) {
            finding("decode_exception returned no exception");
        }
    });
    if (!error) {
        return;
    }
    // The parent rethrows it from Future::result() and reads what().
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        const std::string what = e.what();
        (void)what;
    } catch (...) {
        finding("decode_exception rebuilt an exception not derived from std::exception");
    }
}

// ---------------------------------------------------------------------------------------------
// Calls and function addresses

struct ModuleSearch
{
    const void* address;
    std::string name;
    bool found = false;
};

/// Independent check of decode_function_address's contract: the address lies in an executable
/// segment of the loaded module it was named by.
bool in_executable_segment_of(const void* address, const std::string& module)
{
    ModuleSearch search{address, module};
    dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* data) {
            auto& s = *static_cast<ModuleSearch*>(data);
            const std::string name = info->dlpi_name != nullptr ? info->dlpi_name : "";
            const auto at = reinterpret_cast<std::uintptr_t>(s.address);
            for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
                const auto& segment = info->dlpi_phdr[i];
                const auto begin = info->dlpi_addr + segment.p_vaddr;
                if (segment.p_type == PT_LOAD && (segment.p_flags & PF_X) != 0 && at >= begin &&
                    at - begin < segment.p_memsz && name == s.name) {
                    s.found = true;
                    return 1;
                }
            }
            return 0;
        },
        &search);
    return search.found;
}

void decode_address(WireReader& in, std::string_view step)
{
    // What it was asked for, read the way the encoding is documented: module name, offset.
    WireReader peek = in;
    std::string module;
    try {
        module = std::string(peek.string());
    } catch (const ProtocolError&) {
    }
    const void* function = futura::detail::decode_function_address(in);
    if (function == nullptr || !in_executable_segment_of(function, module)) {
        finding(std::string(step) + " returned an address outside the executable code of module '" +
                module + "'");
    }
    // Never code of the system's libraries (libc's _exit, system): no program sends those as
    // bare pointers (issue 9, item 2).
    for (const std::string_view system : {"/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/"}) {
        if (module.starts_with(system)) {
            finding(std::string(step) + " accepted a function of a system library: " + module);
        }
    }
    // Not called: a function entry of the program is all the library can check, and calling
    // an arbitrary one of the fuzz target's own functions proves nothing.
}

void call_path(std::span<const char> payload)
{
    expect_clean("the worker's call path", [&] {
        WireReader in(payload);
        const auto id = in.u64();
        const RemoteInvoker invoker = futura::detail::find_remote_invoker(id);
        const auto& calls = registered();
        const auto known = std::find_if(calls.begin(), calls.end(),
                                        [&](const Registered& call) { return call.id == id; });
        if (known == calls.end() || known->invoker != invoker) {
            finding("find_remote_invoker(" + std::to_string(id) +
                    ") returned an invoker this program did not register under that id");
        }
        WireWriter result;
        if (id == TwiceCall::id) {
            // The invoker would call whatever function the address names: run it only for the
            // one function this program sends, and check the address contract otherwise.
            WireReader peek = in;
            if (futura::detail::decode_function_address(peek) !=
                reinterpret_cast<const void*>(&twice)) {
                decode_address(in, "TwiceCall's decode_callable");
                return;
            }
        } else if (!fuzz_boost_path) {
            return; // these call types' callables or arguments take the Boost path: see above
        }
        invoker(in, result); // decodes the callable and the arguments, runs, encodes the result
    });
    expect_clean("decode_function_address", [&] {
        WireReader in(payload);
        decode_address(in, "decode_function_address");
    });
}

// ---------------------------------------------------------------------------------------------
// Frames

/// A frame as received, with its payload copied out of the receive buffer.
struct Received
{
    FrameKind kind;
    std::uint64_t task_id;
    std::string payload;
    bool operator==(const Received&) const = default;
};

struct Parsed
{
    std::vector<Received> frames;
    bool failed = false; // parse_frame threw ProtocolError
};

/// What parse_frame made of the bytes at the start of a buffer.
struct Step
{
    bool rejected = false;      // ProtocolError: the receiver gives up on the channel
    std::optional<Frame> frame; // neither: it waits for more bytes
};

Step parse_one(std::span<const char> bytes)
{
    Step step;
    step.rejected =
        !expect_clean("parse_frame", [&] { step.frame = futura::detail::parse_frame(bytes); });
    if (step.rejected) {
        return step;
    }
    FrameHeader header;
    if (bytes.size() < sizeof header) {
        if (step.frame) {
            finding("parse_frame returned a frame from fewer bytes than a header");
        }
        return step;
    }
    std::memcpy(&header, bytes.data(), sizeof header);
    if (!step.frame) {
        // Waiting must mean the frame is incomplete, or the receiver would wait for ever.
        if (header.payload_size <= bytes.size() - sizeof header) {
            finding("parse_frame asked for more bytes although the whole frame is there");
        }
        return step;
    }
    const auto& frame = *step.frame;
    if (frame.size != sizeof header + frame.payload.size() || frame.size > bytes.size() ||
        frame.payload.data() != bytes.data() + sizeof header || frame.kind != header.kind ||
        frame.task_id != header.task_id || frame.payload.size() != header.payload_size ||
        frame.unread != 0) {
        finding("parse_frame returned a frame that does not match the bytes it parsed");
    }
    return step;
}

/// parse_frame_start, which may hand out a frame before all of it is in: the same frame as
/// parse_frame once it is whole, and before, only once its checked prefix is in, with sizes
/// that add up to what the header announced.
void check_frame_start(std::span<const char> bytes, const Step& whole)
{
    if (whole.rejected || bytes.size() < sizeof(FrameHeader)) {
        return;
    }
    std::optional<Frame> start;
    if (!expect_clean("parse_frame_start",
                      [&] { start = futura::detail::parse_frame_start(bytes, 1); })) {
        if (whole.frame) {
            finding("parse_frame_start refused a frame parse_frame accepted");
        }
        return; // refused early: a prefix whose MAC fails, which parse_frame will refuse too
    }
    if (whole.frame) {
        if (!start || start->size != whole.frame->size || start->unread != 0 ||
            start->payload.data() != whole.frame->payload.data() ||
            start->payload.size() != whole.frame->payload.size()) {
            finding("parse_frame_start and parse_frame disagree on a whole frame");
        }
        return;
    }
    if (!start) {
        return;
    }
    FrameHeader header;
    std::memcpy(&header, bytes.data(), sizeof header);
    if (start->payload.size() < FrameHeader::checked_prefix || start->unread == 0 ||
        start->payload.size() + start->unread != header.payload_size ||
        start->size != bytes.size() || start->payload.data() != bytes.data() + sizeof header) {
        finding("parse_frame_start handed out a frame start that does not match its header");
    }
}

/// Parses `stream` as the worker loop does: every complete frame buffered, then more bytes.
/// `chunk` == 0 delivers it in one read.
template <class OnFrame>
Parsed receive(std::span<const char> stream, std::size_t chunk, const OnFrame& on_frame)
{
    Parsed parsed;
    std::vector<char> in;
    std::size_t delivered = 0;
    for (;;) {
        std::size_t consumed = 0;
        for (;;) {
            const auto step = parse_one(std::span<const char>(in).subspan(consumed));
            check_frame_start(std::span<const char>(in).subspan(consumed), step);
            if (step.rejected) {
                parsed.failed = true;
                return parsed;
            }
            if (!step.frame) {
                break;
            }
            const auto& frame = *step.frame;
            on_frame(frame);
            parsed.frames.push_back(
                {frame.kind, frame.task_id, {frame.payload.data(), frame.payload.size()}});
            consumed += frame.size;
        }
        in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(consumed));
        if (delivered == stream.size()) {
            return parsed;
        }
        const auto n = chunk == 0 ? stream.size() : std::min(chunk, stream.size() - delivered);
        in.insert(in.end(), stream.begin() + static_cast<std::ptrdiff_t>(delivered),
                  stream.begin() + static_cast<std::ptrdiff_t>(delivered + n));
        delivered += n;
    }
}

void decode_payload(std::span<const char> payload)
{
    decode_exception(payload);
    decode_values(payload);
    call_path(payload);
}

void fuzz_one(const std::uint8_t* data, std::size_t size)
{
    if (size == 0) {
        return;
    }
    const auto flags = data[0];
    tail_split = flags >> 1U;
    std::vector<char> stream(data + 1, data + size);
    if ((flags & 1U) != 0) {
        repair_checks(stream);
    }
    const auto whole =
        receive(stream, 0, [](const Frame& frame) { decode_payload(frame.payload); });
    if (const std::size_t chunk = flags >> 1U; chunk != 0) {
        const auto pieces = receive(stream, chunk, [](const Frame&) {});
        if (pieces.frames != whole.frames || pieces.failed != whole.failed) {
            finding("the stream read in pieces of " + std::to_string(chunk) +
                    " bytes gives other frames than read whole");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds: well-formed streams from the library's own encoders.

void write_seed(const std::string& dir, const std::string& name, std::uint8_t flags,
                const std::vector<char>& stream)
{
    std::ofstream out(dir + "/" + name, std::ios::binary);
    out.put(static_cast<char>(flags));
    out.write(stream.data(), static_cast<std::streamsize>(stream.size()));
    if (!out) {
        std::fprintf(stderr, "cannot write %s/%s\n", dir.c_str(), name.c_str());
        std::exit(1);
    }
}

template <class T>
std::vector<char> frame_of(FrameKind kind, const T& value)
{
    std::vector<char> frame;
    futura::detail::append_frame(frame, kind, 1, encode(value));
    return frame;
}

std::vector<char> exception_frame(const std::exception_ptr& error)
{
    WireWriter payload;
    futura::detail::encode_exception(payload, error, "#0 somewhere\n#1 main\n");
    std::vector<char> frame;
    futura::detail::append_frame(frame, FrameKind::exception, 2, payload.buffer());
    return frame;
}

void write_seeds(const std::string& dir)
{
    std::vector<std::pair<std::string, std::vector<char>>> frames;
    frames.emplace_back("value-int", frame_of(FrameKind::value, 42));
    frames.emplace_back("value-string", frame_of(FrameKind::value, std::string("hello")));
    frames.emplace_back("value-vector-double",
                        frame_of(FrameKind::value, std::vector<double>{1.5, -2.0, 1e300}));
    frames.emplace_back("value-vector-string",
                        frame_of(FrameKind::value, std::vector<std::string>{"a", "", "bcd"}));
    frames.emplace_back(
        "value-map", frame_of(FrameKind::value, std::map<std::string, int>{{"x", 1}, {"yz", 2}}));
    frames.emplace_back("value-sample",
                        frame_of(FrameKind::value, Sample{7, 0.5, "seven", {1, 2, 3}, true}));
    frames.emplace_back("value-optional",
                        frame_of(FrameKind::value, std::optional<std::vector<int>>{{4, 5}}));
    frames.emplace_back("value-optional-empty",
                        frame_of(FrameKind::value, std::optional<std::vector<int>>{}));
    frames.emplace_back("value-tuple",
                        frame_of(FrameKind::value, std::tuple<int, std::string>{9, "nine"}));
    frames.emplace_back(
        "value-chunk",
        frame_of(FrameKind::value,
                 std::vector<ElementResult<int>>{
                     {3, nullptr},
                     {std::nullopt, std::make_exception_ptr(std::out_of_range("index 3"))}}));
    frames.emplace_back("exception-runtime-error",
                        exception_frame(std::make_exception_ptr(std::runtime_error("boom"))));
    frames.emplace_back("exception-futura",
                        exception_frame(std::make_exception_ptr(futura::CancelledError())));
    frames.emplace_back("exception-remote",
                        exception_frame(std::make_exception_ptr(
                            futura::RemoteError("my::Error", "it broke", "#0 far away\n"))));
    frames.emplace_back("exception-unknown", exception_frame(std::make_exception_ptr(42)));
    frames.emplace_back("exception-registered",
                        exception_frame(std::make_exception_ptr(Overdrawn(7, "overdrawn"))));
    frames.emplace_back("exception-bad-alloc",
                        exception_frame(std::make_exception_ptr(std::bad_alloc())));

    const auto call_frame = [](auto encode_call) {
        WireWriter payload;
        encode_call(payload);
        std::vector<char> frame;
        futura::detail::append_frame(frame, FrameKind::call, 3, payload.buffer());
        return frame;
    };
    frames.emplace_back("call-count", call_frame([](WireWriter& out) {
                            CountCall::encode(out, CountChars{}, {"ab", "c"}, {1, "d"});
                        }));
    frames.emplace_back("call-summarize", call_frame([](WireWriter& out) {
                            SummarizeCall::encode(out, Summarize{}, {{"k", 1}},
                                                  Sample{1, 2, "s", {3}, false}, {4.0});
                        }));
    frames.emplace_back("call-prefix", call_frame([](WireWriter& out) {
                            PrefixCall::encode(out, Prefix{"pre-"}, "fix");
                        }));
    frames.emplace_back("call-twice",
                        call_frame([](WireWriter& out) { TwiceCall::encode(out, &twice, 21); }));
    {
        WireWriter payload;
        TwiceCall::encode(payload, &twice, 21); // an initializer travels as a call does
        std::vector<char> frame;
        futura::detail::append_frame(frame, FrameKind::initialize, 0, payload.buffer());
        frames.emplace_back("initialize", std::move(frame));
    }
    {
        WireWriter payload;
        payload.raw(static_cast<std::int64_t>(::getpid()));
        std::vector<char> frame;
        futura::detail::append_frame(frame, FrameKind::ready, 0, payload.buffer());
        frames.emplace_back("ready", std::move(frame));
    }

    std::vector<char> all;
    for (const auto& [name, frame] : frames) {
        write_seed(dir, name, 0x01, frame);
        all.insert(all.end(), frame.begin(), frame.end());
    }
    write_seed(dir, "stream-checked", 0x00, all);                  // checksums as sent
    write_seed(dir, "stream-in-reads-of-7", 0x01 | (7 << 1), all); // and delivered piecemeal
}

} // namespace fuzz

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv)
{
    futura::detail::adopt_channel_key(fuzz::fuzz_key);
    constexpr std::string_view flag = "-write_seeds=";
    for (int i = 1; i < *argc; ++i) {
        const std::string_view arg = (*argv)[i];
        if (arg.rfind(flag, 0) == 0) {
            fuzz::write_seeds(std::string(arg.substr(flag.size())));
            std::exit(0);
        }
    }
    if (!fuzz::overdrawn_travels) {
        fuzz::finding("register_exception did not register");
    }
    // Every call type this program registered resolves to its own invoker.
    for (const auto& call : fuzz::registered()) {
        if (futura::detail::find_remote_invoker(call.id) != call.invoker) {
            fuzz::finding("a registered call type does not resolve to its invoker");
        }
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    fuzz::fuzz_one(data, size);
    return 0;
}
