// Starting worker processes (see worker_launch.hpp).
// Boost.Process v2 on std::filesystem (no Boost.Filesystem to link); its 1.81 configuration
// header forgets the Boost headers it then uses unqualified.
#define BOOST_PROCESS_USE_STD_FS 1
#include <futura/detail/channel_key.hpp>
#include <futura/detail/worker.hpp>
#include <futura/detail/worker_launch.hpp>

#include <boost/optional.hpp>
#include <boost/process/v2/environment.hpp>
#include <boost/process/v2/process.hpp>
#include <boost/process/v2/stdio.hpp>
#include <boost/type_traits/decay.hpp>
#include <boost/type_traits/is_convertible.hpp>
// Header-only 1.81 leaves this part of process_environment out of environment.hpp.
#include <boost/process/v2/impl/environment.ipp>
#include <boost/process/v2/start_dir.hpp>

#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <map>
#include <stdio_ext.h>
#include <string_view>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <system_error>
#include <unistd.h>

extern char** environ; // NOLINT

namespace futura::detail {

namespace bp = boost::process::v2;

namespace {

/// Leaves open, across the exec of a worker, nothing but its stdio and its channel: every other
/// descriptor of the parent (other workers' channels among them) becomes close-on-exec. (Boost
/// 1.81's own closing skips descriptors between whitelisted ones; closing them here instead
/// would also close Boost's exec-error pipe, which is close-on-exec already.)
void close_others_on_exec() noexcept
{
    ::syscall(SYS_close_range, worker_channel_fd + 1, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
}

/// Prepares the forked child for exec as a worker. Also replaces Boost.Process's bind_fd, whose
/// 1.81 on_setup falls off its end without returning.
struct WorkerSetup
{
    pid_t parent;
    int channel;

    template <class Launcher>
    bp::error_code on_setup(Launcher& launcher, const bp::filesystem::path& /*exe*/,
                            const char* const*& /*cmd_line*/)
    {
        launcher.fd_whitelist.push_back(worker_channel_fd);
        return {};
    }

    template <class Launcher>
    bp::error_code on_exec_setup(Launcher& /*launcher*/, const bp::filesystem::path& /*exe*/,
                                 const char* const*& /*cmd_line*/)
    {
        // The worker must die with the parent (precisely: with the forking thread, the pool's
        // I/O thread, which lives as long as the pool).
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) {
            ::_exit(1); // the parent died before prctl took effect
        }
        // Ctrl-C reaches the whole process group: the parent decides what happens to workers.
        std::signal(SIGINT, SIG_IGN);
        const int moved = channel == worker_channel_fd
                              ? ::fcntl(channel, F_SETFD, 0) // keep it open across exec
                              : ::dup2(channel, worker_channel_fd);
        if (moved == -1) {
            return {errno, bp::system_category()};
        }
        close_others_on_exec();
        return {};
    }
};

/// Starts this program afresh as a worker. @return its pid.
pid_t spawn_worker(boost::asio::io_context& io, const WorkerLaunch& launch, int channel, int err)
{
    const std::vector<std::string> arguments;
    bp::process child(io.get_executor(), "/proc/self/exe", arguments,
                      bp::process_stdio{nullptr, {}, err},
                      bp::process_environment(launch.environment),
                      bp::process_start_dir(launch.working_directory.empty()
                                                ? std::filesystem::current_path()
                                                : std::filesystem::path(launch.working_directory)),
                      WorkerSetup{::getpid(), channel});
    const pid_t pid = child.id();
    child.detach(); // the pool reaps it itself, with its resource usage
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
    variables[worker_share_threshold_variable] = std::to_string(options.share_threshold);
    variables[worker_segment_cache_variable] = std::to_string(options.segment_cache_bytes);
    std::vector<std::string> environment;
    environment.reserve(variables.size());
    for (const auto& [name, value] : variables) {
        environment.push_back(name + "=" + value);
    }
    return environment;
}

pid_t launch_worker(boost::asio::io_context& io, const WorkerLaunch& launch, int channel, int err)
{
    return launch.method == StartMethod::fork ? fork_worker(launch, channel, err)
                                              : spawn_worker(io, launch, channel, err);
}

} // namespace futura::detail
