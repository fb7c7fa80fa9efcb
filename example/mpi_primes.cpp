// Counting primes on MPI ranks: the process-pool program of the tutorial, with one line
// changed. Run it either way:
//
//   ./mpi_primes                 started alone: spawns its workers (MPI_Comm_spawn)
//   mpiexec -n 4 ./mpi_primes    rank 0 runs main; ranks 1..3 serve as workers
//
// It exits 0 when the count is right.
#include <futura/mpi.hpp>

#include <cstdio>
#include <numeric>
#include <vector>

// [count]
/// How many primes lie in [begin, end), by trial division (slow on purpose: real work).
int count_primes(std::pair<int, int> range)
{
    int count = 0;
    for (int n = std::max(range.first, 2); n < range.second; ++n) {
        bool prime = true;
        for (int d = 2; d * d <= n; ++d) {
            if (n % d == 0) {
                prime = false;
                break;
            }
        }
        count += prime ? 1 : 0;
    }
    return count;
}
// [count-end]

int main()
{
    // [pool]
    // futura::ProcessPoolExecutor pool;   <- the process pool; on MPI ranks instead:
    futura::MpiPoolExecutor pool;
    // [pool-end]

    // [map]
    constexpr int limit = 2'000'000;
    constexpr int step = 50'000;
    std::vector<std::pair<int, int>> ranges;
    for (int begin = 0; begin < limit; begin += step) {
        ranges.emplace_back(begin, begin + step);
    }
    int total = 0;
    for (int count : pool.map(count_primes, ranges)) {
        total += count;
    }
    std::printf("%d primes below %d, counted on %zu %s workers\n", total, limit, pool.max_workers(),
                pool.pre_started() ? "pre-started" : "spawned");
    // [map-end]
    return total == 148'933 ? 0 : 1;
}
