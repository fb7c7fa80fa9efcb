// libFuzzer target: frames that arrive on a real channel with real file descriptors, at either
// end of it.
//
// decode_message.cpp fuzzes the byte-only decoders on a buffer. This target puts the bytes and
// descriptors of the input through a real socketpair, with the production sender
// (FrameOutbox::write, SCM_RIGHTS) and receivers, and decodes what takes descriptors:
//   - worker side (from the parent): FrameInbox::receive/next and claim_descriptors, the claim
//     table (CallClaims::open), calls whose arguments are SharedArray, MappedArray, SharedValue,
//     std::span (shared, copied, inlined), automatically shared vectors and a Boost type holding
//     a SharedArray, and each of those decoders on every frame's payload;
//   - parent side (from a worker, which may be compromised): WorkerChannel reads the frames and
//     a listener does what ProcessPoolExecutor's handle_frame does with them
//     (Scheduler::answered, CallClaims::release, RemoteTask::complete_from of typed results,
//     decode_exception with registered user exceptions), then the results are used as a
//     program would use them: shared memory read and written, values read.
// The contract: ProtocolError (a futura::Error) for anything hostile, never a crash, SIGBUS,
// SIGSEGV, a sanitizer report, a hang, a huge allocation or a leaked descriptor. A compromised
// worker keeps its own copy of every descriptor it sends: with the `shrink` flag the harness
// shrinks the unsealed memory files it sent once they are decoded, before the results are used,
// as such a worker could (a user's file on disk, MappedArray, has the same hazard, documented
// in mapped_array.hpp: its results are not used after shrinking).
//
// Input:
//   byte 0          flags: bit 0 parent side (else worker side), bit 1 repair the frames'
//                   checks (fuzz_support.hpp), bit 2 shrink (above), bits 4-7: if not 0,
//                   the stream goes out in writes of 4^(that - 1) bytes (1 to 4^14), each
//                   received before the next is sent, so that frames arrive in pieces
//   byte 1          how many descriptors travel (mod 9), then 3 bytes for each: its kind
//                   (DescriptorKind, mod its count) and a little-endian 16-bit size
//   parent side     one byte: how many tasks the worker was sent (mod 9), then one byte for
//                   each: its result type (ResultType, mod its count)
//   the rest        the byte stream; the descriptors ride on its first byte, as FrameOutbox
//                   sends them (with no byte to carry them, none are sent)
//
// Build and run: scripts/lib/fuzz.sh. Seeds: `decode_channel -write_seeds=DIR` (test/fuzz/
// corpus/decode_channel holds a copy).
#include <futura/detail/call_claims.hpp>
#include <futura/detail/channel.hpp>
#include <futura/detail/element_result.hpp>
#include <futura/detail/protocol.hpp>
#include <futura/detail/remote_call.hpp>
#include <futura/detail/scheduler.hpp>
#include <futura/detail/task.hpp>
#include <futura/detail/travelling_task.hpp>
#include <futura/detail/wire.hpp>
#include <futura/detail/worker_channel.hpp>
#include <futura/mapped_array.hpp>
#include <futura/register_exception.hpp>
#include <futura/shared_array.hpp>
#include <futura/shared_value.hpp>
#include <futura/transferable.hpp>

#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/mman.h>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>
#include <utility>
#include <vector>

#include "fuzz_support.hpp"

namespace fuzz {

using futura::MappedArray;
using futura::SharedArray;
using futura::SharedValue;
using futura::detail::Attachments;
using futura::detail::CallClaims;
using futura::detail::Codec;
using futura::detail::ElementResult;
using futura::detail::Frame;
using futura::detail::FrameInbox;
using futura::detail::FrameKind;
using futura::detail::FrameOutbox;
using futura::detail::RemoteCall;
using futura::detail::UniqueFd;
using futura::detail::WireReader;
using futura::detail::WireWriter;

// ---------------------------------------------------------------------------------------------
// Using what was decoded: every element of shared memory is read, and written where the type
// says it may be. A mapping that is shorter than it claims, or read-only where it should be
// writable, crashes here.

template <class Range>
long read_all(const Range& range)
{
    long sum = 0;
    for (const auto& x : range) {
        sum += static_cast<long>(x);
    }
    return sum;
}

template <class Range>
void write_all(Range& range)
{
    for (auto& x : range) {
        x = x + 1;
    }
}

/// A user type holding a SharedArray: it travels through Boost.Serialization, the array beside
/// the archive.
struct Holder
{
    std::string name;
    SharedArray<int> values;

