// The report of a worker process's death (see crash_report.hpp).
#include <futura/detail/crash_report.hpp>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <sys/wait.h>

namespace futura::detail {

void StderrTail::append(std::string_view bytes)
{
    while (!bytes.empty()) {
        const auto newline = bytes.find('\n');
        const auto line = bytes.substr(0, newline);
        const auto room = line_bytes_kept - partial_.size();
        partial_.append(line.substr(0, room));
        cut_ = cut_ || line.size() > room;
        if (newline == std::string_view::npos) {
            return;
        }
        end_line();
        bytes.remove_prefix(newline + 1);
    }
}

void StderrTail::finish()
{
    if (!partial_.empty() || cut_) {
        end_line();
    }
}

void StderrTail::end_line()
{
    if (cut_) {
        partial_ += " [...]";
    }
    lines_.push_back(std::move(partial_));
    partial_.clear();
    cut_ = false;
    if (lines_.size() > lines_kept) {
        lines_.pop_front();
    }
}

std::string describe_status(int status)
{
    if (WIFSIGNALED(status)) {
        const int signal = WTERMSIG(status);
        const char* name = sigabbrev_np(signal);
        return "killed by signal " + std::to_string(signal) + " (SIG" +
               (name != nullptr ? name : "?") + ": " + strsignal(signal) + ")";
    }
    if (WIFEXITED(status)) {
        return "exited with status " + std::to_string(WEXITSTATUS(status));
    }
    return "ended with wait status " + std::to_string(status);
}

std::uint64_t oom_kills() noexcept
{
    std::FILE* vmstat = std::fopen("/proc/vmstat", "re");
    if (vmstat == nullptr) {
        return 0;
    }
    char name[64];
    unsigned long long value = 0;
    std::uint64_t kills = 0;
    while (std::fscanf(vmstat, "%63s %llu", name, &value) == 2) {
        if (std::strcmp(name, "oom_kill") == 0) {
            kills = value;
            break;
        }
    }
    std::fclose(vmstat);
    return kills;
}

std::string crash_report(pid_t pid, int status, const rusage& usage, ExpectedDeath expected,
                         bool oom_killer_acted, WorkerActivity activity, const StderrTail& tail)
{
    std::ostringstream report;
    report << "futura::ProcessPoolExecutor: worker process " << pid << " "
           << describe_status(status);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
        switch (expected) {
        case ExpectedDeath::signalled:
            report << " (by terminate_workers() or kill_workers())";
            break;
        case ExpectedDeath::bad_message:
            report << " (by futura: it sent bytes that are not a valid message)";
            break;
        case ExpectedDeath::timeout:
            report << " (by futura: its task overran task_timeout)";
            break;
        case ExpectedDeath::killed_task:
            report << " (by futura: kill() of its task)";
            break;
        default:
            report << (oom_killer_acted
                           ? " (the kernel's out-of-memory killer killed a process meanwhile: most "
                             "likely this one, for using too much memory)"
                           : " (not by futura)");
            break;
        }
    }
    const double cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                       static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    report << (activity == WorkerActivity::running    ? " while running a task"
               : activity == WorkerActivity::starting ? " while starting, before it ran any task"
                                                      : " while idle, between tasks")
           << "; peak memory " << usage.ru_maxrss / 1024 << " MiB, CPU time " << cpu << " s";
    if (!tail.lines().empty()) {
        report << "; its last lines on stderr:";
        for (const auto& line : tail.lines()) {
            report << "\n    " << line;
        }
    }
    return std::move(report).str();
}

} // namespace futura::detail
