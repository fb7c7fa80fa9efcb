// A worker process: reads call frames from its channel, runs them one at a time, and writes
// back results. It is this same program, started by the pool with a marker in its environment;
// the wrapped `main` below sends it here after static initialisation, so `main` never runs.
#include <futura/current_worker.hpp>
#include <futura/detail/answer_ring.hpp>
#include <futura/detail/call_claims.hpp>
#include <futura/detail/channel.hpp>
#include <futura/detail/deadline.hpp>
#include <futura/detail/element_result.hpp>
#include <futura/detail/protocol.hpp>
#include <futura/detail/remote_call.hpp>
#include <futura/detail/segment_cache.hpp>
#include <futura/detail/worker.hpp>

#include <boost/stacktrace.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cxxabi.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <optional>
#include <poll.h>
#include <sched.h>
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
std::atomic<BeforeMainHook> before_main_hook{nullptr};
std::atomic<bool> forked_worker{false};

/// Where the latest exception of this thread was thrown, recorded by the `__cxa_throw` below
/// while this process is a worker: by the time a task's exception reaches the worker loop, the
/// stack it was thrown from is gone.
struct ThrowSite
{
    const void* object = nullptr; // the exception object, to match it with what is caught
    boost::stacktrace::stacktrace trace{0, 0};
    bool recording = false; // taking the trace may throw and catch inside: do not recurse
};

/// How long a worker that has run out of calls looks for the next before it sleeps.
constexpr auto idle_spin = std::chrono::microseconds(50);

std::atomic<bool> record_throw_sites{false};

/// The stack `returns` with each return address moved back one byte, into the call it returns
/// from: a frame that called a function that never returns (`throw`, at the end of a function)
/// has a return address past its own code, and would be named after whatever the linker put
/// next (seen under ASan: a shared_ptr deleter instead of the function that threw).
boost::stacktrace::stacktrace calls_of(const boost::stacktrace::stacktrace& returns)
{
    std::vector<boost::stacktrace::frame::native_frame_ptr_t> calls;
    calls.reserve(returns.size());
    for (const auto& frame : returns) {
        calls.push_back(static_cast<const char*>(frame.address()) - 1);
    }
    return boost::stacktrace::stacktrace::from_dump(calls.data(), calls.size() * sizeof(calls[0]));
}
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

/// The loop of a worker process: reads frames, runs each call the parent has not taken back,
/// and answers it before starting the next.
class WorkerLoop
{
public:
    WorkerLoop(int fd, bool forked, std::size_t share_threshold, std::size_t segment_cache_bytes)
        : fd_(fd), forked_(forked), share_threshold_(share_threshold),
          segment_cache_(segment_cache_bytes)
    {
        // A worker may block on its parent: a large call is decoded as it arrives, its large
        // vectors read from the socket straight into their storage.
        inbox_.read_large_frames_as_decoded(fd_);
    }

    [[noreturn]] void run()
    {
        WireWriter ready;
        ready.raw(static_cast<std::int64_t>(::getpid()));
        append_frame(outbox_.bytes(), FrameKind::ready, 0, ready.buffer());
        flush();
        for (;;) {
            // Each answer goes out before the next call starts: should that call crash the
            // process, the parent must already hold every earlier answer, or it would charge
            // the crash to a call that had finished.
            for (;;) {
                Attachments attachments;
                std::optional<Frame> frame;
                try {
                    frame = inbox_.next(attachments);
                } catch (const std::exception& e) {
                    bad_message(e);
                }
                if (!frame) {
                    break;
                }
                handle(*frame, attachments);
            }
            ssize_t n = 0;
            try {
                n = receive_next();
            } catch (const std::exception& e) {
                bad_message(e);
            }
            if (n <= 0) {
                leave(); // the parent closed the channel (shutdown, or it died)
            }
        }
    }

private:
    /// Reads the parent's next bytes, looking for them for up to `idle_spin` before sleeping:
    /// the parent sends calls in bursts, so a worker that has just answered usually gets the
    /// next one within microseconds, and waking a sleeping CPU of a virtual machine costs tens
    /// of them (W4, W5 in doc/benchmarks.md). It yields between looks: on a busy machine the
    /// parent may be waiting for this very CPU to send the next call.
    ssize_t receive_next()
    {
        const auto until = std::chrono::steady_clock::now() + idle_spin;
        do {
            const auto n = inbox_.receive(fd_, /*nonblocking=*/true);
            if (n >= 0 || errno != EAGAIN) {
                return n;
            }
            ::sched_yield(); // the parent may need this CPU to send what we wait for
        } while (std::chrono::steady_clock::now() < until);
        wait_for_input();
        return inbox_.receive(fd_, /*nonblocking=*/false);
    }

