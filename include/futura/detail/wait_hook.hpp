// One process-wide "progress while waiting" hook. A transport whose answers arrive only when
// someone polls for them (MPI offers no wait for "a message or a futex") installs it, and a
// thread that waits for a future polls through it during its spin window, before it sleeps:
// the answer it waits for is then picked up by the thread that wants it, without waking it
// from another thread. Without a hook, waiting pays one relaxed load of a null pointer.
#pragma once

namespace futura::detail {

/// What a transport installs. `poll` must return quickly, never block (take its locks with
/// try_lock) and never throw; it may complete futures (and so run their done callbacks) on
/// the waiting thread.
struct WaitHook
{
    void (*poll)(WaitHook& self) noexcept = nullptr;
};

/// Installs `hook` if none is. @return whether it did (one transport polls; the others'
/// waiters are woken as usual).
bool install_wait_hook(WaitHook& hook) noexcept;

/// Removes `hook` if it is installed, and returns once no other thread polls through it any
/// more. From inside a poll (a done callback that lets the transport go) it does not wait for
/// its own thread: such a poll must touch nothing of the hook after running callbacks.
void remove_wait_hook(WaitHook& hook) noexcept;

/// Polls through the installed hook, if any.
void poll_wait_hook() noexcept;

} // namespace futura::detail
