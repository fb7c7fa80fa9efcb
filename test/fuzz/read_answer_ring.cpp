// libFuzzer target: the parent's reading of a worker's answers, through the answer ring and the
// socket together (WorkerChannel, AnswerRing::read), from a worker that may be compromised.
//
// The harness is the worker: it receives the ring the parent's channel sends, maps it as a
// worker could, and then, step by step as the input says, writes records into it (honest ones,
// or numbered wrongly, of any size and content), moves the ring's write position anywhere, and
// sends bytes on the socket, letting the parent read after each step. The parent's listener
// does what ProcessPoolExecutor's handle_frame does with answers, against a list of calls sent.
// The contract: a ProtocolError with a clear message for anything that does not add up, never a
// crash, a sanitizer report, a hang, an answer delivered out of order, or a leaked descriptor.
//
// Input:
//   byte 0          flags: bit 0 repair the frames' checks (fuzz_support.hpp), bits 1-3 the
//                   ring's capacity, 256 << min(that, 4) bytes (small, so records wrap)
//   byte 1          how many calls the worker was sent (mod 17)
//   then steps, each a byte (mod 4) and its data, until the input ends:
//     0  a ring record: a signed byte added to the next answer's number, a 16-bit length and
//        that many bytes (the frame); if the ring has no room, the bytes go on the socket as an
//        answer instead, as a worker sends them
//     1  the ring's write position moved by a signed 16-bit amount
//     2  bytes on the socket (a 16-bit length, then them) that are not an answer
//     3  bytes on the socket that are the next answer
//   After a ring record, the harness wakes the parent as an honest worker does (a `wake` frame
//   if the parent sleeps). At the end, the socket is closed and the parent drains what is left,
//   as when a worker has exited.
//
// Build and run: scripts/lib/fuzz.sh. Seeds: `read_answer_ring -write_seeds=DIR` (test/fuzz/
// corpus/read_answer_ring holds a copy).
#include <futura/detail/answer_ring.hpp>
#include <futura/detail/channel.hpp>
#include <futura/detail/protocol.hpp>
#include <futura/detail/wire.hpp>
#include <futura/detail/worker_channel.hpp>

#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "fuzz_support.hpp"

namespace fuzz {

using futura::detail::AnswerRing;
using futura::detail::Attachments;
using futura::detail::Frame;
using futura::detail::FrameInbox;
using futura::detail::FrameKind;
using futura::detail::FrameOutbox;
using futura::detail::UniqueFd;
using futura::detail::WireReader;
using futura::detail::WireWriter;

/// The first id a pool gives a call (CallClaims: round 1, slot 0).
constexpr std::uint64_t first_call_id = 128;

/// The pool's side of the answers: calls sent in order, each to be answered in order, and what
/// the pool's handle_frame does with an answer's payload.
class Listener final : public futura::detail::WorkerChannel::Listener
{
public:
    explicit Listener(std::size_t calls)
    {
        for (std::size_t i = 0; i < calls; ++i) {
            unanswered_.push_back(first_call_id + i);
        }
    }

    void on_frame(const Frame& frame, Attachments& attachments) override
    {
        switch (frame.kind) {
        case FrameKind::ready:
            return;
        case FrameKind::value:
        case FrameKind::exception:
        case FrameKind::initialize_failed:
            break;
        default:
            throw ProtocolError("futura: a worker sent a frame meant for workers");
        }
        WireReader reader(frame.payload);
        reader.attach(attachments);
        (void)reader.u64(); // the run time
        if (frame.kind != FrameKind::initialize_failed) {
            if (unanswered_.empty() || unanswered_.front() != frame.task_id) {
                throw ProtocolError("futura: a worker answered a task it was not running");
            }
            unanswered_.pop_front();
        }
        if (frame.kind == FrameKind::value) {
            (void)reader.raw<int>();
        } else {
            const auto error = futura::detail::decode_exception(reader);
            (void)error;
        }
    }
    void on_frames_handled() override {}
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
        if (!clean_failure(error)) {
            finding(std::string("the parent's channel failed with something else than "
                                "ProtocolError: ") +
                    error.what());
        }
    }

    [[nodiscard]] bool gave_up() const noexcept { return gave_up_; }

private:
    std::deque<std::uint64_t> unanswered_;
    bool gave_up_ = false;
};

/// Reads input bytes, giving nothing once they run out.
class Reader
{
public:
    Reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

    std::optional<std::uint8_t> byte()
    {
        if (at_ == size_) {
            return std::nullopt;
        }
        return data_[at_++];
    }
    std::optional<std::uint16_t> u16()
    {
        const auto low = byte();
        const auto high = byte();
        if (!low || !high) {
            return std::nullopt;
        }
        return static_cast<std::uint16_t>(*low | (*high << 8U));
    }
    /// Up to `count` bytes (fewer if the input ends).
    std::vector<char> bytes(std::size_t count)
    {
        const auto n = std::min(count, size_ - at_);
        std::vector<char> out(data_ + at_, data_ + at_ + n);
        at_ += n;
        return out;
    }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t at_ = 0;
};

