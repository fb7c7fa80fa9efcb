// A worker process: reads call frames from its channel, runs them one at a time, and writes
// back results. It is this same program, started by the pool with a marker in its environment;
// the wrapped `main` below sends it here after static initialisation, so `main` never runs.
#include <futura/detail/channel.hpp>
#include <futura/detail/deadline.hpp>
#include <futura/detail/protocol.hpp>
#include <futura/detail/remote_call.hpp>
#include <futura/detail/worker.hpp>

#include <boost/stacktrace.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cxxabi.h>
#include <dlfcn.h>
#include <optional>
#include <sstream>
#include <string>
#include <sys/prctl.h>
#include <typeinfo>
#include <unistd.h>
#include <vector>

extern "C" int __real_main(int argc, char** argv, char** envp); // NOLINT: the linker's name

namespace futura::detail {

namespace {

std::atomic<bool> wrapped{false};
std::atomic<bool> forked_worker{false};

/// Writes `bytes` with `descriptors` attached to its first bytes, blocking until all is sent.
void write_all(int fd, const std::vector<char>& bytes, std::vector<UniqueFd>& descriptors)
{
    std::size_t done = 0;
    for (std::size_t sent = 0; sent < descriptors.size(); sent += Attachments::max_descriptors) {
        const std::span<const UniqueFd> rest(
            descriptors.begin() + static_cast<std::ptrdiff_t>(sent), descriptors.end());
        if (send_descriptors(fd, std::span<const char>(bytes).subspan(done), rest, false) < 0) {
            std::_Exit(3); // the parent is gone
        }
        ++done; // each control message rides on one byte: a frame has far more than 253 bytes
    }
    descriptors.clear(); // the parent has its own references now
    while (done < bytes.size()) {
        const auto n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            std::_Exit(3); // the parent is gone: nobody to report to
        }
        done += static_cast<std::size_t>(n);
    }
}

/// Where the latest exception of this thread was thrown, recorded by the `__cxa_throw` below
/// while this process is a worker: by the time a task's exception reaches the worker loop, the
/// stack it was thrown from is gone.
struct ThrowSite
{
    const void* object = nullptr; // the exception object, to match it with what is caught
    boost::stacktrace::stacktrace trace{0, 0};
    bool recording = false; // taking the trace may throw and catch inside: do not recurse
};

std::atomic<bool> record_throw_sites{false};
thread_local ThrowSite last_throw;

/// The stack trace of the exception being handled: where it was thrown if that was recorded
/// (it is the latest thrown and the same object), else here.
std::string current_trace()
{
    const void* caught = nullptr;
    try {
        throw;
    } catch (const std::exception& e) {
        caught = &e;
    } catch (...) {
        caught = last_throw.object; // not a class we can take the address of: trust the latest
    }
    std::ostringstream trace;
    if (caught != nullptr && caught == last_throw.object && !last_throw.trace.empty()) {
        trace << last_throw.trace;
    } else {
        trace << boost::stacktrace::stacktrace();
    }
    return std::move(trace).str();
}

class Worker
{
public:
    Worker(int fd, bool forked, std::size_t share_threshold)
        : fd_(fd), forked_(forked), share_threshold_(share_threshold)
    {}

    [[noreturn]] void run()
    {
        WireWriter ready;
        ready.raw(static_cast<std::int64_t>(::getpid()));
        append_frame(out_, FrameKind::ready, 0, ready.buffer());
        flush();
        ReceiveBuffer in;
        std::size_t consumed = 0;
        for (;;) {
            // Each answer goes out before the next task starts: should that task crash the
            // process, the parent must already hold every earlier answer, or it would charge
            // the crash to a task that had finished.
            while (auto frame = next_frame(in, consumed)) {
                handle(*frame);
                consumed += frame->size;
                flush();
            }
            if (consumed == in.size()) {
                clear_buffer(in);
            } else {
                in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(consumed));
            }
            consumed = 0;
            ssize_t n = 0;
            try {
                n = receive_some(fd_, in, received_, /*nonblocking=*/false);
            } catch (const std::exception& e) {
                bad_message(e);
            }
            if (n <= 0) {
                leave(); // the parent closed the channel (shutdown, or it died)
            }
        }
    }

private:
    std::optional<Frame> next_frame(const ReceiveBuffer& in, std::size_t consumed)
    {
        try {
            return parse_frame(std::span<const char>(in).subspan(consumed));
        } catch (const std::exception& e) {
            bad_message(e);
        }
    }

    /// Nothing can be trusted past corrupted bytes: say why and leave.
    [[noreturn]] static void bad_message(const std::exception& e)
    {
        std::fprintf(stderr, "futura worker %d: %s\n", static_cast<int>(::getpid()), e.what());
        std::_Exit(4);
    }