    template <class Archive>
    void serialize(Archive& archive, unsigned /*version*/)
    {
        archive& name& values;
    }
};

void use(const SharedArray<int>& array)
{
    auto copy = array;
    (void)read_all(copy);
    write_all(copy);
}
void use(const MappedArray<const double>& array) { (void)read_all(array); }
void use(const MappedArray<double>& array)
{
    auto copy = array;
    write_all(copy);
}
void use(const SharedValue<long>& value) { (void)value.fetch_add(1); }
void use(const Holder& holder) { use(holder.values); }
void use(std::span<const int> values) { (void)read_all(values); }
void use(std::span<double> values) { write_all(values); }
template <class T>
void use(const T& /*value*/)
{}

// ---------------------------------------------------------------------------------------------
// Call types a worker runs: the argument types that take descriptors.

struct TakeShared
{
    long operator()(SharedArray<int> a) const
    {
        use(a);
        return static_cast<long>(a.size());
    }
};
struct TakeMapped
{
    long operator()(MappedArray<const double> in, MappedArray<double> out) const
    {
        use(in);
        use(out);
        return static_cast<long>(in.size() + out.size());
    }
};
struct TakeValue
{
    long operator()(SharedValue<long> value) const { return value.fetch_add(1); }
};
struct TakeSpans
{
    long operator()(std::span<const int> in, std::span<double> out) const
    {
        use(out);
        return read_all(in);
    }
};
struct TakeVector
{
    std::vector<int> operator()(std::vector<int> values) const { return values; }
};
struct TakeHolder
{
    SharedArray<int> operator()(Holder holder) const
    {
        use(holder);
        return holder.values; // a result that carries a descriptor back
    }
};

using SharedCall = RemoteCall<long, TakeShared, SharedArray<int>>;
using MappedCall = RemoteCall<long, TakeMapped, MappedArray<const double>, MappedArray<double>>;
using ValueCall = RemoteCall<long, TakeValue, SharedValue<long>>;
using SpansCall = RemoteCall<long, TakeSpans, std::span<const int>, std::span<double>>;
using VectorCall = RemoteCall<std::vector<int>, TakeVector, std::vector<int>>;
using HolderCall = RemoteCall<SharedArray<int>, TakeHolder, Holder>;

/// A user exception registered to travel as itself, its state through Boost.Serialization.
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

// ---------------------------------------------------------------------------------------------
// Descriptors: what a sender may attach, well-formed or not.

enum class DescriptorKind : std::uint8_t
{
    segment,      // as Segment::create makes it: sealed size, allocated
    copy_segment, // as encode_copy_in_segment: also write-sealed
    unsealed,     // a memory file the sender can still shrink
    read_only,    // a segment reopened read-only
    sparse,       // sealed, but `size` pages not backed by memory (at most 256 MiB: the
                  // fuzzer must not commit gigabytes on a machine shared with other work)
    dev_null,     // a character device
    pipe,         // a pipe's read end
    socket,       // a socket
    directory,    // a directory
    disk_file,    // a regular file on disk (a MappedArray's)
    count
};

struct Descriptors
{
    std::vector<UniqueFd> sent;       // what goes on the channel (the sender's copies)
    std::vector<UniqueFd> shrinkable; // the sender's own copies of unsealed memory files
};

UniqueFd memory_file(std::size_t bytes, bool allocate, int seals)
{
    UniqueFd fd(::memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd || ::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0) {
        finding("cannot make a memory file for the input");
    }
    if (allocate && bytes > 0) {
        (void)::fallocate(fd.get(), 0, 0, static_cast<off_t>(bytes));
    }
    if (seals != 0) {
        (void)::fcntl(fd.get(), F_ADD_SEALS, seals);
    }
    return fd;
}

UniqueFd reopened(const UniqueFd& fd, int flags)
{
    const std::string path = "/proc/self/fd/" + std::to_string(fd.get());
    return UniqueFd(::open(path.c_str(), flags | O_CLOEXEC));
}

void make_descriptor(DescriptorKind kind, std::size_t size, Descriptors& out)
{
    constexpr int size_seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
    UniqueFd fd;
    switch (kind) {
    case DescriptorKind::segment:
        fd = memory_file(size, true, size_seals);
        break;
    case DescriptorKind::copy_segment:
        fd = memory_file(size, true, size_seals | F_SEAL_WRITE);
        break;
    case DescriptorKind::unsealed:
        fd = memory_file(size, true, 0);
        out.shrinkable.push_back(UniqueFd::duplicate(fd.get()));
        break;
    case DescriptorKind::read_only:
        fd = reopened(memory_file(size, true, size_seals), O_RDONLY);
        break;
    case DescriptorKind::sparse:
        fd = memory_file(size << 12U, false, size_seals);
        break;
    case DescriptorKind::dev_null:
        fd = UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC));
        break;
    case DescriptorKind::pipe: {
        int ends[2];
        if (::pipe2(ends, O_CLOEXEC) == 0) {
            fd = UniqueFd(ends[0]);
            ::close(ends[1]);
        }
        break;
    }
    case DescriptorKind::socket: {
        int ends[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) == 0) {
            fd = UniqueFd(ends[0]);
            ::close(ends[1]);
        }
        break;
    }
    case DescriptorKind::directory:
        fd = UniqueFd(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        break;
    case DescriptorKind::disk_file:
        fd = UniqueFd(::open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
        if (fd && ::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
            fd.reset();
        }
        break;
    case DescriptorKind::count:
        break;
    }
    if (!fd) {
        finding("cannot make a descriptor for the input");
    }
    out.sent.push_back(std::move(fd));
}

