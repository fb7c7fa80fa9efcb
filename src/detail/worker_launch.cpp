// Starting worker processes (see worker_launch.hpp).
#include <futura/detail/channel_key.hpp>
#include <futura/detail/unique_fd.hpp>
#include <futura/detail/worker.hpp>
#include <futura/detail/worker_launch.hpp>

#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <map>
#include <spawn.h>
#include <stdio_ext.h>
#include <string_view>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <system_error>
#include <unistd.h>

extern char** environ; // NOLINT

namespace futura::detail {

namespace {

/// posix_spawn's attributes and file actions, destroyed on every way out.
class SpawnPlan
{
public:
    SpawnPlan()
    {
        check(::posix_spawnattr_init(&attributes_));
        if (const int error = ::posix_spawn_file_actions_init(&actions_); error != 0) {
            ::posix_spawnattr_destroy(&attributes_);
            check(error);
        }
    }
    SpawnPlan(const SpawnPlan&) = delete;
    SpawnPlan& operator=(const SpawnPlan&) = delete;
    ~SpawnPlan()
    {
        ::posix_spawn_file_actions_destroy(&actions_);
        ::posix_spawnattr_destroy(&attributes_);
    }

    static void check(int error)
    {
        if (error != 0) {
            throw std::system_error(error, std::generic_category(), "futura: posix_spawn setup");
        }
    }

    posix_spawnattr_t* attributes() noexcept { return &attributes_; }
    posix_spawn_file_actions_t* actions() noexcept { return &actions_; }

private:
    posix_spawnattr_t attributes_{};
    posix_spawn_file_actions_t actions_{};
};

/// `fd` if it is above the descriptors a worker's start sets (0 to worker_channel_fd), else a
/// close-on-exec duplicate above them, which `keeper` owns.
int above_targets(int fd, UniqueFd& keeper)
{
    if (fd > worker_channel_fd) {
        return fd;
    }
    keeper = UniqueFd(::fcntl(fd, F_DUPFD_CLOEXEC, worker_channel_fd + 1));
    if (!keeper) {
        throw std::system_error(errno, std::generic_category(), "futura: fcntl(F_DUPFD_CLOEXEC)");
    }
    return keeper.get();
}

/// Starts this program afresh as a worker: stdin /dev/null, stderr `err`, `channel` as its
/// worker_channel_fd, no other descriptor of ours, SIGINT blocked until the worker ignores it.
/// @return its pid.
///
/// posix_spawn, not Boost.Process: Boost.Process 1.81's launchers fork, then allocate in the
/// child (the io_context's notify_fork, the descriptor list) before exec. In a program with
/// threads, the child has only the forking thread; an allocator lock another thread held at the
/// fork stays locked there forever, and the parent waits forever on Boost's exec-error pipe.
/// (Seen under AddressSanitizer: the pool's I/O thread, hence the whole pool, hung.) glibc's
/// posix_spawn runs only system calls between its clone and the exec, and reports exec errors.
/// What the child did before exec with Boost (die with the parent, ignore Ctrl-C) the worker
/// now does at its start (the wrapped `main`, `run_worker`).
pid_t spawn_worker(const WorkerLaunch& launch, int channel, int err)
{
    SpawnPlan plan;
    // Ctrl-C reaches the whole foreground process group: blocked from the start, it stays
    // pending until the worker ignores it, which discards it.
    sigset_t blocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGINT);
    SpawnPlan::check(::posix_spawnattr_setsigmask(plan.attributes(), &blocked));
    SpawnPlan::check(::posix_spawnattr_setflags(plan.attributes(), POSIX_SPAWN_SETSIGMASK));

    // The dup2 actions below must not overwrite one another's sources, and a dup2 onto itself
    // would leave the descriptor close-on-exec: sources among 0..3 are moved out of the way.
    UniqueFd moved_channel;
    UniqueFd moved_err;
    channel = above_targets(channel, moved_channel);
    err = above_targets(err, moved_err);
    auto* actions = plan.actions();
    SpawnPlan::check(
        ::posix_spawn_file_actions_addopen(actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0));
    SpawnPlan::check(::posix_spawn_file_actions_adddup2(actions, err, STDERR_FILENO));
    SpawnPlan::check(::posix_spawn_file_actions_adddup2(actions, channel, worker_channel_fd));
    // Other workers' channels must not stay open there: a worker learns of shutdown by end of
    // input, which never comes while another process holds the other end.
    SpawnPlan::check(::posix_spawn_file_actions_addclosefrom_np(actions, worker_channel_fd + 1));
    if (!launch.working_directory.empty()) {
        SpawnPlan::check(
            ::posix_spawn_file_actions_addchdir_np(actions, launch.working_directory.c_str()));
    }

