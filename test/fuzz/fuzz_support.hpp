// What the libFuzzer targets of test/fuzz share: how a finding is reported, what counts as a
// clean failure, and how a mutated stream gets past the frame checks to the decoders.
#pragma once

#include <futura/detail/channel_key.hpp>
#include <futura/detail/protocol.hpp>
#include <futura/detail/wire.hpp>

#include <boost/core/demangle.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cxxabi.h>
#include <dirent.h>
#include <exception>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

namespace fuzz {

using futura::detail::FrameHeader;
using futura::detail::ProtocolError;

[[noreturn]] inline void finding(const std::string& what)
{
    std::fprintf(stderr, "\n==== fuzz finding: %s\n", what.c_str());
    std::fflush(stderr);
    std::abort(); // libFuzzer's deadly-signal handler saves the input
}

template <class T>
std::string type_name()
{
    return boost::core::demangle(typeid(T).name());
}

/// The type and message of the exception being handled, for a finding's report.
inline std::string current_exception_text()
{
    const auto* type = abi::__cxa_current_exception_type();
    std::string what = "(not a std::exception)";
    try {
        throw;
    } catch (const std::exception& e) {
        what = e.what();
    } catch (...) {
    }
    return (type != nullptr ? boost::core::demangle(type->name()) : "?") + ": " + what;
}

/// Whether `error` is the one acceptable failure of a decoder: a ProtocolError whose message
/// says it comes from futura.
inline bool clean_failure(const std::exception& error)
{
    return dynamic_cast<const ProtocolError*>(&error) != nullptr &&
           std::string_view(error.what()).rfind("futura: ", 0) == 0;
}

/// Whether to say on stderr how each step ended (FUTURA_FUZZ_TRACE=1, when replaying an input
/// by hand to see how far it gets).
inline bool tracing()
{
    static const bool on = std::getenv("FUTURA_FUZZ_TRACE") != nullptr;
    return on;
}

/// Runs `decode`; a ProtocolError with a clear message is the one acceptable failure.
/// @return whether `decode` completed (false: it threw ProtocolError).
template <class Decode>
bool expect_clean(std::string_view step, Decode&& decode)
{
    try {
        decode();
        if (tracing()) {
            std::fprintf(stderr, "%.*s: done\n", static_cast<int>(step.size()), step.data());
        }
        return true;
    } catch (const ProtocolError& e) {
        if (tracing()) {
            std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(step.size()), step.data(),
                         e.what());
        }
        if (!clean_failure(e)) {
            finding(std::string(step) + " threw a ProtocolError without a clear message: '" +
                    e.what() + "'");
        }
        return false;
    } catch (...) {
        finding(std::string(step) + " let " + current_exception_text() +
                " escape instead of ProtocolError");
    }
}

/// The channel key of a fuzz process: fixed, so that an input means the same in every run
/// (a saved finding replays) and seeds written by one run are valid frames in the next.
inline constexpr futura::detail::ChannelKey fuzz_key{0x66757a7a2d6b6579, 0x666f722d74657374};

/// Rewrites the MACs of every complete frame whose magic and descriptor count are valid, as
/// the sender would write them (finish_frame, with the channel key; reserved bytes zeroed).
/// The mutator cannot keep a keyed MAC right by itself, so without this almost no mutated
/// frame would get past parse_frame to the payload decoders.
inline void repair_checks(std::vector<char>& stream)
{
    std::size_t at = 0;
    while (stream.size() - at >= sizeof(FrameHeader)) {
        FrameHeader header;
        std::memcpy(&header, stream.data() + at, sizeof header);
        if (header.magic != FrameHeader::expected_magic ||
            header.payload_size > stream.size() - at - sizeof header ||
            header.descriptors > futura::detail::Attachments::max_descriptors) {
            return;
        }
        const auto size = sizeof header + static_cast<std::size_t>(header.payload_size);
        std::vector<char> frame(stream.begin() + static_cast<std::ptrdiff_t>(at),
                                stream.begin() + static_cast<std::ptrdiff_t>(at + size));
        futura::detail::finish_frame(frame, 0, header.kind, header.task_id, header.descriptors);
        std::copy(frame.begin(), frame.end(), stream.begin() + static_cast<std::ptrdiff_t>(at));
        at += size;
    }
}

/// How many descriptors this process holds (entries of /proc/self/fd), or -1 if unknown.
inline long open_descriptors()
{
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) {
        return -1;
    }
    long count = 0;
    while (::readdir(dir) != nullptr) {
        ++count;
    }
    ::closedir(dir);
    return count - 3; // ".", ".." and the directory's own descriptor
}

/// Fails the run if it ends with more descriptors open than it began with: every descriptor
/// the harness makes is closed by the end of its run, so one more is a decoder's leak, and this
/// input is the one that shows it.
class DescriptorWatch
{
public:
    DescriptorWatch() : before_(open_descriptors()) {}
    DescriptorWatch(const DescriptorWatch&) = delete;
    DescriptorWatch& operator=(const DescriptorWatch&) = delete;
    ~DescriptorWatch()
    {
        const long after = open_descriptors();
        if (after > before_) {
            finding("descriptors leak: " + std::to_string(after - before_) +
                    " more open after the run than before it");
        }
    }

private:
    long before_;
};

} // namespace fuzz
