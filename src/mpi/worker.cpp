// A worker rank: receives calls from its root, runs them one at a time, answers each before the
// next starts. The same program as the root (every rank runs one executable, checked through
// the build identity it reports), so calls name their code as in a process pool.
#include <futura/detail/mpi_message.hpp>
#include <futura/detail/mpi_runtime.hpp>
#include <futura/detail/protocol.hpp>
#include <futura/detail/remote_call.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <span>
#include <unistd.h>

namespace futura::detail::mpi {

namespace {

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

/// Runs the call or initializer in `in` and answers it.
void run(MPI_Comm comm, int root, const Incoming& in)
{
    WireReader call(std::span<const char>(in.bytes).subspan(in.body_offset()));
    // Decoded arguments may borrow from the message (a std::span's copy): kept until answered.
    Attachments call_attachments;
    call.attach(call_attachments);
    auto message = begin_message();
    WireWriter result(message);
    std::uint64_t id = 0;
    Tag tag = Tag::value;
    const bool initializer = in.tag == Tag::initialize;
    try {
        if (!initializer) {
            id = call.u64();
        }
    } catch (const std::exception& e) {
        bad_message(e);
    }
    result.u64(id);
    const auto run_time_at = message.size();
    result.u64(0);
    const auto began = std::chrono::steady_clock::now();
    try {
        if (initializer) {
            auto* function = reinterpret_cast<void (*)()>( // NOLINT: validated address
                const_cast<void*>(decode_function_address(call)));
            function();
        } else {
            const auto invoker = find_remote_invoker(call.u64());
            invoker(call, result);
        }
    } catch (...) {
        tag = initializer ? Tag::initialize_failed : Tag::exception;
        message.resize(run_time_at + sizeof(std::uint64_t)); // drop a partly encoded result
        encode_exception(result, std::current_exception(), {});
    }
    const auto nanoseconds =
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::steady_clock::now() - began)
                                       .count());
    std::memcpy(message.data() + run_time_at, &nanoseconds, sizeof nanoseconds);
    answer(comm, root, tag, std::move(message));
}

} // namespace

bool serve(MPI_Comm comm, int root, bool until_exit)
{
    // An idle worker sleeps up to a millisecond between polls: cheap while the pool is idle;
    // the root sends calls ahead while a worker is busy, so a loaded pool rarely waits on it.
    Backoff backoff(std::chrono::milliseconds(1));
    for (;;) {
        std::optional<Incoming> in;
        try {
            const std::lock_guard guard(lock());
            in = try_receive(comm, root);
        } catch (const std::exception& e) {
            bad_message(e);
        }
        if (!in) {
            backoff.pause();
            continue;
        }
        backoff.reset();
        switch (in->tag) {
        case Tag::hello:
            say_ready(comm, root);
            break;
        case Tag::initialize:
        case Tag::call:
            run(comm, root, *in);
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
