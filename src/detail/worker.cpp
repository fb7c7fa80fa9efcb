// A worker process: reads call frames from its channel, runs them one at a time, and writes
// back results. It is this same program, started by the pool with a marker in its environment;
// the wrapped `main` below sends it here after static initialisation, so `main` never runs.
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
#include <optional>
#include <sstream>
#include <string>
#include <sys/prctl.h>
#include <unistd.h>
#include <vector>

extern "C" int __real_main(int argc, char** argv, char** envp); // NOLINT: the linker's name

namespace futura::detail {

namespace {

std::atomic<bool> wrapped{false};

void write_all(int fd, const std::vector<char>& bytes)
{
    std::size_t done = 0;
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

std::string current_trace()
{
    std::ostringstream trace;
    trace << boost::stacktrace::stacktrace();
    return std::move(trace).str();
}

class Worker
{
public:
    Worker(int fd, bool forked) : fd_(fd), forked_(forked) {}

    [[noreturn]] void run()
    {
        WireWriter ready;
        ready.raw(static_cast<std::int64_t>(::getpid()));
        append_frame(out_, FrameKind::ready, 0, ready.buffer());
        flush();
        std::vector<char> in;
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
            in.erase(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(consumed));
            consumed = 0;
            const auto at = in.size();
            in.resize(at + 64 * 1024);
            const auto n = ::read(fd_, in.data() + at, in.size() - at);
            if (n == 0 || (n < 0 && errno != EINTR)) {
                leave(); // the parent closed the channel (shutdown, or it died)
            }
            in.resize(at + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
        }
    }

private:
    std::optional<Frame> next_frame(const std::vector<char>& in, std::size_t consumed)
    {
        try {
            return parse_frame(std::span<const char>(in).subspan(consumed));
        } catch (const std::exception& e) {
            // Nothing can be trusted past corrupted bytes: say why and leave.
            std::fprintf(stderr, "futura worker %d: %s\n", static_cast<int>(::getpid()), e.what());
            std::_Exit(4);
        }
    }

    void handle(const Frame& frame)
    {
        const auto start = begin_frame(out_);
        WireWriter result(out_);
        FrameKind answer = FrameKind::value;
        try {
            WireReader call(frame.payload);
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
            encode_exception(result, std::current_exception(), current_trace());
        }
        finish_frame(out_, start, answer, frame.task_id);
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
            write_all(fd_, out_);
            out_.clear();
        }
    }

    int fd_;
    bool forked_;
    std::vector<char> out_;
};

} // namespace

bool main_is_wrapped() noexcept { return wrapped.load(std::memory_order_relaxed); }

void run_worker(int fd, bool forked)
{
    // Ctrl-C reaches the whole foreground process group; the parent decides what happens to
    // running work, so workers ignore it.
    std::signal(SIGINT, SIG_IGN);
    // Tasks that start pools of their own must not take themselves for workers.
    ::unsetenv(worker_channel_variable);
    Worker(fd, forked).run();
}

} // namespace futura::detail

/// The program's real entry point when linked with `-Wl,--wrap=main` (a usage requirement of
/// futura): static initialisation is over, so globals exist in workers as in the parent.
extern "C" int __wrap_main(int argc, char** argv, char** envp) // NOLINT: the linker's name
{
    futura::detail::wrapped.store(true, std::memory_order_relaxed);
    if (const char* channel = std::getenv(futura::detail::worker_channel_variable)) {
        futura::detail::run_worker(std::atoi(channel));
    }
    return __real_main(argc, argv, envp);
}