/// Fresh copies of `attachments`' descriptors, so that each decoder of one payload takes its
/// own (a decoder moves the descriptors it uses out of the message).
Attachments copies(const Attachments& attachments)
{
    Attachments copy;
    for (const auto& fd : attachments.descriptors) {
        copy.descriptors.push_back(fd ? UniqueFd::duplicate(fd.get()) : UniqueFd());
    }
    return copy;
}

// ---------------------------------------------------------------------------------------------
// The input

struct Input
{
    bool parent_side = false;
    bool repair = false;
    bool shrink = false;
    std::size_t piece = 0; // bytes per write; 0: all at once
    Descriptors descriptors;
    std::vector<std::uint8_t> result_types; // parent side: one per task sent
    std::vector<char> stream;
};

enum class ResultType : std::uint8_t
{
    integer,
    text,
    doubles, // a vector: in the message, or automatically shared
    shared_array,
    mapped_read_only,
    mapped,
    shared_value,
    holder,
    chunk, // a map chunk's element results
    optional,
    nothing, // void
    count
};

std::optional<Input> parse_input(const std::uint8_t* data, std::size_t size)
{
    std::size_t at = 0;
    const auto byte = [&]() -> std::optional<std::uint8_t> {
        if (at == size) {
            return std::nullopt;
        }
        return data[at++];
    };
    Input input;
    const auto flags = byte();
    const auto descriptors = byte();
    if (!flags || !descriptors) {
        return std::nullopt;
    }
    input.parent_side = (*flags & 1U) != 0;
    input.repair = (*flags & 2U) != 0;
    input.shrink = (*flags & 4U) != 0;
    if (const unsigned pieces = *flags >> 4U; pieces != 0) {
        input.piece = std::size_t{1} << (2 * (pieces - 1));
    }
    std::vector<std::pair<DescriptorKind, std::size_t>> specs;
    for (unsigned i = 0; i < *descriptors % 9U; ++i) {
        const auto kind = byte();
        const auto low = byte();
        const auto high = byte();
        if (!kind || !low || !high) {
            return std::nullopt;
        }
        specs.emplace_back(
            static_cast<DescriptorKind>(*kind % static_cast<unsigned>(DescriptorKind::count)),
            static_cast<std::size_t>(*low | (*high << 8U)));
    }
    if (input.parent_side) {
        const auto tasks = byte();
        if (!tasks) {
            return std::nullopt;
        }
        for (unsigned i = 0; i < *tasks % 9U; ++i) {
            const auto type = byte();
            if (!type) {
                return std::nullopt;
            }
            input.result_types.push_back(
                static_cast<std::uint8_t>(*type % static_cast<unsigned>(ResultType::count)));
        }
    }
    input.stream.assign(data + at, data + size);
    if (input.repair) {
        repair_checks(input.stream);
    }
    if (!input.stream.empty()) { // FrameOutbox needs a byte to carry descriptors
        for (const auto& [kind, bytes] : specs) {
            make_descriptor(kind, bytes, input.descriptors);
        }
    }
    return input;
}

/// Sends the input's bytes and descriptors as a process would (FrameOutbox, blocking), in
/// pieces if the input says so, and lets the receiver take each piece (`received`) before the
/// next; then the end of the stream. Stops early if `received` says that the receiver gave up
/// on the channel (as a real peer would: its reader is gone), or a full socket would block.
template <class Received>
void send(int socket, Input& input, const Received& received)
{
    const std::size_t piece = input.piece == 0 ? input.stream.size() : input.piece;
    for (std::size_t at = 0; at < input.stream.size(); at += piece) {
        FrameOutbox outbox;
        const auto end = std::min(input.stream.size(), at + piece);
        outbox.bytes().assign(input.stream.begin() + static_cast<std::ptrdiff_t>(at),
                              input.stream.begin() + static_cast<std::ptrdiff_t>(end));
        if (at == 0) {
            outbox.add_descriptors(input.descriptors.sent); // on the first byte
        }
        if (outbox.write(socket, /*nonblocking=*/false) != FrameOutbox::Progress::done) {
            finding("FrameOutbox::write did not send the input (" + std::to_string(errno) + ")");
        }
        if (end != input.stream.size() && !received()) {
            break;
        }
    }
    ::shutdown(socket, SHUT_WR);
    (void)received();
}