    void handle(const Frame& frame)
    {
        // The call's attachments live until its result is encoded: decoded spans point into
        // shared memory that they keep mapped.
        Attachments call_attachments;
        try {
            claim_descriptors(received_, frame.descriptors, call_attachments);
        } catch (const std::exception& e) {
            bad_message(e);
        }
        const auto start = begin_frame(out_);
        Attachments result_attachments;
        WireWriter result(out_);
        result.attach(result_attachments);
        result.share_threshold(share_threshold_);
        FrameKind answer = FrameKind::value;
        last_throw.object = nullptr;
        try {
            WireReader call(frame.payload);
            call.attach(call_attachments);
            if (frame.kind == FrameKind::call) {
                const auto invoker = find_remote_invoker(call.u64());
                invoker(call, result);
            } else if (frame.kind == FrameKind::initialize) {
                auto* initializer = reinterpret_cast<void (*)()>( // NOLINT: validated address
                    const_cast<void*>(decode_function_address(call)));
                initializer();
            } else {
                throw ProtocolError("futura: a worker received a frame meant for the parent");
            }
        } catch (...) {
            answer = frame.kind == FrameKind::initialize ? FrameKind::initialize_failed
                                                         : FrameKind::exception;
            out_.resize(start + sizeof(FrameHeader)); // drop a partly encoded result
            result_attachments.descriptors.clear();
            encode_exception(result, std::current_exception(), current_trace());
        }
        finish_frame(out_, start, answer, frame.task_id, result_attachments.descriptors.size());
        for (auto& descriptor : result_attachments.descriptors) {
            out_descriptors_.push_back(std::move(descriptor));
        }
        // The answer goes before the call's attachments are released: unmapping a large
        // argument then happens while the caller already has its result.
        flush();
        if (answer == FrameKind::initialize_failed) {
            // The pool is broken: say so, and run nothing more (calls may already be queued).
            flush();
            std::_Exit(1);
        }
    }

    [[noreturn]] void leave()
    {
        if (forked_) {
            std::fflush(nullptr); // what its tasks printed is its own
            std::_Exit(0);
        }
        std::exit(0); // a spawned worker's globals are its own: destroy them as a program does
    }

    void flush()
    {
        if (!out_.empty()) {
            write_all(fd_, out_, out_descriptors_);
            clear_buffer(out_);
        }
    }

    int fd_;
    bool forked_;
    std::size_t share_threshold_;
    std::vector<char> out_;
    std::vector<UniqueFd> out_descriptors_; // attached to the frames in out_
    ReceivedDescriptors received_;          // not yet claimed by a call frame
};

} // namespace

bool main_is_wrapped() noexcept { return wrapped.load(std::memory_order_relaxed); }

void run_worker(int fd, bool forked, std::size_t share_threshold)
{
    // Ctrl-C reaches the whole foreground process group; the parent decides what happens to
    // running work, so workers ignore it.
    std::signal(SIGINT, SIG_IGN);
    // Tasks that start pools of their own must not take themselves for workers.
    ::unsetenv(worker_channel_variable);
    ::unsetenv(worker_share_threshold_variable);
    forked_worker.store(forked, std::memory_order_relaxed);
    record_throw_sites.store(true, std::memory_order_relaxed);
    Worker(fd, forked, share_threshold).run();
}

} // namespace futura::detail

#if defined(__SANITIZE_ADDRESS__)
/// LeakSanitizer's hook, asked at exit. A forked worker's heap is a copy of the parent's whose
/// owners (the parent's other threads) do not exist in it: should a task call `exit`, the leak
/// check would report the parent's live objects as leaks of the worker.
extern "C" int __lsan_is_turned_off() // NOLINT: the sanitizer's name
{
    return futura::detail::forked_worker.load(std::memory_order_relaxed) ? 1 : 0;
}
#endif

/// Interposes the C++ runtime's throw (a program's own definition comes first in symbol lookup,
/// for the calls of libstdc++ too): in a worker, it records where each exception is thrown, so
/// that a task's `RemoteError` carries the stack of the throw rather than of the worker loop.
/// Elsewhere it costs one relaxed load per throw.
/// (Named through an assembler label: libstdc++'s headers declare `__cxa_throw` with another
/// parameter type, which a definition under that name would conflict with.)
extern "C" [[noreturn]] void futura_cxa_throw(void* object, std::type_info* type,
                                              void (*destroy)(void*)) __asm__("__cxa_throw");
extern "C" void futura_cxa_throw(void* object, std::type_info* type, void (*destroy)(void*))
{
    using Throw = void (*)(void*, std::type_info*, void (*)(void*));
    static const auto next_throw =
        reinterpret_cast<Throw>(::dlsym(RTLD_NEXT, "__cxa_throw")); // NOLINT: dlsym's type
    auto& site = futura::detail::last_throw;
    if (futura::detail::record_throw_sites.load(std::memory_order_relaxed) && !site.recording) {
        site.recording = true;
        site.object = object;
        site.trace = boost::stacktrace::stacktrace(1, 64); // without this frame
        site.recording = false;
    }
    next_throw(object, type, destroy);
    std::abort(); // the runtime's throw does not return
}

/// The program's real entry point when linked with `-Wl,--wrap=main` (a usage requirement of
/// futura): static initialisation is over, so globals exist in workers as in the parent.
extern "C" int __wrap_main(int argc, char** argv, char** envp) // NOLINT: the linker's name
{
    futura::detail::wrapped.store(true, std::memory_order_relaxed);
    if (const char* channel = std::getenv(futura::detail::worker_channel_variable)) {
        const char* threshold = std::getenv(futura::detail::worker_share_threshold_variable);
        futura::detail::run_worker(std::atoi(channel), /*forked=*/false,
                                   threshold != nullptr ? std::strtoull(threshold, nullptr, 10)
                                                        : 0);
    }
    return __real_main(argc, argv, envp);
}