/// The worker's side: the ring as mapped by a worker that writes what it likes.
class ForgingWorker
{
public:
    ForgingWorker(UniqueFd socket, UniqueFd ring) : socket_(std::move(socket))
    {
        struct stat status
        {};
        if (::fstat(ring.get(), &status) != 0) {
            finding("the ring's descriptor cannot be examined");
        }
        bytes_ = static_cast<std::size_t>(status.st_size);
        capacity_ = bytes_ - AnswerRing::data_offset;
        base_ = static_cast<char*>(
            ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, ring.get(), 0));
        if (base_ == MAP_FAILED) {
            finding("the ring the parent sent cannot be mapped");
        }
    }
    ForgingWorker(const ForgingWorker&) = delete;
    ForgingWorker& operator=(const ForgingWorker&) = delete;
    ~ForgingWorker() { ::munmap(base_, bytes_); }

    AnswerRing::Control& control() noexcept
    {
        return *reinterpret_cast<AnswerRing::Control*>(base_); // NOLINT: the ring's layout
    }

    /// Writes a record numbered `sequence` holding `frame`, then wakes the parent if it sleeps.
    /// @return false if it does not fit (nothing written).
    bool record(std::uint64_t sequence, const std::vector<char>& frame)
    {
        const std::uint64_t length = sizeof(AnswerRing::Record) + (frame.size() + 15) / 16 * 16;
        const std::uint64_t tail = control().tail.load();
        if (frame.size() > AnswerRing::max_frame || head_ - tail + length > capacity_) {
            return false;
        }
        const AnswerRing::Record header{sequence, frame.size()};
        put(head_, &header, sizeof header);
        put(head_ + sizeof header, frame.data(), frame.size());
        head_ += length;
        control().head.store(head_, std::memory_order_release);
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (control().parent_asleep.exchange(0) != 0) {
            std::vector<char> wake;
            futura::detail::append_frame(wake, FrameKind::wake, 0, {});
            send(wake);
        }
        return true;
    }

    void move_head(std::int16_t by)
    {
        head_ += static_cast<std::uint64_t>(static_cast<std::int64_t>(by));
        control().head.store(head_, std::memory_order_release);
    }

    void send(const std::vector<char>& bytes)
    {
        if (bytes.empty()) {
            return;
        }
        FrameOutbox outbox;
        outbox.bytes() = bytes;
        (void)outbox.write(socket_.get(), /*nonblocking=*/false);
    }

    void close() { ::shutdown(socket_.get(), SHUT_WR); }

private:
    void put(std::uint64_t at, const void* from, std::size_t size)
    {
        char* data = base_ + AnswerRing::data_offset;
        for (std::size_t i = 0; i < size; ++i) {
            data[(at + i) & (capacity_ - 1)] = static_cast<const char*>(from)[i];
        }
    }

    UniqueFd socket_;
    char* base_ = nullptr;
    std::size_t bytes_ = 0;
    std::size_t capacity_ = 0;
    std::uint64_t head_ = 0;
};

void fuzz_one(const std::uint8_t* data, std::size_t size)
{
    Reader input(data, size);
    const auto flags = input.byte();
    const auto calls = input.byte();
    if (!flags || !calls) {
        return;
    }
    const bool repair = (*flags & 1U) != 0;
    const auto capacity = std::size_t{256} << std::min(((*flags >> 1U) & 7U), 4U);

    boost::asio::io_context io;
    Listener listener(*calls % 17U);
    UniqueFd worker_end;
    auto channel =
        std::make_shared<futura::detail::WorkerChannel>(io, listener, worker_end, capacity);
    channel->send_answer_ring();
    channel->flush();
    // The worker receives its ring, as the worker loop does (its descriptor rides on a byte of
    // its own: that may take more than one read).
    FrameInbox inbox;
    Attachments attachments;
    std::optional<Frame> ring_frame;
    while (!ring_frame && inbox.receive(worker_end.get(), /*nonblocking=*/false) > 0) {
        ring_frame = inbox.next(attachments);
    }
    if (!ring_frame || ring_frame->kind != FrameKind::ring || attachments.descriptors.size() != 1) {
        finding("the channel did not send its answer ring first");
    }
    ForgingWorker worker(std::move(worker_end), std::move(attachments.descriptors[0]));
    channel->start_reading();

    const auto run_parent = [&] {
        while (io.poll() > 0) {
        }
    };
    const auto repaired = [&](std::vector<char> bytes) {
        if (repair) {
            repair_checks(bytes);
        }
        return bytes;
    };
    std::uint64_t answers = 0;
    while (!listener.gave_up()) {
        const auto op = input.byte();
        if (!op) {
            break;
        }
        switch (*op % 4U) {
        case 0: {
            const auto tweak = input.byte();
            const auto length = input.u16();
            if (!tweak || !length) {
                break;
            }
            const auto frame = repaired(input.bytes(*length));
            const auto sequence =
                answers + static_cast<std::uint64_t>(static_cast<std::int8_t>(*tweak));
            if (!worker.record(sequence, frame)) {
                worker.send(frame); // no room: on the socket, as a worker does
            }
            ++answers;
            break;
        }
        case 1:
            if (const auto by = input.u16()) {
                worker.move_head(static_cast<std::int16_t>(*by));
            }
            break;
        case 2:
        case 3:
            if (const auto length = input.u16()) {
                worker.send(repaired(input.bytes(*length)));
                answers += *op % 4U == 3 ? 1 : 0;
            }
            break;
        default:
            break;
        }
        run_parent();
    }
    worker.close();
    run_parent();
    channel->drain(); // as when the worker has exited
    channel->close();
    io.poll();
}

