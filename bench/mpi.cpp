// futura_bench_mpi: futura::MpiPoolExecutor against mpi4py.futures.MPIPoolExecutor (same
// number of workers; bench/peers/mpi.py) and a raw Boost.MPI ping-pong as the floor, plus the
// process pool on the W3-like shapes. Run by scripts/bench --only=mpi:
//
//   mpiexec -n W+1 futura_bench_mpi [--peer-results=FILE,...]      pre-started workers
//   FUTURA_MPI_SPMD=1 mpiexec -n 2 futura_bench_mpi --pingpong     the floor alone
//
// Workloads: submit throughput (N trivial tasks, all submitted, then all awaited), map with
// automatic chunks over N inputs, submit→result round trip (p50, p99), and the speedup on a
// uniform and a heavy-tailed shape of CPU-bound tasks (MpiPoolExecutor against
// ProcessPoolExecutor with as many workers). The table goes to stdout, `result` lines to stderr.
#include <futura/futura.hpp>
#include <futura/mpi.hpp>

#include <boost/mpi/communicator.hpp>
#include <boost/mpi/environment.hpp>

#include <cmath>
#include <ctime>
#include <iostream>
#include <map>
#include <numbers>
#include <numeric>

#include "harness.hpp"

using namespace futura_bench;

namespace {

struct Settings
{
    long long submit_n = 20'000;
    long long map_n = 1'000'000;
    long long rt_n = 2'000;
    long long reps = 3;
    long long w3_reps = 3;
    bool pingpong = false;
    std::vector<std::string> peer_results;
};

int trivial(int x) { return x + 1; }

long square(int x) { return static_cast<long>(x) * x; }

/// Keeps a CPU busy for `us` microseconds (CPU-bound, like W3's tasks, without calibration).
std::int64_t spin(std::int64_t us)
{
    const auto until = Clock::now() + std::chrono::microseconds(us);
    std::uint64_t x = 1;
    while (Clock::now() < until) {
        for (int k = 0; k < 256; ++k) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            x ^= x >> 29;
        }
    }
    return static_cast<std::int64_t>(x & 1U) + us;
}

double unit_draw(std::uint64_t& state)
{
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (static_cast<double>(state >> 11) + 0.5) / 9007199254740992.0;
}

