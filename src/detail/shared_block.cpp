// The shared block under futura's server-less shared objects: creation, robust locks, handles.
#include <futura/detail/protocol.hpp>
#include <futura/detail/shared_block.hpp>
#include <futura/errors.hpp>

#include <cerrno>
#include <climits>
#include <ctime>
#include <linux/futex.h>
#include <new>
#include <pthread.h>
#include <string>
#include <sys/syscall.h>
#include <system_error>
#include <typeinfo>
#include <unistd.h>

namespace futura::detail {

void init_robust_mutex(pthread_mutex_t& mutex)
{
    pthread_mutexattr_t attributes;
    int error = ::pthread_mutexattr_init(&attributes);
    // Process-shared: the mutex lives in memory that other processes map. Robust: the kernel
    // walks a dying thread's list of held robust mutexes and marks them, so a worker killed
    // while holding the lock cannot leave every other process waiting forever.
    if (error == 0) {
        error = ::pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
    }
    if (error == 0) {
        error = ::pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
    }
    // Error-checking: locking it again in the thread that holds it is EDEADLK, not a hang.
    if (error == 0) {
        error = ::pthread_mutexattr_settype(&attributes, PTHREAD_MUTEX_ERRORCHECK);
    }
    if (error == 0) {
        error = ::pthread_mutex_init(&mutex, &attributes);
    }
    ::pthread_mutexattr_destroy(&attributes);
    if (error != 0) {
        throw std::system_error(error, std::system_category(),
                                "futura: cannot make a process-shared lock");
    }
}

bool lock_robust_mutex(pthread_mutex_t& mutex)
{
    const int error = ::pthread_mutex_lock(&mutex);
    if (error == EOWNERDEAD) {
        // We hold it now. Marking it consistent keeps it usable for everyone after us; whether
        // what it guards is too is the caller's call (owner_died tells it).
        ::pthread_mutex_consistent(&mutex);
        return true;
    }
    if (error != 0) {
        throw std::system_error(error, std::system_category(),
                                "futura: cannot take a process-shared lock");
    }
    return false;
}

namespace {

// pthread_mutex_timedlock counts in CLOCK_REALTIME. (pthread_mutex_clocklock takes
// CLOCK_MONOTONIC, but GCC 12's ThreadSanitizer does not intercept it, and would then miss
// every acquisition made through it.) A steady deadline is translated; a wall clock that jumps
// ahead only ends a wait early, which the caller's loop sees and resumes.
timespec realtime_at(Deadline deadline) noexcept
{
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Clock::now());
    const long long ns = left.count() < 0 ? 0 : left.count();
    long long seconds = now.tv_sec + ns / 1'000'000'000;
    long long nanos = now.tv_nsec + ns % 1'000'000'000;
    if (nanos >= 1'000'000'000) {
        ++seconds;
        nanos -= 1'000'000'000;
    }
    return {static_cast<time_t>(seconds), static_cast<long>(nanos)};
}

} // namespace

RobustLock try_lock_robust_mutex(pthread_mutex_t& mutex, Deadline deadline)
{
    int error = ::pthread_mutex_trylock(&mutex);
    while (error == EBUSY && deadline != never && Clock::now() < deadline) {
        const auto at = realtime_at(deadline);
        error = ::pthread_mutex_timedlock(&mutex, &at);
        if (error == ETIMEDOUT) {
            error = EBUSY; // the loop checks the steady clock
        }
    }
    if (error == EBUSY && deadline == never) {
        return lock_robust_mutex(mutex) ? RobustLock::owner_died : RobustLock::acquired;
    }
    if (error == EOWNERDEAD) {
        ::pthread_mutex_consistent(&mutex);
        return RobustLock::owner_died;
    }
    if (error == EBUSY) {
        return RobustLock::busy;
    }
    if (error != 0) {
        throw std::system_error(error, std::system_category(),
                                "futura: cannot take a process-shared lock");
    }
    return RobustLock::acquired;
}

void unlock_robust_mutex(pthread_mutex_t& mutex)
{
    const int error = ::pthread_mutex_unlock(&mutex);
    if (error != 0) {
        throw std::system_error(error, std::system_category(),
                                "futura: cannot release a process-shared lock (this thread does "
                                "not hold it)");
    }
}

namespace {

long futex(const std::atomic<std::uint32_t>& word, int op, std::uint32_t value,
           const timespec* timeout, std::uint32_t value3) noexcept
{
    // Not the _PRIVATE operations: the word is in memory that other processes map, and a
    // private futex is keyed by this process's address space.
    return ::syscall(SYS_futex, &word, op, value, timeout, nullptr, value3);
}

} // namespace