// ---------------------------------------------------------------------------------------------
// Worker side

/// Decodes a T from `payload` with its own copies of the frame's descriptors, and uses it.
template <class T>
void decode_with(std::span<const char> payload, const Attachments& attachments)
{
    static const std::string step = "Codec<" + type_name<T>() + ">::decode";
    auto mine = copies(attachments);
    expect_clean(step, [&] {
        WireReader in(payload);
        in.attach(mine);
        use(Codec<T>::decode(in));
    });
}

void decode_descriptor_values(std::span<const char> payload, const Attachments& attachments)
{
    decode_with<SharedArray<int>>(payload, attachments);
    decode_with<MappedArray<const double>>(payload, attachments);
    decode_with<MappedArray<double>>(payload, attachments);
    decode_with<SharedValue<long>>(payload, attachments);
    decode_with<std::span<const int>>(payload, attachments);
    decode_with<std::span<double>>(payload, attachments);
    decode_with<std::vector<int>>(payload, attachments);
    decode_with<Holder>(payload, attachments);
}

/// What the worker loop (src/detail/worker.cpp) does with a frame, and then every decoder that
/// takes descriptors on its payload.
void worker_handles(const Frame& frame, Attachments& attachments, std::optional<CallClaims>& claims)
{
    const auto original = copies(attachments);
    switch (frame.kind) {
    case FrameKind::claims:
        if (attachments.descriptors.size() == 1 && !claims) {
            // The worker loop ends on any exception from here alike (the table comes from the
            // parent, which it trusts): a read-only or write-sealed descriptor ends in the
            // std::system_error of its mapping, not in ProtocolError as documented.
            try {
                claims.emplace(CallClaims::open(std::move(attachments.descriptors[0])));
                (void)claims->claim(frame.task_id);
            } catch (const ProtocolError& e) {
                if (!clean_failure(e)) {
                    finding(std::string("CallClaims::open: unclear ProtocolError: ") + e.what());
                }
            } catch (const std::system_error&) {
            } catch (...) {
                finding("CallClaims::open let " + current_exception_text() + " escape");
            }
        }
        break;
    case FrameKind::call:
        expect_clean("the worker's call path", [&] {
            WireReader call(frame.payload);
            call.attach(attachments);
            const auto invoker = futura::detail::find_remote_invoker(call.u64());
            Attachments result_attachments;
            WireWriter result;
            result.attach(result_attachments);
            invoker(call, result);
        });
        break;
    default:
        break;
    }
    decode_descriptor_values(frame.payload, original);
}

void worker_side(Input& input)
{
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) {
        finding("socketpair failed");
    }
    UniqueFd parent(ends[0]);
    UniqueFd worker(ends[1]);
    FrameInbox inbox;
    std::optional<CallClaims> claims;
    bool left = false; // the worker would have left: bad bytes, or the end of its input
    // What the worker loop does with what has arrived: every frame there is, then a read.
    // @return whether it still reads.
    const auto receive = [&] {
        while (!left) {
            ssize_t n = 0;
            if (!expect_clean("FrameInbox::receive",
                              [&] { n = inbox.receive(worker.get(), /*nonblocking=*/true); })) {
                left = true;
                break;
            }
            if (n <= 0) {
                left = n == 0 || errno != EAGAIN;
                break;
            }
            for (;;) {
                Attachments attachments;
                std::optional<Frame> frame;
                if (!expect_clean("FrameInbox::next", [&] { frame = inbox.next(attachments); })) {
                    left = true;
                    return false;
                }
                if (!frame) {
                    break;
                }
                if (attachments.descriptors.size() != frame->descriptors) {
                    finding("FrameInbox::next gave a frame other than the descriptors it names");
                }
                worker_handles(*frame, attachments, claims);
            }
        }
        return !left;
    };
    send(parent.get(), input, receive);
}

// ---------------------------------------------------------------------------------------------
// Parent side

/// The callable of a task whose result type is R: tasks here are never run, only answered.
template <class R>
struct Returns
{
    R operator()() const { finding("a task of the parent ran in the parent"); }
};

/// One task sent to the worker, as the pool holds it.
class SentTask
{
public:
    virtual ~SentTask() = default;
    virtual futura::detail::TaskBase& task() = 0;
    /// Once complete: uses the result as a program would (`touch_shared`: its shared memory).
    virtual void check(bool from_value_frame, bool touch_shared) = 0;
};