    std::vector<char*> environment;
    environment.reserve(launch.environment.size() + 1);
    for (const auto& variable : launch.environment) {
        environment.push_back(const_cast<char*>(variable.c_str())); // NOLINT: exec's type
    }
    environment.push_back(nullptr);
    static constexpr const char* self = "/proc/self/exe";
    char* arguments[] = {const_cast<char*>(self), nullptr}; // NOLINT: exec's type

    pid_t pid = -1;
    if (const int error =
            ::posix_spawn(&pid, self, actions, plan.attributes(), arguments, environment.data());
        error != 0) {
        throw std::system_error(error, std::generic_category(),
                                "futura: starting a worker process (posix_spawn /proc/self/exe)");
    }
    return pid;
}

/// Forks this process into a worker (no exec). Only the forking thread exists in the child: a
/// lock another thread held at the fork stays locked there, hence `spawn` is the default, as in
/// Python 3.14. @return its pid.
pid_t fork_worker(const WorkerLaunch& launch, int channel, int err)
{
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        throw std::system_error(errno, std::generic_category(), "fork");
    }
    if (pid > 0) {
        return pid;
    }
    // The child. It never returns to the parent's io_context. Output the parent had buffered
    // but not written is the parent's to write: drop our copy, or the worker's exit would print
    // it a second time.
    __fpurge(stdout);
    __fpurge(stderr);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
        ::_exit(1);
    }
    std::signal(SIGINT, SIG_IGN);
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || ::dup2(null, STDIN_FILENO) < 0 || ::dup2(err, STDERR_FILENO) < 0 ||
        ::dup2(channel, worker_channel_fd) < 0 ||
        (!launch.working_directory.empty() && ::chdir(launch.working_directory.c_str()) != 0)) {
        ::_exit(2);
    }
    // Other workers' channels must not stay open here: a worker learns of shutdown by end of
    // input, which never comes while another process holds the other end.
    ::syscall(SYS_close_range, worker_channel_fd + 1, ~0U, 0);
    for (const auto& variable : launch.environment) {
        const auto equals = variable.find('=');
        ::setenv(variable.substr(0, equals).c_str(), variable.substr(equals + 1).c_str(), 1);
    }
    run_worker(worker_channel_fd, /*forked=*/true, launch.share_threshold,
               launch.segment_cache_bytes);
}

} // namespace

std::vector<std::string> worker_environment(const ProcessPoolOptions& options,
                                            std::size_t max_workers)
{
    std::map<std::string, std::string> variables;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        const std::string_view text(*entry);
        const auto equals = text.find('=');
        if (equals != std::string_view::npos) {
            variables.emplace(std::string(text.substr(0, equals)),
                              std::string(text.substr(equals + 1)));
        }
    }
    const std::size_t inner = options.inner_max_num_threads.value_or(
        std::max<std::size_t>(1, available_cpus() / max_workers));
    if (inner > 0) {
        for (const char* name : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}) {
            variables.try_emplace(name, std::to_string(inner)); // the user's setting wins
        }
    }
    for (const auto& [name, value] : options.environment) {
        variables[name] = value;
    }
    variables[worker_channel_variable] = std::to_string(worker_channel_fd);
    variables[worker_key_variable] = key_text(channel_key());
    variables[worker_parent_variable] = std::to_string(::getpid());
    variables[worker_share_threshold_variable] = std::to_string(options.share_threshold);
    variables[worker_segment_cache_variable] = std::to_string(options.segment_cache_bytes);
    std::vector<std::string> environment;
    environment.reserve(variables.size());
    for (const auto& [name, value] : variables) {
        environment.push_back(name + "=" + value);
    }
    return environment;
}

pid_t launch_worker(const WorkerLaunch& launch, int channel, int err)
{
    return launch.method == StartMethod::fork ? fork_worker(launch, channel, err)
                                              : spawn_worker(launch, channel, err);
}

} // namespace futura::detail