bool shared_futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
                       Deadline deadline) noexcept
{
    if (deadline == never) {
        futex(word, FUTEX_WAIT, expected, nullptr, 0);
        return true;
    }
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, which is steady_clock's.
    const auto since_epoch = deadline.time_since_epoch();
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
    const timespec at{static_cast<time_t>(seconds.count()),
                      static_cast<long>((since_epoch - seconds).count())};
    if (futex(word, FUTEX_WAIT_BITSET, expected, &at, FUTEX_BITSET_MATCH_ANY) == -1 &&
        errno == ETIMEDOUT) {
        return false;
    }
    return true;
}

void shared_futex_wake(const std::atomic<std::uint32_t>& word, int count) noexcept
{
    futex(word, FUTEX_WAKE, static_cast<std::uint32_t>(count), nullptr, 0);
}

SharedBlock SharedBlock::create(std::size_t body, std::uint64_t tag)
{
    SharedBlock block;
    block.segment_ = Segment::create(shared_body_offset + body); // zero-filled
    block.header_ = ::new (block.segment_->data()) SharedHeader;
    init_robust_mutex(block.header_->mutex);
    block.header_->tag = tag;
    return block;
}

void SharedBlock::encode(WireWriter& out) const
{
    encode_segment_view(out, *segment_, segment_->data(), segment_->size());
}

SharedBlock SharedBlock::decode(WireReader& in, std::uint64_t tag)
{
    return adopt(decode_segment_view(in, alignof(SharedHeader), true), tag);
}

SharedBlock SharedBlock::adopt(SegmentView view, std::uint64_t tag)
{
    if (view.bytes < shared_body_offset || view.data != view.segment->data()) {
        WireReader::fail("a shared object's handle does not name a whole segment");
    }
    auto* header = std::launder(reinterpret_cast<SharedHeader*>(view.data)); // NOLINT: sender's
    if (header->tag != tag) {
        WireReader::fail("a shared object's handle names another kind of object");
    }
    SharedBlock block;
    block.segment_ = std::move(view.segment);
    block.header_ = header;
    return block;
}

StateLock::StateLock(SharedHeader& header, const char* type)
    : header_(&header), owner_died_(lock_robust_mutex(header.mutex))
{
    // Relaxed: the lock orders these with the writes of every earlier holder, and a holder that
    // died released it through the kernel, which orders its writes before our acquisition.
    if (owner_died_ && header.writing.load(std::memory_order_relaxed) != 0) {
        header.broken.store(1, std::memory_order_relaxed);
        header.writing.store(0, std::memory_order_relaxed);
    }
    if (header.broken.load(std::memory_order_relaxed) != 0) {
        unlock();
        throw_broken(type);
    }
}

void StateLock::unlock() noexcept
{
    if (header_ != nullptr) {
        ::pthread_mutex_unlock(&std::exchange(header_, nullptr)->mutex);
    }
}

WritingScope::WritingScope(SharedHeader& header, const char* type) noexcept : header_(header)
{
    header.writing.store(1, std::memory_order_relaxed);
    // A process can be killed between any two instructions, and what it stored before is then
    // what the next owner sees: the compiler must not move the body's writes above this mark
    // (the hardware's store order does not matter here: the kernel orders all of a dead
    // thread's stores before the next owner's acquisition of the robust lock).
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (while_writing_hook != nullptr) {
        while_writing_hook(type);
    }
}

WritingScope::~WritingScope()
{
    std::atomic_signal_fence(std::memory_order_seq_cst); // nor below the end mark
    header_.writing.store(0, std::memory_order_relaxed);
}

namespace {

// The errors of shared objects cross from a worker process as themselves, through the seam
// that register_exception uses (they carry nothing but their message). Static initialisation
// of this file: every program that uses a shared object links it, and its workers are the
// same program.
template <class E>
bool travels_as_itself()
{
    register_exception_codec(
        typeid(E), [](const std::exception& error, WireWriter& out) { out.string(error.what()); },
        [](WireReader& in) { return std::make_exception_ptr(E(std::string(in.string()))); });
    return true;
}

[[maybe_unused]] const bool errors_travel =
    travels_as_itself<BrokenSharedState>() && travels_as_itself<SharedDictFull>() &&
    travels_as_itself<QueueFull>() && travels_as_itself<QueueEmpty>() &&
    travels_as_itself<QueueClosed>();

} // namespace

void throw_broken(const char* type)
{
    throw BrokenSharedState(std::string(type) +
                            ": a process died in the middle of changing it (while it held its "
                            "lock and was writing), so its contents cannot be trusted; every call "
                            "on it throws this from now on: make a new one");
}

} // namespace futura::detail