    /// Waits for the parent's next bytes; warm segments held meanwhile are given back once the
    /// worker has been idle for segment_idle.
    void wait_for_input()
    {
        while (segment_cache_.held_bytes() != 0) {
            pollfd ready{fd_, POLLIN, 0};
            const auto waited = ::poll(
                &ready, 1,
                static_cast<int>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(segment_idle).count()));
            if (waited != 0) {
                return; // input, or an error the receive will report
            }
            segment_cache_.trim(segment_idle);
        }
    }

    /// Nothing can be trusted past corrupted bytes: say why and leave.
    [[noreturn]] static void bad_message(const std::exception& e)
    {
        std::fprintf(stderr, "futura worker %d: %s\n", static_cast<int>(::getpid()), e.what());
        std::_Exit(4);
    }

    /// `call_attachments` live until the answer is encoded: decoded spans point into shared
    /// memory that they keep mapped.
    void handle(const Frame& frame, Attachments& call_attachments)
    {
        try {
            switch (frame.kind) {
            case FrameKind::claims:
                if (call_attachments.descriptors.size() != 1 || claims_) {
                    throw ProtocolError("futura: a worker received a bad claim table");
                }
                claims_.emplace(CallClaims::open(std::move(call_attachments.descriptors[0])));
                set_process_worker({.index = frame.task_id,
                                    .pid = static_cast<int>(::getpid()),
                                    .name = "futura-worker-" + std::to_string(frame.task_id)});
                return;
            case FrameKind::ring:
                if (call_attachments.descriptors.size() != 1 || ring_) {
                    throw ProtocolError("futura: a worker received a bad answer ring");
                }
                ring_.emplace(AnswerRing::open(std::move(call_attachments.descriptors[0])));
                return;
            case FrameKind::call:
                if (!claims_) {
                    throw ProtocolError("futura: a worker received a call before its claim table");
                }
                if (!claims_->claim(frame.task_id)) {
                    return; // the parent took it back: another worker runs it
                }
                break;
            default:
                break; // answered below: the initializer's outcome, or a ProtocolError
            }
        } catch (const std::exception& e) {
            bad_message(e);
        }
        auto& out = outbox_.bytes();
        const auto start = begin_frame(out);
        Attachments result_attachments;
        WireWriter result(out);
        result.attach(result_attachments);
        result.share_threshold(share_threshold_);
        result.segment_cache(&segment_cache_, 0);
        // The answer starts with the call's own run time, for the parent's estimates: it leaves
        // out the channel and the wake-ups, which the parent's clock would include.
        const auto run_time_at = out.size();
        result.u64(0);
        FrameKind answer = FrameKind::value;
        last_throw.object = nullptr;
        const auto began = std::chrono::steady_clock::now();
        try {
            WireReader call(frame.payload, inbox_, frame.unread);
            call.attach(call_attachments);
            if (frame.kind == FrameKind::call || frame.kind == FrameKind::initialize) {
                // The initializer is encoded as a call: a function with its arguments.
                const auto invoker = find_remote_invoker(call.u64());
                invoker(call, result);
            } else {
                throw ProtocolError("futura: a worker received a frame meant for the parent");
            }
        } catch (...) {
            answer = frame.kind == FrameKind::initialize ? FrameKind::initialize_failed
                                                         : FrameKind::exception;
            out.resize(run_time_at + sizeof(std::uint64_t)); // drop a partly encoded result
            result_attachments.descriptors.clear();
            result_attachments.in_place.clear();
            encode_exception(result, std::current_exception(), current_trace());
        }
        const auto nanoseconds =
            static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                           std::chrono::steady_clock::now() - began)
                                           .count());
        std::memcpy(out.data() + run_time_at, &nanoseconds, sizeof nanoseconds);
        finish_frame(out, start, answer, frame.task_id, result_attachments);
        // The answer goes before the call's attachments are released: unmapping a large
        // argument then happens while the caller already has its result. One that refers to a
        // large payload (written from the result's storage) is not in one piece: the socket's.
        const std::uint64_t sequence = answers_++; // numbered on either path
        if (result_attachments.descriptors.empty() && result_attachments.in_place.empty() &&
            into_ring(std::span<const char>(out).subspan(start), sequence)) {
            out.resize(start);
            if (ring_->take_wake_duty()) {
                // The parent went to sleep while the answer was being written: wake it.
                append_frame(out, FrameKind::wake, 0, {});
            }
        } else {
            outbox_.add_attachments(result_attachments);
        }
        flush();
        if (answer == FrameKind::initialize_failed) {
            // The pool is broken: say so, and run nothing more (calls may already be queued).
            std::_Exit(1);
        }
    }

    /// Hands the answer `frame` over through the ring if it can: the parent holds it from then
    /// on, as surely as once it is in the socket, and the socket is written only to wake a
    /// parent that sleeps. @return false if it must go on the socket: the ring is missing (a
    /// hand-started worker) or full, the frame is large, or the parent sleeps (then the answer
    /// itself wakes it). Answers are numbered on either path, so that the parent can put the
    /// two streams back in order.
    bool into_ring(std::span<const char> frame, std::uint64_t sequence)
    {
        return ring_ && !ring_->take_wake_duty() && ring_->try_write(frame, sequence);
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
        if (outbox_.write(fd_, /*nonblocking=*/false) != FrameOutbox::Progress::done) {
            std::_Exit(3); // the parent is gone: nobody to report to
        }
    }

    int fd_;
    bool forked_;
    std::size_t share_threshold_;
    SegmentCache segment_cache_; // warm segments for large results
    FrameInbox inbox_;
    FrameOutbox outbox_;
    std::optional<CallClaims> claims_; // from the parent's first frame
    std::optional<AnswerRing> ring_;   // from the parent, before any call
    std::uint64_t answers_ = 0;        // answers given, through the ring or the socket
};

