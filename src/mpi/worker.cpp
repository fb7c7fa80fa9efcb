// A worker rank: receives calls from its root, runs them one at a time, answers each before the
// next starts. The same program as the root (every rank runs one executable, checked through
// the build identity it reports), so calls name their code as in a process pool.
//
// Calls the root sent ahead wait in an inbox here. While a call runs, a watcher thread keeps
// receiving, so that the root's requests to give back calls not started (for an idle worker)
// are answered within a fraction of a millisecond, not after the running call.
#include <futura/detail/mpi_message.hpp>
#include <futura/detail/mpi_runtime.hpp>
#include <futura/detail/protocol.hpp>
#include <futura/detail/remote_call.hpp>
#include <futura/detail/worker.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <span>
#include <thread>
#include <unistd.h>

namespace futura::detail::mpi {

namespace {

/// How long a call runs before the watcher starts receiving beside it, and how often it looks
/// then: short calls pay nothing for it, and a revocation waits at most about this long.
constexpr auto watch_interval = std::chrono::microseconds(500);

[[noreturn]] void bad_message(const std::exception& e)
{
    // Nothing can be trusted past corrupted bytes: say why and leave.
    std::fprintf(stderr, "futura MPI worker %d: %s\n", static_cast<int>(::getpid()), e.what());
    std::_Exit(4);
}

void answer(MPI_Comm comm, int root, Tag tag, std::vector<char> message)
{
    seal(message);
    const std::lock_guard guard(lock());
    send_blocking(comm, root, tag, std::move(message));
}

void say_ready(MPI_Comm comm, int root)
{
    auto message = begin_message();
    WireWriter out(message);
    out.string(host_name());
    out.u64(static_cast<std::uint64_t>(::getpid()));
    const char* pretend = std::getenv(pretend_build_variable);
    out.string(pretend != nullptr ? std::string(pretend) : build_identity());
    answer(comm, root, Tag::ready, std::move(message));
}

/// A message from the root, with the id of the call it carries (0 if none).
struct Received
{
    Incoming in;
    std::uint64_t id = 0;
};

/// Runs the call or initializer in `message` and answers it.
void run(MPI_Comm comm, int root, const Received& message)
{
    const Incoming& in = message.in;
    WireReader call(std::span<const char>(in.bytes).subspan(in.body_offset()));
    // Decoded arguments may borrow from the message (a std::span's copy): kept until answered.
    Attachments call_attachments;
    call.attach(call_attachments);
    auto out = begin_message();
    WireWriter result(out);
    Tag tag = Tag::value;
    const bool initializer = in.tag == Tag::initialize;
    if (!initializer) {
        (void)call.u64(); // the id, read when it came
    }
    result.u64(message.id);
    const auto run_time_at = out.size();
    result.u64(0);
    const auto began = std::chrono::steady_clock::now();
    try {
        // The initializer comes as a task's call does (its result, none, is not looked at).
        const auto invoker = find_remote_invoker(call.u64());
        invoker(call, result);
    } catch (...) {
        tag = initializer ? Tag::initialize_failed : Tag::exception;
        out.resize(run_time_at + sizeof(std::uint64_t)); // drop a partly encoded result
        encode_exception(result, std::current_exception(), current_exception_trace());
    }
    const auto nanoseconds =
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::steady_clock::now() - began)
                                       .count());
    std::memcpy(out.data() + run_time_at, &nanoseconds, sizeof nanoseconds);
    answer(comm, root, tag, std::move(out));
}

/// The worker's inbox and its watcher thread.
class Server
{
public:
    Server(MPI_Comm comm, int root) : comm_(comm), root_(root)
    {
        watcher_ = std::thread([this] { watch(); });
    }
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;
    ~Server()
    {
        {
            const std::lock_guard guard(mutex_);
            stop_ = true;
        }
        wake_.notify_one();
        watcher_.join(); // it makes no MPI call on `comm` after this
    }

    /// The next message to act on, oldest first; none if nothing came.
    std::optional<Received> next()
    {
        {
            const std::lock_guard guard(mutex_);
            if (!inbox_.empty()) {
                Received message = std::move(inbox_.front());
                inbox_.pop_front();
                return message;
            }
        }
        // What the watcher received meanwhile (it may still have been receiving when the call
        // ended) is queued before what this receives, so look at the inbox either way.
        (void)receive_one();
        const std::lock_guard guard(mutex_);
        if (inbox_.empty()) {
            return std::nullopt; // nothing came, or a revocation, answered
        }
        Received message = std::move(inbox_.front());
        inbox_.pop_front();
        return message;
    }

