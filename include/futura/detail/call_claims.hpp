// A small table in memory shared by the pool and one worker process, through which a call sent
// ahead can be taken back until the moment the worker starts it, and never after: the worker
// claims each call before running it, the pool revokes by the same compare-and-swap, and
// exactly one of them wins. No message is needed, and the answer is immediate on both sides,
// which a revoke frame could not give while the worker runs a long call.
#pragma once

#include <futura/detail/unique_fd.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace futura::detail {

class CallClaims
{
public:
    /// Room for this many unanswered calls per worker (more than the scheduler ever sends).
    static constexpr std::size_t slots = 128;

    /// The parent's side: a fresh table in a new shared segment.
    static CallClaims create();
    /// The worker's side: maps the table the parent sent. @throws ProtocolError if `fd` is not
    /// a table.
    static CallClaims open(UniqueFd fd);

    /// The descriptor to send to the worker.
    [[nodiscard]] int fd() const noexcept;

    // ----- parent ----------------------------------------------------------------------------
    /// Makes a fresh id for a call about to be sent, in a free slot, marked as offered.
    /// @throws std::length_error if every slot holds an unanswered call.
    std::uint64_t offer();
    /// Marks the call `id`, chosen by the caller, as offered (its slot must be free).
    void offer(std::uint64_t id) noexcept;
    /// Takes back the offered call `id`. @return false if the worker has claimed it already.
    bool revoke(std::uint64_t id) noexcept;
    /// Whether the worker claimed `id` (it runs or ran).
    [[nodiscard]] bool claimed(std::uint64_t id) const noexcept;
    /// The call `id` is answered, revoked or lost: its slot may take another.
    void release(std::uint64_t id) noexcept;

    // ----- worker ----------------------------------------------------------------------------
    /// Claims `id` before running it. @return false if the parent revoked it (or never offered
    /// it): then it must not run.
    bool claim(std::uint64_t id) noexcept;

private:
    enum State : std::uint64_t
    {
        offered = 1,
        claimed_by_worker = 2,
        revoked = 3,
    };
    static constexpr std::uint64_t state_bits = 2;

    CallClaims(std::shared_ptr<void> mapping, UniqueFd fd, bool parent);
    std::atomic<std::uint64_t>& slot(std::uint64_t id) const noexcept;

    std::shared_ptr<void> mapping_; // the table; unmapped when the last copy goes
    UniqueFd fd_;                   // parent: to send; a worker keeps none open
    std::vector<bool> used_;        // parent: which slots hold an unanswered call
    std::uint64_t next_round_ = 1;  // parent: ids are round * slots + slot, so never reused
};

} // namespace futura::detail