/// W3's shapes: 20 × 50 ms; 400 log-normal durations (median 2 ms, σ 1.5, at most 200 ms).
std::vector<std::int64_t> shape(const std::string& id)
{
    if (id == "uniform") {
        return std::vector<std::int64_t>(20, 50'000);
    }
    std::uint64_t state = 8;
    std::vector<std::int64_t> us;
    for (int k = 0; k < 400; ++k) {
        const double u1 = unit_draw(state);
        const double u2 = unit_draw(state);
        const double normal =
            std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
        us.push_back(static_cast<std::int64_t>(
            std::floor(std::min(200.0, 2.0 * std::exp(1.5 * normal)) * 1e3 + 0.5)));
    }
    return us;
}

double submit_rate(futura::Executor& pool, long long n)
{
    const auto start = Clock::now();
    std::vector<futura::Future<int>> futures;
    futures.reserve(static_cast<std::size_t>(n));
    for (long long k = 0; k < n; ++k) {
        futures.push_back(pool.submit(trivial, static_cast<int>(k)));
    }
    long long sum = 0;
    for (auto& f : futures) {
        sum += f.result();
    }
    if (sum <= 0) {
        fail("submit: wrong results");
    }
    return static_cast<double>(n) / seconds_since(start);
}

double map_rate(futura::Executor& pool, long long n)
{
    std::vector<int> inputs(static_cast<std::size_t>(n));
    std::iota(inputs.begin(), inputs.end(), 0);
    const auto start = Clock::now();
    long sum = 0;
    for (long r : pool.map(square, inputs)) {
        sum += r;
    }
    const double rate = static_cast<double>(n) / seconds_since(start);
    if (sum <= 0) {
        fail("map: wrong results");
    }
    return rate;
}

std::pair<double, double> round_trip(futura::Executor& pool, long long n)
{
    for (int k = 0; k < 100; ++k) {
        (void)pool.submit(trivial, k).result();
    }
    std::vector<double> us;
    us.reserve(static_cast<std::size_t>(n));
    for (long long k = 0; k < n; ++k) {
        const auto start = Clock::now();
        (void)pool.submit(trivial, static_cast<int>(k)).result();
        us.push_back(micros(Clock::now() - start));
    }
    return {percentile(us, 0.5), percentile(us, 0.99)};
}

/// This process's CPU time (all threads), in seconds.
double cpu_seconds()
{
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

double speedup(futura::Executor& pool, const std::vector<std::int64_t>& us)
{
    const double cpu_before = cpu_seconds();
    const auto start = Clock::now();
    std::vector<futura::Future<std::int64_t>> futures;
    for (const auto d : us) {
        futures.push_back(pool.submit(spin, d));
    }
    for (auto& f : futures) {
        (void)f.result();
    }
    const double wall = seconds_since(start);
    // Where a shortfall of the speedup goes: the CPU the submitting process itself used (its
    // threads compete with the workers for the machine's cores).
    std::cerr << "  root CPU " << fixed(100 * (cpu_seconds() - cpu_before) / wall, 1)
              << "% of one core over " << fixed(wall, 3) << " s\n";
    const double busy = static_cast<double>(std::accumulate(us.begin(), us.end(), 0LL)) / 1e6;
    return busy / wall;
}

/// The floor: rank 0 sends an int to rank 1 and waits for it back, through Boost.MPI.
int pingpong(const Settings& s)
{
    boost::mpi::environment environment;
    boost::mpi::communicator world;
    if (world.size() != 2) {
        fail("--pingpong runs on exactly 2 ranks");
    }
    const long long rounds = s.rt_n + 100;
    std::vector<double> p50s;
    std::vector<double> p99s;
    for (long long rep = 0; rep < s.reps; ++rep) {
        std::vector<double> us;
        for (long long k = 0; k < rounds; ++k) {
            int value = static_cast<int>(k);
            if (world.rank() == 0) {
                const auto start = Clock::now();
                world.send(1, 0, value);
                world.recv(1, 0, value);
                if (k >= 100) {
                    us.push_back(micros(Clock::now() - start));
                }
            } else {
                world.recv(0, 0, value);
                world.send(0, 0, value + 1);
            }
        }
        if (world.rank() == 0) {
            p50s.push_back(percentile(us, 0.5));
            p99s.push_back(percentile(us, 0.99));
        }
    }
    if (world.rank() == 0) {
        const std::string label = "Boost.MPI ping-pong of an int (reference)";
        print_row(std::cout, summarise("rt_p50", "boost_mpi_pingpong", label, s.rt_n, p50s));
        print_row(std::cout, summarise("rt_p99", "boost_mpi_pingpong", label, s.rt_n, p99s));
    }
    return 0;
}

struct Group
{
    std::string id;
    std::string title;
    std::string unit;
    bool higher_is_better;
};

void print_table(const Settings& s, std::size_t workers, const std::vector<Row>& rows)
{
    const std::vector<Group> groups = {
        {"submit_rate", "submit throughput, N = " + grouped(s.submit_n) + " trivial tasks",
         "tasks/s", true},
        {"map_rate", "map, N = " + grouped(s.map_n) + " inputs", "inputs/s", true},
        {"rt_p50", "submit→result round trip, p50", "µs", false},
        {"rt_p99", "submit→result round trip, p99", "µs", false},
        {"w3_speedup_uniform", "speedup, uniform: 20 × 50 ms", "×", true},
        {"w3_speedup_heavy_tail",
         "speedup, heavy-tailed: 400, log-normal, median 2 ms, σ 1.5, at most 200 ms", "×", true},
    };
    std::cout << "Workers: " << workers << " (MPI ranks besides the root; as many for "
              << "mpi4py.futures and the process pool). Medians of " << s.reps
              << " repetitions (W3: " << s.w3_reps << "), min–max beside them; the ratio is "
              << "futura's figure over the row's (above 1: futura better for rates and speedups; "
              << "for µs, the row's time over futura's).\n\n";
    std::cout << "| workload | implementation | median | min–max | futura's ratio |\n"
              << "|---|---|---:|---:|---:|\n";
    for (const auto& group : groups) {
        const Row* futura_row = nullptr;
        for (const auto& row : rows) {
            if (row.group == group.id && row.impl == "futura_mpi") {
                futura_row = &row;
            }
        }
        for (const auto& row : rows) {
            if (row.group != group.id) {
                continue;
            }
            const int decimals = group.unit == "×" ? 2 : group.unit == "µs" ? 1 : 0;
            std::string ratio = "—";
            if (futura_row != nullptr && &row != futura_row && row.median > 0 &&
                futura_row->median > 0) {
                const double r = group.higher_is_better ? futura_row->median / row.median
                                                        : row.median / futura_row->median;
                ratio = fixed(r, 2) + "×";
            }
            const auto show = [&](double v) {
                return decimals == 0 ? grouped(v) : fixed(v, decimals);
            };
            std::cout << "| " << group.title << " | " << row.label << " | " << show(row.median)
                      << " " << group.unit << " | " << show(row.min) << "–" << show(row.max)
                      << " | " << ratio << " |\n";
        }
    }
}

Row measure(const std::string& group, const std::string& impl, const std::string& label,
            long long n, long long reps, const std::function<double()>& once)
{
    std::vector<double> values;
    for (long long k = 0; k < reps; ++k) {
        values.push_back(once());
    }
    Row row = summarise(group, impl, label, n, values);
    print_row(std::cerr, row);
    return row;
}

int run(const Settings& s)
{
    std::vector<Row> rows;
    std::size_t workers = 0;
    {
        futura::MpiPoolExecutor pool;
        workers = pool.max_workers();
        const std::string label = "futura MpiPoolExecutor";
        std::cerr << "mpi: submit\n";
        rows.push_back(measure("submit_rate", "futura_mpi", label, s.submit_n, s.reps,
                               [&] { return submit_rate(pool, s.submit_n); }));
        std::cerr << "mpi: map\n";
        rows.push_back(measure("map_rate", "futura_mpi", label + ", map (automatic chunks)",
                               s.map_n, s.reps, [&] { return map_rate(pool, s.map_n); }));
        std::cerr << "mpi: round trip\n";
        std::vector<double> p50s;
        std::vector<double> p99s;
        for (long long k = 0; k < s.reps; ++k) {
            const auto [p50, p99] = round_trip(pool, s.rt_n);
            p50s.push_back(p50);
            p99s.push_back(p99);
        }
        rows.push_back(summarise("rt_p50", "futura_mpi", label, s.rt_n, p50s));
        rows.push_back(summarise("rt_p99", "futura_mpi", label, s.rt_n, p99s));
        print_row(std::cerr, rows[rows.size() - 2]);
        print_row(std::cerr, rows.back());
        for (const std::string id : {"uniform", "heavy_tail"}) {
            if (s.w3_reps == 0) {
                break; // --w3-reps=0: the round trip alone, for profiling
            }
            std::cerr << "mpi: W3 " << id << "\n";
            const auto us = shape(id);
            rows.push_back(measure("w3_speedup_" + id, "futura_mpi", label,
                                   static_cast<long long>(us.size()), s.w3_reps,
                                   [&] { return speedup(pool, us); }));
        }
    }
    if (s.w3_reps > 0) {
        futura::ProcessPoolExecutor pool{{.max_workers = static_cast<int>(workers)}};
        const std::string label = "futura ProcessPoolExecutor (same workers, one node)";
        for (const std::string id : {"uniform", "heavy_tail"}) {
            std::cerr << "process pool: W3 " << id << "\n";
            const auto us = shape(id);
            (void)speedup(pool, std::vector<std::int64_t>(workers * 2, 1000)); // start workers
            rows.push_back(measure("w3_speedup_" + id, "futura_process", label,
                                   static_cast<long long>(us.size()), s.w3_reps,
                                   [&] { return speedup(pool, us); }));
        }
    }
    for (const auto& path : s.peer_results) {
        for (auto& row : read_rows(path)) {
            rows.push_back(std::move(row));
        }
    }
    print_table(s, workers, rows);
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    Settings s;
    try {
        for (const auto& [key, value] :
             options(argc, argv,
                     "usage: futura_bench_mpi [--submit-n=N] [--map-n=N] [--rt-n=N] [--reps=N] "
                     "[--w3-reps=N (0: no W3)] [--pingpong=1] [--peer-results=FILE,...]")) {
            if (key == "submit-n") {
                s.submit_n = to_count(value, key);
            } else if (key == "map-n") {
                s.map_n = to_count(value, key);
            } else if (key == "rt-n") {
                s.rt_n = to_count(value, key);
            } else if (key == "reps") {
                s.reps = to_count(value, key);
            } else if (key == "w3-reps") {
                s.w3_reps = value == "0" ? 0 : to_count(value, key);
            } else if (key == "pingpong") {
                s.pingpong = true;
            } else if (key == "peer-results") {
                s.peer_results = split(value);
            } else {
                fail("unknown option --" + key);
            }
        }
        return s.pingpong ? pingpong(s) : run(s);
    } catch (const std::exception& e) {
        std::cerr << "futura_bench_mpi: " << e.what() << '\n';
        return 1;
    }
}
