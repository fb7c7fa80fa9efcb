// What the pool says when a worker process dies: how it ended, whether the kernel's
// out-of-memory killer took it, its resource use, and the last lines it wrote to stderr.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <sys/resource.h>
#include <sys/types.h>

namespace futura::detail {

/// The last lines a worker wrote to stderr, bounded in number and length whatever it writes: a
/// progress bar without newlines or a flood of output costs neither memory nor time.
class StderrTail
{
public:
    static constexpr std::size_t lines_kept = 20;
    static constexpr std::size_t line_bytes_kept = 512;

    /// Takes in bytes as they come; only the new bytes are searched for line ends.
    void append(std::string_view bytes);
    /// The line being written (no newline yet) becomes a line of its own.
    void finish();
    [[nodiscard]] const std::deque<std::string>& lines() const noexcept { return lines_; }

private:
    void end_line();

    std::deque<std::string> lines_;
    std::string partial_; // at most line_bytes_kept bytes: the start of the line
    bool cut_ = false;    // the line being written is longer than what partial_ keeps
};

/// "killed by signal 9 (SIGKILL: Killed)", "exited with status 3", ...
std::string describe_status(int status);

/// How many processes the kernel's out-of-memory killer has killed since boot.
std::uint64_t oom_kills() noexcept;

/// Why the pool expected a worker to end, if it did.
enum class ExpectedDeath
{
    unexpected,
    timeout,     ///< killed: its task overran task_timeout
    killed_task, ///< killed: kill(future) of the task it ran
    bad_message, ///< killed: it sent bytes that are not a valid message
    retired,     ///< asked to leave: max_tasks_per_child
    shutdown,    ///< asked to leave: the pool shuts down
    signalled,   ///< terminate_workers() or kill_workers()
};

/// What a dead worker was doing, for the report.
enum class WorkerActivity
{
    starting, ///< it had not said it was ready
    idle,     ///< it was not running a task
    running,  ///< it was running a task
};

/// The text of `WorkerCrashed` (or of a broken pool) for worker `pid`.
std::string crash_report(pid_t pid, int status, const rusage& usage, ExpectedDeath expected,
                         bool oom_killer_acted, WorkerActivity activity, const StderrTail& tail);

} // namespace futura::detail