// ---------------------------------------------------------------------------------------------
// Seeds

/// A value answer to the call `id`, as a worker writes it.
std::vector<char> answer(std::uint64_t id, int value)
{
    WireWriter payload;
    payload.u64(1000);
    payload.raw(value);
    std::vector<char> frame;
    futura::detail::append_frame(frame, FrameKind::value, id, payload.buffer());
    return frame;
}

std::vector<char> exception_answer(std::uint64_t id)
{
    WireWriter payload;
    payload.u64(1000);
    futura::detail::encode_exception(payload, std::make_exception_ptr(std::runtime_error("seed")),
                                     "#0 somewhere\n");
    std::vector<char> frame;
    futura::detail::append_frame(frame, FrameKind::exception, id, payload.buffer());
    return frame;
}

struct Seed
{
    std::vector<char> bytes;

    Seed(std::uint8_t flags, std::uint8_t calls)
        : bytes{static_cast<char>(flags), static_cast<char>(calls)}
    {}

    void length_and(const std::vector<char>& frame)
    {
        bytes.push_back(static_cast<char>(frame.size() & 0xFFU));
        bytes.push_back(static_cast<char>((frame.size() >> 8U) & 0xFFU));
        bytes.insert(bytes.end(), frame.begin(), frame.end());
    }
    void ring(const std::vector<char>& frame, std::int8_t tweak = 0)
    {
        bytes.push_back(0);
        bytes.push_back(static_cast<char>(tweak));
        length_and(frame);
    }
    void socket_answer(const std::vector<char>& frame)
    {
        bytes.push_back(3);
        length_and(frame);
    }
    void socket_bytes(const std::vector<char>& frame)
    {
        bytes.push_back(2);
        length_and(frame);
    }
    void move_head(std::int16_t by)
    {
        bytes.push_back(1);
        const auto raw = static_cast<std::uint16_t>(by);
        bytes.push_back(static_cast<char>(raw & 0xFFU));
        bytes.push_back(static_cast<char>(raw >> 8U));
    }
    void write(const std::string& dir, const std::string& name) const
    {
        std::ofstream out(dir + "/" + name, std::ios::binary);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!out) {
            std::fprintf(stderr, "cannot write %s/%s\n", dir.c_str(), name.c_str());
            std::exit(1);
        }
    }
};

void write_seeds(const std::string& dir)
{
    {
        Seed seed(0x01, 4); // capacity 256: the records wrap
        seed.socket_answer(answer(first_call_id, 1));
        seed.ring(answer(first_call_id + 1, 2));
        seed.ring(exception_answer(first_call_id + 2));
        seed.ring(answer(first_call_id + 3, 4));
        seed.write(dir, "ring-and-socket-in-order");
    }
    {
        Seed seed(0x01 | (2U << 1U), 12);
        std::vector<char> ready;
        WireWriter pid;
        pid.raw(std::int64_t{1});
        futura::detail::append_frame(ready, FrameKind::ready, 0, pid.buffer());
        seed.socket_bytes(ready);
        for (std::uint64_t i = 0; i < 12; ++i) {
            if (i % 5 == 4) {
                seed.socket_answer(answer(first_call_id + i, static_cast<int>(i)));
            } else {
                seed.ring(answer(first_call_id + i, static_cast<int>(i)));
            }
        }
        seed.write(dir, "ready-then-twelve-answers-mixed");
    }
    {
        Seed seed(0x01, 2);
        seed.ring(answer(first_call_id, 1));
        seed.ring(answer(first_call_id + 1, 2), 1); // numbered past an answer never sent
        seed.write(dir, "ring-skips-an-answer");
    }
    {
        Seed seed(0x01, 2);
        seed.ring(answer(first_call_id, 1));
        seed.move_head(8);
        seed.ring(answer(first_call_id + 1, 2));
        seed.write(dir, "ring-head-misaligned");
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
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const fuzz::DescriptorWatch watch;
    fuzz::fuzz_one(data, size);
    return 0;
}
