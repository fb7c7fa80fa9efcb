// The quick start of README.md and doc/quickstart.md: the lines between the markers are shown
// there verbatim (scripts/check-docs keeps them in sync). Built and run as a test: the exit
// status is 0 when the results are right.

// [quickstart]
#include <futura/thread_pool_executor.hpp>

#include <iostream>
#include <ranges>

int square(int x) { return x * x; }

int main()
{
    futura::ThreadPoolExecutor pool{{.max_workers = 4}}; // ThreadPoolExecutor(max_workers=4)
    futura::Future<int> f = pool.submit(square, 7);      // runs square(7) on a worker thread

    int sum = 0;
    for (int y : pool.map(square, std::views::iota(1, 11))) { // results in input order
        sum += y;
    }
    std::cout << f.result() << ' ' << sum << '\n'; // result() waits for f: prints "49 385"
    return f.result() == 49 && sum == 385 ? 0 : 1;
} // the destructor waits for the pool's work, like the end of Python's `with` block
// [quickstart-end]
