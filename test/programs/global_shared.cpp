// Helper program of test/process_pool_executor.cpp: a SharedValue at namespace scope, which
// tasks add to (a Python user's module-level `Value`). With fork, the workers inherit the
// parent's object and the sum is right; with spawn, each worker would construct an object of
// its own and the sum would silently stay 0, so the pool breaks instead, saying why.
//
//   global_shared fork     prints "sum 10" and exits 0
//   global_shared spawn    prints "broken: <the pool's message>" and exits 3
#include <futura/errors.hpp>
#include <futura/process_pool_executor.hpp>
#include <futura/shared_value.hpp>

#include <cstdio>
#include <string_view>
#include <vector>

namespace {

futura::SharedValue<long> sum; // constructed again in each spawned worker

void add(int x) { sum.fetch_add(x); }

} // namespace

int main(int argc, char** argv)
{
    const bool fork = argc > 1 && std::string_view(argv[1]) == "fork";
    futura::ProcessPoolExecutor pool{
        {.max_workers = 2,
         .start_method = fork ? futura::StartMethod::fork : futura::StartMethod::spawn}};
    try {
        std::vector<futura::Future<void>> futures;
        for (int x = 1; x <= 4; ++x) {
            futures.push_back(pool.submit(add, x));
        }
        for (auto& future : futures) {
            future.result();
        }
    } catch (const futura::BrokenProcessPool& e) {
        std::printf("broken: %s\n", e.what());
        return 3;
    }
    std::printf("sum %ld\n", sum.load());
    return 0;
}