template <class R>
class TypedTask final : public SentTask
{
public:
    TypedTask() : task_(new futura::detail::TravellingTask<R, Returns<R>>(Returns<R>{}))
    {
        // Task's constructor holds the executor's reference besides ours (the future's).
    }
    TypedTask(const TypedTask&) = delete;
    TypedTask& operator=(const TypedTask&) = delete;
    ~TypedTask() override
    {
        if (!task_->done()) {
            static_cast<futura::detail::TaskBase*>(task_)->discard(nullptr); // never answered
        }
        task_->release();
    }

    futura::detail::TaskBase& task() override { return *task_; }

    void check(bool from_value_frame, bool touch_shared) override
    {
        if (!task_->done()) {
            finding("complete_from or discard left a task's future not done");
        }
        if (tracing()) {
            std::fprintf(stderr, "result %s from a%s frame: %s\n", type_name<R>().c_str(),
                         from_value_frame ? " value" : "n exception",
                         task_->stored_exception() ? "an exception" : "a value");
        }
        if (const auto& error = task_->stored_exception()) {
            try {
                std::rethrow_exception(error);
            } catch (const std::exception& e) {
                if (from_value_frame && !clean_failure(e)) {
                    finding("a result of type " + type_name<R>() +
                            " failed to decode with something else than ProtocolError: " +
                            current_exception_text());
                }
                const std::string what = e.what();
                (void)what;
            } catch (...) {
                finding("a worker's answer became an exception not derived from std::exception");
            }
            return;
        }
        if constexpr (!std::is_void_v<R>) {
            if (!from_value_frame) {
                finding("an exception frame completed a future with a value");
            }
            const auto& value = task_->value();
            constexpr bool mapped = std::is_same_v<R, MappedArray<const double>> ||
                                    std::is_same_v<R, MappedArray<double>>;
            if (touch_shared || !mapped) {
                use(value);
            }
        }
    }

private:
    futura::detail::TravellingTask<R, Returns<R>>* task_;
};

std::unique_ptr<SentTask> make_task(ResultType type)
{
    switch (type) {
    case ResultType::integer:
        return std::make_unique<TypedTask<int>>();
    case ResultType::text:
        return std::make_unique<TypedTask<std::string>>();
    case ResultType::doubles:
        return std::make_unique<TypedTask<std::vector<double>>>();
    case ResultType::shared_array:
        return std::make_unique<TypedTask<SharedArray<int>>>();
    case ResultType::mapped_read_only:
        return std::make_unique<TypedTask<MappedArray<const double>>>();
    case ResultType::mapped:
        return std::make_unique<TypedTask<MappedArray<double>>>();
    case ResultType::shared_value:
        return std::make_unique<TypedTask<SharedValue<long>>>();
    case ResultType::holder:
        return std::make_unique<TypedTask<Holder>>();
    case ResultType::chunk:
        return std::make_unique<TypedTask<std::vector<ElementResult<int>>>>();
    case ResultType::optional:
        return std::make_unique<TypedTask<std::optional<std::vector<int>>>>();
    case ResultType::nothing:
    case ResultType::count:
        break;
    }
    return std::make_unique<TypedTask<void>>();
}

