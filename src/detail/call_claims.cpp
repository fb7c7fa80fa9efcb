// The claim table shared by the pool and one worker (see call_claims.hpp).
#include <futura/detail/call_claims.hpp>
#include <futura/detail/wire.hpp>

#include <cerrno>
#include <fcntl.h>
#include <stdexcept>
#include <sys/mman.h>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace futura::detail {

namespace {

constexpr std::size_t table_bytes = CallClaims::slots * sizeof(std::atomic<std::uint64_t>);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "the claim table is shared between processes: it needs address-free atomics");

} // namespace

namespace {

std::shared_ptr<void> map_table(int fd)
{
    void* table = ::mmap(nullptr, table_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (table == MAP_FAILED) {
        throw std::system_error(errno, std::generic_category(), "futura: mmap (claim table)");
    }
    return {table, [](void* at) { ::munmap(at, table_bytes); }};
}

} // namespace

CallClaims::CallClaims(std::shared_ptr<void> mapping, UniqueFd fd, bool parent)
    : mapping_(std::move(mapping)), fd_(std::move(fd)), used_(parent ? slots : 0, false)
{}

CallClaims CallClaims::create()
{
    // Sealed against resizing: a worker holds the descriptor before it maps the table, and a
    // table it shrank would make the parent's next claim check fault (SIGBUS).
    UniqueFd fd(::memfd_create("futura-claims", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd || ::ftruncate(fd.get(), static_cast<off_t>(table_bytes)) != 0 ||
        ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
        throw std::system_error(errno, std::generic_category(),
                                "futura: memfd_create (claim table)");
    }
    auto mapping = map_table(fd.get()); // zero-filled: no slot is offered
    return CallClaims(std::move(mapping), std::move(fd), /*parent=*/true);
}

CallClaims CallClaims::open(UniqueFd fd)
{
    struct stat status
    {};
    if (!fd || ::fstat(fd.get(), &status) != 0 || !S_ISREG(status.st_mode) ||
        static_cast<std::size_t>(status.st_size) < table_bytes) {
        throw ProtocolError("futura: the claim table a worker was sent is not one");
    }
    // Mapped, the descriptor is closed: a worker holds no descriptor but its channel.
    try {
        return CallClaims(map_table(fd.get()), UniqueFd(), /*parent=*/false);
    } catch (const std::system_error&) { // read-only, or sealed against writes
        throw ProtocolError("futura: the claim table a worker was sent cannot be written");
    }
}

int CallClaims::fd() const noexcept { return fd_.get(); }

std::atomic<std::uint64_t>& CallClaims::slot(std::uint64_t id) const noexcept
{
    // The mapping holds `slots` atomics, page-aligned.
    auto* table = static_cast<std::atomic<std::uint64_t>*>(mapping_.get());
    return table[id % slots];
}

std::uint64_t CallClaims::offer()
{
    for (std::size_t i = 0; i < slots; ++i) {
        if (!used_[i]) {
            used_[i] = true;
            const std::uint64_t id = next_round_++ * slots + i;
            offer(id);
            return id;
        }
    }
    throw std::length_error("futura: a worker has more unanswered calls than its claim table "
                            "holds");
}

void CallClaims::offer(std::uint64_t id) noexcept
{
    // Release: the worker reads the call's frame after this store, through a syscall that
    // orders it anyway; the ordering documents the intent.
    slot(id).store(id << state_bits | offered, std::memory_order_release);
}

bool CallClaims::revoke(std::uint64_t id) noexcept
{
    std::uint64_t expected = id << state_bits | offered;
    return slot(id).compare_exchange_strong(expected, id << state_bits | revoked,
                                            std::memory_order_acq_rel);
}

bool CallClaims::claimed(std::uint64_t id) const noexcept
{
    return slot(id).load(std::memory_order_acquire) == (id << state_bits | claimed_by_worker);
}

void CallClaims::release(std::uint64_t id) noexcept
{
    const std::size_t index = id % slots;
    if (index < used_.size()) {
        used_[index] = false;
    }
}

bool CallClaims::claim(std::uint64_t id) noexcept
{
    std::uint64_t expected = id << state_bits | offered;
    return slot(id).compare_exchange_strong(expected, id << state_bits | claimed_by_worker,
                                            std::memory_order_acq_rel);
}

} // namespace futura::detail
