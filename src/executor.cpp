// The compiled part of the Executor interface: its non-virtual members, the defaults of its
// optional seams, and the default pool size (the CPUs this process may use).
#include <futura/executor.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sched.h>
#include <string>

namespace futura {

Executor::~Executor() = default;

void Executor::shutdown(ShutdownOptions options) { do_shutdown(options); }

std::size_t Executor::max_workers() const noexcept { return do_max_workers(); }

ExecutorStats Executor::stats() const { return do_stats(); }

std::size_t Executor::do_auto_chunksize(std::optional<std::size_t> /*total*/,
                                        detail::CallKey /*key*/) const
{
    return 1;
}

std::size_t Executor::do_share_threshold() const noexcept
{
    return std::size_t{1} << 20; // ProcessPoolOptions::share_threshold's default
}

namespace {

std::size_t affinity_cpus() noexcept
{
    // Start with room for 1024 CPUs and grow: a fixed cpu_set_t fails on bigger machines.
    for (std::size_t count = 1024; count <= (std::size_t{1} << 20); count *= 2) {
        cpu_set_t* set = CPU_ALLOC(count);
        if (set == nullptr) {
            break;
        }
        const std::size_t size = CPU_ALLOC_SIZE(count);
        if (sched_getaffinity(0, size, set) == 0) {
            const auto cpus = static_cast<std::size_t>(CPU_COUNT_S(size, set));
            CPU_FREE(set);
            return cpus;
        }
        CPU_FREE(set);
    }
    return 1;
}

/// CPUs allowed by a cgroup v2 `cpu.max` file ("max 100000" or "150000 100000"), if limited.
std::size_t quota_cpus(const std::string& cpu_max_path)
{
    std::ifstream file(cpu_max_path);
    std::string quota;
    double period = 0;
    if (!(file >> quota >> period) || quota == "max" || period <= 0) {
        return std::numeric_limits<std::size_t>::max();
    }
    return static_cast<std::size_t>(std::ceil(std::stod(quota) / period));
}

/// The tightest CPU quota on this process's cgroup v2 path (a parent may be stricter), or on
/// its cgroup v1 `cpu` controller.
std::size_t cgroup_cpus()
{
    std::size_t limit = std::numeric_limits<std::size_t>::max();
    std::ifstream self("/proc/self/cgroup");
    std::string line;
    while (std::getline(self, line)) {
        if (line.rfind("0::", 0) == 0) {
            std::string path = line.substr(3);
            for (;;) {
                limit = std::min(limit, quota_cpus("/sys/fs/cgroup" + path + "/cpu.max"));
                if (path.empty() || path == "/") {
                    break;
                }
                path.erase(path.rfind('/'));
            }
        }
    }
    std::ifstream v1_quota("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
    std::ifstream v1_period("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
    double quota = 0;
    double period = 0;
    if ((v1_quota >> quota) && (v1_period >> period) && quota > 0 && period > 0) {
        limit = std::min(limit, static_cast<std::size_t>(std::ceil(quota / period)));
    }
    return limit;
}

} // namespace

std::size_t available_cpus() noexcept
{
    // Not cached: like `nproc`, it follows changes to the affinity mask made at run time.
    std::size_t cpus = affinity_cpus();
    try {
        cpus = std::min(cpus, cgroup_cpus());
    } catch (...) { // an unreadable cgroup file only loses the cap
    }
    return std::max<std::size_t>(cpus, 1);
}

namespace detail {

std::size_t checked_max_workers(const std::optional<int>& max_workers, const char* executor)
{
    if (!max_workers) {
        return available_cpus();
    }
    if (*max_workers <= 0) {
        throw std::invalid_argument(
            std::string("futura::") + executor + ": max_workers must be greater than 0 (got " +
            std::to_string(*max_workers) + "); leave it unset for one worker per available CPU");
    }
    return static_cast<std::size_t>(*max_workers);
}

} // namespace detail

} // namespace futura