/// The pool's side of one worker, with the pool's scheduler: `handle_frame` is
/// ProcessPoolExecutor's, less what concerns processes.
class Pool final : private futura::detail::SchedulerHost,
                   public futura::detail::WorkerChannel::Listener
{
public:
    explicit Pool(const std::vector<std::uint8_t>& result_types)
        : scheduler_({.max_workers = 1}), claims_(CallClaims::create())
    {
        for (const auto type : result_types) {
            tasks_.push_back(make_task(static_cast<ResultType>(type)));
        }
        worker_ = scheduler_.add_worker();
        scheduler_.worker_ready(worker_);
        // One call answered at once teaches the scheduler that calls are short, so it sends
        // every task ahead, as the pool does with short calls: each may then be answered.
        warm_up_left_ = 1;
        scheduler_.dispatch(*this);
        const auto warm_up = scheduler_.unanswered(worker_).front();
        (void)scheduler_.answered(worker_, warm_up.id, 0);
        claims_.release(warm_up.id);
        scheduler_.dispatch(*this);
        if (scheduler_.unanswered(worker_).size() != tasks_.size()) {
            finding("the scheduler did not send every task ahead");
        }
    }

    void on_frame(const Frame& frame, Attachments& attachments) override
    {
        handle_frame(frame, attachments);
    }
    void on_frames_handled() override { scheduler_.dispatch(*this); }
    // An answer large enough to be read into its result (1 MiB not yet arrived) is beyond
    // what an input holds: were one to come, it would be declined and come whole to on_frame.
    std::span<char> on_answer_start(const Frame& /*frame*/) override { return {}; }
    void on_answer_received() override
    {
        finding("an answer was read into its result although its start was declined");
    }
    void on_bad_message(const std::exception& error) override
    {
        gave_up_ = true; // the pool kills the worker: nothing more is read
        if (tracing()) {
            std::fprintf(stderr, "bad message: %s\n", error.what());
        }
        // The pool kills the worker: only a clean ProtocolError may bring it here.
        if (!clean_failure(error)) {
            finding(std::string("the parent's channel failed with something else than "
                                "ProtocolError: ") +
                    typeid(error).name() + ": " + error.what());
        }
    }

    /// Whether the channel stopped reading (a bad message).
    [[nodiscard]] bool gave_up() const noexcept { return gave_up_; }

    /// Uses every result the worker gave.
    void check_results(bool touch_shared)
    {
        for (std::size_t i = 0; i < answered_.size(); ++i) {
            tasks_[i]->check(answered_[i], touch_shared);
        }
    }

private:
    void handle_frame(const Frame& frame, Attachments& attachments)
    {
        switch (frame.kind) {
        case FrameKind::ready:
            scheduler_.worker_ready(worker_);
            return;
        case FrameKind::initialize_failed: {
            WireReader reader(frame.payload);
            (void)reader.u64();
            try {
                std::rethrow_exception(futura::detail::decode_exception(reader));
            } catch (const std::exception& e) {
                const std::string why = e.what();
                (void)why;
            }
            return;
        }
        case FrameKind::value:
        case FrameKind::exception:
            break;
        default:
            throw ProtocolError("futura: a worker sent a frame meant for workers");
        }
        WireReader reader(frame.payload);
        reader.attach(attachments);
        const double seconds = static_cast<double>(reader.u64()) / 1e9;
        if (frame.task_id == 0 && frame.kind == FrameKind::value) {
            return;
        }
        const auto call = scheduler_.answered(worker_, frame.task_id, seconds);
        claims_.release(call.id);
        auto* task = static_cast<futura::detail::TaskBase*>(call.task);
        answered_.push_back(frame.kind == FrameKind::value);
        if (frame.kind == FrameKind::value) {
            task->remote()->complete_from(reader);
        } else {
            std::exception_ptr error;
            try {
                error = futura::detail::decode_exception(reader);
            } catch (...) {
                error = std::current_exception();
            }
            task->discard(error);
        }
    }

    // SchedulerHost: the tasks of the input wait in order; nothing is revoked or started.
    [[nodiscard]] Clock::time_point now() const override { return Clock::now(); }
    [[nodiscard]] std::size_t waiting() const override
    {
        return warm_up_left_ + tasks_.size() - next_;
    }
    std::optional<futura::detail::CallInfo> peek_waiting() override
    {
        if (waiting() == 0) {
            return std::nullopt;
        }
        return futura::detail::CallInfo{};
    }
    std::optional<futura::detail::SentCall> send_next(std::size_t /*worker*/) override
    {
        if (waiting() == 0) {
            return std::nullopt;
        }
        futura::detail::SentCall call;
        call.id = claims_.offer();
        if (warm_up_left_ > 0) {
            --warm_up_left_;
            return call;
        }
        auto& task = tasks_[next_++]->task();
        if (!task.remote()->start()) {
            finding("a fresh task could not start");
        }
        call.task = &task;
        return call;
    }
    bool try_revoke(std::size_t /*worker*/, const futura::detail::SentCall& /*call*/) override
    {
        return false;
    }
    void wait_again(std::vector<futura::detail::SentCall> /*calls*/) override
    {
        finding("the scheduler took back a call that could not be taken back");
    }
    bool start_worker() override { return false; }

    futura::detail::Scheduler scheduler_;
    CallClaims claims_;
    std::size_t worker_ = 0;
    std::size_t warm_up_left_ = 0; // the first call sent, answered at once, has no task
    std::vector<std::unique_ptr<SentTask>> tasks_;
    std::size_t next_ = 0;
    std::vector<bool> answered_; // per task answered, in order: by a value frame
    bool gave_up_ = false;
};

void parent_side(Input& input)
{
    boost::asio::io_context io;
    Pool pool(input.result_types);
    UniqueFd worker_end;
    auto channel = std::make_shared<futura::detail::WorkerChannel>(io, pool, worker_end);
    channel->start_reading();
    send(worker_end.get(), input, [&] {
        while (io.poll() > 0) {
        }
        return !pool.gave_up();
    });
    worker_end.reset();
    channel->drain(); // as when the worker has exited
    channel->close();
    io.poll();
    if (input.shrink) {
        for (const auto& fd : input.descriptors.shrinkable) {
            (void)::ftruncate(fd.get(), 0);
        }
    }
    pool.check_results(/*touch_shared=*/true);
}

