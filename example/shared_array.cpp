// The code of doc/shared_memory.md: a 100-million-element array doubled by worker processes,
// each given a slice of it (a handle, not a copy); a counter the workers share; a file-backed
// array; and large vectors and spans that cross into workers by themselves.
//
// The lines between `// [name]` and `// [name-end]` are shown in the docs verbatim
// (scripts/check-docs keeps them in sync). The program is a test: its exit status is 0 when every
// check passed, 1 otherwise. The timings it prints are for reading, not checked.

#include <futura/futura.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <ranges>
#include <span>
#include <vector>

namespace {

int failed_checks = 0;

void check(bool ok, const char* what)
{
    if (!ok) {
        std::cerr << "FAILED: " << what << "\n";
        ++failed_checks;
    }
}

double seconds_since(std::chrono::steady_clock::time_point start)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// [double-slice]
// Runs in a worker process: `part` is a handle to a slice of the caller's array, so the
// worker writes straight into the caller's memory. Nothing is copied either way.
void double_in_place(futura::SharedArray<double> part)
{
    for (double& x : part) {
        x *= 2;
    }
}
// [double-slice-end]

// [count]
// Counts the even numbers of a slice into a counter that every worker shares.
void count_even_into(futura::SharedArray<std::int64_t> part, futura::SharedValue<long> evens)
{
    const auto found = std::count_if(part.begin(), part.end(), [](auto x) { return x % 2 == 0; });
    evens.fetch_add(static_cast<long>(found)); // atomic, across processes
}
// [count-end]

// [automatic]
// An ordinary function on ordinary types: the 8 MB vector travels in shared memory by itself
// (it is above ProcessPoolOptions::share_threshold, 1 MiB by default), as does the result.
std::vector<float> scaled(std::vector<float> values, float factor)
{
    for (float& x : values) {
        x *= factor;
    }
    return values;
}

// A read-only view: the worker reads the caller's data where it is, if it is shared memory,
// or a copy otherwise.
double mean(std::span<const double> values)
{
    return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}
// [automatic-end]

// [shared-vector]
// Runs in a worker process: appends to the caller's vector. A SharedVector travels as a handle,
// so what the worker appends is in the caller's vector when the task is done.
void collect_primes(futura::SharedVector<std::int64_t> primes, std::int64_t below)
{
    for (std::int64_t n = 2; n < below; ++n) {
        bool prime = true;
        for (std::int64_t d = 2; d * d <= n && prime; ++d) {
            prime = n % d != 0;
        }
        if (prime) {
            primes.push_back(n); // grows in place: nothing is copied, nothing moves
        }
    }
}
// [shared-vector-end]

} // namespace

int main()
{
    futura::ProcessPoolExecutor pool;
    const auto workers = static_cast<std::size_t>(pool.max_workers());

    // [split]
    const std::size_t n = 100'000'000; // 800 MB of doubles
    futura::SharedArray<double> data(n, 1.5);

    const auto start = std::chrono::steady_clock::now();
    std::vector<futura::Future<void>> parts;
    for (std::size_t w = 0; w < workers; ++w) {
        const std::size_t begin = n * w / workers;
        const std::size_t end = n * (w + 1) / workers;
        parts.push_back(pool.submit(double_in_place, data.slice(begin, end - begin)));
    }
    for (auto& part : parts) {
        part.result(); // rethrows a worker's exception, if any
    }
    std::cout << "doubled " << n << " elements on " << workers << " processes in " << std::fixed
              << std::setprecision(3) << seconds_since(start) << " s\n";
    // [split-end]
    check(std::all_of(data.begin(), data.end(), [](double x) { return x == 3.0; }),
          "every element doubled by the workers is doubled here");

    {
        // [counter]
        futura::SharedArray<std::int64_t> numbers(std::views::iota(std::int64_t{0}, 1'000'000));
        futura::SharedValue<long> evens; // 0
        auto first = pool.submit(count_even_into, numbers.slice(0, 500'000), evens);
        auto second = pool.submit(count_even_into, numbers.slice(500'000, 500'000), evens);
        first.result();
        second.result();
        std::cout << evens.load() << " even numbers\n"; // 500000
        // [counter-end]
        check(evens.load() == 500'000, "the shared counter adds up both workers' counts");

        // [lock]
        {
            auto value = evens.lock(); // held across processes until `value` goes
            *value = *value / 2;       // a compound update that atomics alone cannot make
            if (value.owner_died()) {
                // A process died holding the lock: the value may be half-updated; repair it.
            }
        }
        // [lock-end]
        check(evens.load() == 250'000, "an update under the lock");
    }

    {
        // [mapped]
        const auto path = std::filesystem::temp_directory_path() / "futura-example.f64";
        {
            auto file = futura::MappedArray<double>::create(path, 1'000'000); // zeros
            std::iota(file.begin(), file.end(), 0.0);
            file.flush(); // on disk now
        }
        const futura::MappedArray<const double> readings(path); // read-only, 1'000'000 elements
        std::cout << "mean of the file: " << pool.submit(mean, std::span(readings)).result()
                  << "\n"; // 499999.5, read by a worker from the same pages
        // [mapped-end]
        check(pool.submit(mean, std::span(readings)).result() == 499'999.5,
              "a worker reads a mapped file");
        std::filesystem::remove(path);
    }

    {
        // [automatic-call]
        std::vector<float> samples(2'000'000, 0.5F); // 8 MB
        std::vector<float> louder = pool.submit(scaled, samples, 4.0F).result();
        std::vector<double> readings(1'000'000, 2.0);
        double average = pool.submit(mean, std::span<const double>(readings)).result();
        // [automatic-call-end]
        check(louder.size() == samples.size() && louder.back() == 2.0F,
              "a large vector goes and comes back");
        check(average == 2.0, "a span of ordinary memory is copied to the worker");
    }

    {
        // [shared-vector-call]
        futura::SharedVector<std::int64_t> primes; // empty; may grow to the machine's memory
        pool.submit(collect_primes, primes, 100'000).result();
        std::cout << primes.size() << " primes, the last " << primes.back() << "\n"; // 9592, 99991
        // [shared-vector-call-end]
        check(primes.size() == 9592 && primes.back() == 99991, "a worker appends to a vector");
    }

    if (failed_checks != 0) {
        std::cerr << failed_checks << " check(s) failed\n";
        return EXIT_FAILURE;
    }
    std::cout << "all checks passed\n";
    return EXIT_SUCCESS;
}