/// A spawned worker's first step: it is killed when the thread that started it ends (the
/// pool's I/O thread, which lives as long as the pool), and leaves at once if its `parent` (a
/// pid in decimal; null: unknown) is gone already.
void die_with_parent(const char* parent)
{
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (parent != nullptr && ::getppid() != std::atoi(parent)) {
        std::_Exit(1); // it died before prctl took effect: we belong to no pool
    }
}

} // namespace

bool main_is_wrapped() noexcept { return wrapped.load(std::memory_order_relaxed); }

void set_before_main_hook(BeforeMainHook hook) noexcept
{
    before_main_hook.store(hook, std::memory_order_release);
}

void record_exception_traces(bool on) noexcept
{
    record_throw_sites.store(on, std::memory_order_relaxed);
    element_trace = on ? &current_trace : nullptr;
}

std::string current_exception_trace() { return current_trace(); }

void run_worker(int fd, bool forked, std::size_t share_threshold, std::size_t segment_cache_bytes)
{
    // Ctrl-C reaches the whole foreground process group; the parent decides what happens to
    // running work, so workers ignore it.
    std::signal(SIGINT, SIG_IGN);
    // A spawned worker starts with it blocked (a Ctrl-C before this point is pending, and
    // ignoring it discarded it); the programs its tasks start get the usual mask.
    sigset_t interrupt;
    sigemptyset(&interrupt);
    sigaddset(&interrupt, SIGINT);
    ::pthread_sigmask(SIG_UNBLOCK, &interrupt, nullptr);
    // Tasks that start pools of their own must not take themselves for workers, and the
    // programs tasks start must not learn the channel key.
    ::unsetenv(worker_channel_variable);
    ::unsetenv(worker_key_variable);
    ::unsetenv(worker_parent_variable);
    ::unsetenv(worker_share_threshold_variable);
    ::unsetenv(worker_segment_cache_variable);
    // The channel is this process's alone: a program a task starts must not inherit it.
    (void)::fcntl(fd, F_SETFD, FD_CLOEXEC);
    forked_worker.store(forked, std::memory_order_relaxed);
    record_throw_sites.store(true, std::memory_order_relaxed);
    element_trace = &current_trace; // a map chunk's failed elements carry their stacks too
    WorkerLoop(fd, forked, share_threshold, segment_cache_bytes).run();
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
        site.trace = futura::detail::calls_of(boost::stacktrace::stacktrace(1, 64)); // not this
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
        futura::detail::die_with_parent(std::getenv(futura::detail::worker_parent_variable));
        const char* key_text = std::getenv(futura::detail::worker_key_variable);
        const auto key = futura::detail::key_from_text(key_text != nullptr ? key_text : "");
        if (!key) {
            std::fprintf(stderr, "futura worker %d: started without a valid channel key\n",
                         static_cast<int>(::getpid()));
            std::_Exit(4);
        }
        futura::detail::adopt_channel_key(*key);
        const char* threshold = std::getenv(futura::detail::worker_share_threshold_variable);
        const char* cache = std::getenv(futura::detail::worker_segment_cache_variable);
        futura::detail::run_worker(std::atoi(channel), /*forked=*/false,
                                   threshold != nullptr ? std::strtoull(threshold, nullptr, 10) : 0,
                                   cache != nullptr ? std::strtoull(cache, nullptr, 10) : 0);
    }
    if (const auto hook = futura::detail::before_main_hook.load(std::memory_order_acquire)) {
        hook(argc, argv);
    }
    return __real_main(argc, argv, envp);
}