void fuzz_one(const std::uint8_t* data, std::size_t size)
{
    auto input = parse_input(data, size);
    if (!input) {
        return;
    }
    if (input->parent_side) {
        parent_side(*input);
    } else {
        worker_side(*input);
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds: frames from the library's own encoders, with the descriptors they attach described as
// the kinds above.

struct Seed
{
    std::uint8_t flags = 0x02;
    std::vector<std::pair<DescriptorKind, std::size_t>> descriptors;
    std::vector<ResultType> results;
    std::vector<char> stream;
};

/// Encodes one frame with `encode_payload` and records the descriptors it attached, each as a
/// segment of its file's size (or `kind` if given).
template <class Encode>
void add_frame(Seed& seed, FrameKind kind, std::uint64_t task_id, const Encode& encode_payload)
{
    Attachments attachments;
    std::vector<char> payload;
    {
        WireWriter out(payload);
        out.attach(attachments);
        encode_payload(out);
    }
    for (const auto& fd : attachments.descriptors) {
        struct stat status
        {};
        (void)::fstat(fd.get(), &status);
        const int seals = ::fcntl(fd.get(), F_GET_SEALS);
        const auto kind = seals < 0                     ? DescriptorKind::disk_file
                          : (seals & F_SEAL_WRITE) != 0 ? DescriptorKind::copy_segment
                                                        : DescriptorKind::segment;
        seed.descriptors.emplace_back(kind, static_cast<std::size_t>(status.st_size));
    }
    const auto start = futura::detail::begin_frame(seed.stream);
    seed.stream.insert(seed.stream.end(), payload.begin(), payload.end());
    futura::detail::finish_frame(seed.stream, start, kind, task_id, attachments.descriptors.size());
}

void write_seed(const std::string& dir, const std::string& name, const Seed& seed)
{
    std::ofstream out(dir + "/" + name, std::ios::binary);
    out.put(static_cast<char>(seed.flags));
    out.put(static_cast<char>(seed.descriptors.size()));
    for (const auto& [kind, bytes] : seed.descriptors) {
        out.put(static_cast<char>(kind));
        out.put(static_cast<char>(bytes & 0xFFU));
        out.put(static_cast<char>((bytes >> 8U) & 0xFFU));
    }
    if ((seed.flags & 1U) != 0) {
        out.put(static_cast<char>(seed.results.size()));
        for (const auto type : seed.results) {
            out.put(static_cast<char>(type));
        }
    }
    out.write(seed.stream.data(), static_cast<std::streamsize>(seed.stream.size()));
    if (!out) {
        std::fprintf(stderr, "cannot write %s/%s\n", dir.c_str(), name.c_str());
        std::exit(1);
    }
}

/// A worker's answer: the run time, then the encoded result.
template <class T>
auto answer(const T& value)
{
    return [&value](WireWriter& out) {
        out.u64(1000);
        Codec<T>::encode(out, value);
    };
}

void write_seeds(const std::string& dir)
{
    SharedArray<int> ints{1, 2, 3, 4};
    SharedValue<long> counter(5);
    const std::vector<int> big(64, 7);
    const std::string path = "/tmp/futura-fuzz-seed.f64";
    auto mapped = MappedArray<double>::create(path, 8);
    const MappedArray<const double> mapped_in(path);
    std::remove(path.c_str());

    // Worker side: the claim table, then calls.
    {
        Seed seed;
        add_frame(seed, FrameKind::claims, 0,
                  [&](WireWriter& out) { out.descriptor(CallClaims::create().fd()); });
        add_frame(seed, FrameKind::call, 128,
                  [&](WireWriter& out) { SharedCall::encode(out, TakeShared{}, ints); });
        write_seed(dir, "worker-claims-and-call", seed);
        seed.flags |= 2U << 4U;
        write_seed(dir, "worker-claims-and-call-in-pieces-of-4", seed);
    }
    const auto call_seed = [&](const std::string& name, const auto& encode) {
        Seed seed;
        add_frame(seed, FrameKind::call, 128, encode);
        write_seed(dir, name, seed);
    };
    call_seed("worker-shared-array",
              [&](WireWriter& out) { SharedCall::encode(out, TakeShared{}, ints); });
    call_seed("worker-mapped-arrays", [&](WireWriter& out) {
        MappedCall::encode(out, TakeMapped{}, mapped_in, mapped.slice(2, 4));
    });
    call_seed("worker-shared-value",
              [&](WireWriter& out) { ValueCall::encode(out, TakeValue{}, counter); });
    call_seed("worker-spans-shared-and-inlined", [&](WireWriter& out) {
        const std::vector<int> in{1, 2, 3};
        SpansCall::encode(out, TakeSpans{}, std::span<const int>(in),
                          std::span<double>(mapped.data(), 3));
    });
    call_seed("worker-spans-copied", [&](WireWriter& out) {
        out.share_threshold(1);
        SpansCall::encode(out, TakeSpans{}, std::span<const int>(big), std::span<double>());
    });
    call_seed("worker-vector-shared", [&](WireWriter& out) {
        out.share_threshold(1);
        VectorCall::encode(out, TakeVector{}, big);
    });
    {
        // Findings kept as seeds: a writable array over a write-sealed copy (mmap's EPERM
        // escaped open_segment as std::system_error).
        Seed seed;
        add_frame(seed, FrameKind::call, 128,
                  [&](WireWriter& out) { SharedCall::encode(out, TakeShared{}, ints); });
        seed.descriptors.front().first = DescriptorKind::copy_segment;
        write_seed(dir, "finding-shared-array-write-sealed", seed);
    }
    call_seed("worker-holder", [&](WireWriter& out) {
        HolderCall::encode(out, TakeHolder{}, Holder{"h", ints});
    });

    // Parent side: a worker's answers to the tasks it was sent, with the ids that Pool's claim
    // table gives them after the warm-up call.
    const auto task_ids = [] {
        auto claims = CallClaims::create();
        claims.release(claims.offer());
        std::vector<std::uint64_t> ids;
        for (int i = 0; i < 8; ++i) {
            ids.push_back(claims.offer());
        }
        return ids;
    }();
    {
        Seed seed;
        seed.flags = 0x03;
        seed.results = {ResultType::integer,          ResultType::text,
                        ResultType::doubles,          ResultType::shared_array,
                        ResultType::mapped_read_only, ResultType::mapped,
                        ResultType::shared_value,     ResultType::holder};
        auto id = task_ids.begin();
        const int answer_int = 42;
        const std::string text = "text";
        add_frame(seed, FrameKind::value, *id++, answer(answer_int));
        add_frame(seed, FrameKind::value, *id++, answer(text));
        add_frame(seed, FrameKind::value, *id++, [&](WireWriter& out) {
            out.u64(1000);
            out.share_threshold(1);
            Codec<std::vector<double>>::encode(out, std::vector<double>(16, 0.5));
        });
        add_frame(seed, FrameKind::value, *id++, answer(ints));
        add_frame(seed, FrameKind::value, *id++, answer(mapped_in));
        add_frame(seed, FrameKind::value, *id++, answer(mapped));
        add_frame(seed, FrameKind::value, *id++, answer(counter));
        const Holder holder{"holder", ints};
        add_frame(seed, FrameKind::value, *id++, answer(holder));
        write_seed(dir, "parent-answers", seed);
        seed.flags |= 3U << 4U;
        write_seed(dir, "parent-answers-in-pieces-of-16", seed);
    }
    {
        Seed seed;
        seed.flags = 0x03;
        seed.results = {ResultType::chunk, ResultType::optional, ResultType::nothing,
                        ResultType::integer};
        const std::vector<ElementResult<int>> chunk{
            {3, nullptr}, {std::nullopt, std::make_exception_ptr(Overdrawn(1, "chunk"))}};
        add_frame(seed, FrameKind::value, task_ids[0], answer(chunk));
        const std::optional<std::vector<int>> optional{{1, 2}};
        add_frame(seed, FrameKind::value, task_ids[1], answer(optional));
        add_frame(seed, FrameKind::value, task_ids[2], [](WireWriter& out) { out.u64(1000); });
        add_frame(seed, FrameKind::exception, task_ids[3], [](WireWriter& out) {
            out.u64(1000);
            futura::detail::encode_exception(
                out, std::make_exception_ptr(Overdrawn(7, "overdrawn")), "#0 far away\n");
        });
        write_seed(dir, "parent-chunk-optional-void-exception", seed);
    }
    {
        Seed seed;
        seed.flags = 0x03 | 0x04; // and the worker shrinks what it sent
        seed.results = {ResultType::shared_array};
        add_frame(seed, FrameKind::value, task_ids[0], answer(ints));
        seed.descriptors.front().first = DescriptorKind::unsealed;
        write_seed(dir, "parent-shared-array-shrunk", seed);
    }
    {
        Seed seed;
        seed.flags = 0x03;
        add_frame(seed, FrameKind::ready, 0, [](WireWriter& out) { out.u64(1); });
        add_frame(seed, FrameKind::initialize_failed, 0, [](WireWriter& out) {
            out.u64(1000);
            futura::detail::encode_exception(
                out, std::make_exception_ptr(std::runtime_error("init")), "");
        });
        write_seed(dir, "parent-ready-initialize-failed", seed);
    }
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
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const fuzz::DescriptorWatch watch;
    fuzz::fuzz_one(data, size);
    return 0;
}
