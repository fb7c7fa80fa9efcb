// Threads that must never block in a wait: a process pool's I/O thread runs the done callbacks
// of its futures and delivers the results such a wait would be waiting for, so a wait there
// would never end. It fails at once instead, saying why.
#pragma once

#include <futura/detail/deadline.hpp>

namespace futura::detail {

/// Marks the calling thread as one that must never block in a wait (null: it may again), and
/// says why.
void forbid_blocking(const char* why) noexcept;

/// Throws `InvalidStateError` (with the reason given to `forbid_blocking`) if the calling thread
/// must never block and `deadline` has not passed (a poll is always allowed).
void check_may_block(Deadline deadline);

} // namespace futura::detail