    /// Runs a call or the initializer, with the watcher receiving beside it if it runs long.
    void run_watched(const Received& message)
    {
        {
            const std::lock_guard guard(mutex_);
            call_began_ = std::chrono::steady_clock::now();
            in_call_ = true;
        }
        if (watcher_asleep_.load(std::memory_order_acquire)) {
            wake_.notify_one();
        }
        run(comm_, root_, message);
        const std::lock_guard guard(mutex_);
        in_call_ = false;
    }

private:
    /// Receives one message if one came: a revocation is answered at once, anything else
    /// queued. @return whether one came.
    bool receive_one()
    {
        // Receiving and queueing are one step for the two threads that receive: the watcher,
        // ending its round as a call ends, and the loop, looking for the next call, could
        // otherwise each receive one message and queue them in the wrong order, and this
        // worker would run (and answer) a later call first.
        const std::lock_guard receiving(receive_mutex_);
        std::optional<Incoming> in;
        try {
            const std::lock_guard guard(lock());
            in = try_receive(comm_, root_);
        } catch (const std::exception& e) {
            bad_message(e);
        }
        if (!in) {
            return false;
        }
        try {
            if (in->tag == Tag::revoke) {
                give_back(*in);
                return true;
            }
            Received message;
            if (in->tag == Tag::call) {
                WireReader reader(std::span<const char>(in->bytes).subspan(in->body_offset()));
                message.id = reader.u64();
            }
            message.in = std::move(*in);
            const std::lock_guard guard(mutex_);
            inbox_.push_back(std::move(message));
        } catch (const std::exception& e) {
            bad_message(e);
        }
        return true;
    }

    /// Answers a revocation: the calls still in the inbox are given back (and never run here).
    void give_back(const Incoming& in)
    {
        WireReader reader(std::span<const char>(in.bytes).subspan(in.body_offset()));
        const auto count = reader.u64();
        if (count > in.bytes.size()) {
            throw ProtocolError("futura: a revocation names more calls than its size holds");
        }
        auto message = begin_message();
        WireWriter out(message);
        out.u64(count);
        {
            const std::lock_guard guard(mutex_);
            for (std::uint64_t k = 0; k < count; ++k) {
                const auto id = reader.u64();
                const auto found =
                    std::find_if(inbox_.begin(), inbox_.end(), [&](const Received& r) {
                        return r.in.tag == Tag::call && r.id == id;
                    });
                const bool given_back = found != inbox_.end();
                if (given_back) {
                    inbox_.erase(found);
                }
                out.u64(id);
                out.u64(given_back ? 1U : 0U);
            }
        }
        answer(comm_, root_, Tag::revoked, std::move(message));
    }

    /// The watcher: receives beside a call that runs longer than `watch_interval`; sleeps while
    /// none runs.
    void watch()
    {
        std::unique_lock guard(mutex_);
        while (!stop_) {
            if (!in_call_) {
                watcher_asleep_.store(true, std::memory_order_release);
                wake_.wait(guard, [&] { return stop_ || in_call_; });
                watcher_asleep_.store(false, std::memory_order_release);
                continue;
            }
            wake_.wait_for(guard, watch_interval);
            if (stop_ || !in_call_ ||
                std::chrono::steady_clock::now() - call_began_ < watch_interval) {
                continue;
            }
            guard.unlock();
            while (receive_one()) {
            }
            guard.lock();
        }
    }

    MPI_Comm comm_;
    int root_;
    std::mutex receive_mutex_; // held by the thread receiving a message until it is queued
    std::mutex mutex_;         // guards everything below but the watcher's thread
    std::condition_variable wake_;
    std::deque<Received> inbox_;
    bool stop_ = false;
    bool in_call_ = false;
    std::chrono::steady_clock::time_point call_began_;
    std::atomic<bool> watcher_asleep_{false};
    std::thread watcher_;
};

} // namespace

bool serve(MPI_Comm comm, int root, bool until_exit)
{
    // A task's exception carries the stack it was thrown from, as from a process worker; an
    // SPMD rank stops paying for that when it goes back to its program.
    record_exception_traces(true);
    struct StopRecording
    {
        StopRecording() = default;
        StopRecording(const StopRecording&) = delete;
        StopRecording& operator=(const StopRecording&) = delete;
        ~StopRecording() { record_exception_traces(false); }
    } stop_recording;
    Server server(comm, root);
    // An idle worker sleeps up to a millisecond between polls: cheap while the pool is idle;
    // the root sends calls ahead while a worker is busy, so a loaded pool rarely waits on it.
    Backoff backoff(std::chrono::milliseconds(1));
    for (;;) {
        auto message = server.next();
        if (!message) {
            backoff.pause();
            continue;
        }
        backoff.reset();
        switch (message->in.tag) {
        case Tag::hello:
            say_ready(comm, root);
            break;
        case Tag::initialize:
        case Tag::call:
            server.run_watched(*message);
            break;
        case Tag::goodbye:
            if (!until_exit) {
                return false;
            }
            break; // a pre-started worker waits for the next executor
        case Tag::exit:
            return true;
        default:
            bad_message(ProtocolError("futura: an MPI worker received a message meant for the "
                                      "root"));
        }
    }
}

} // namespace futura::detail::mpi
