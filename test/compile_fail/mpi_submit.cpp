// MpiPoolExecutor::submit refuses node-local handles at compile time. Case 0 (the control)
// must compile; case 1 must fail with the static_assert's message.
#include <futura/mpi.hpp>

long sum(const futura::SharedArray<int>& a)
{
    long total = 0;
    for (int x : a) {
        total += x;
    }
    return total;
}

long sum_vector(const std::vector<int>& v)
{
    long total = 0;
    for (int x : v) {
        total += x;
    }
    return total;
}

void submit(futura::MpiPoolExecutor& pool)
{
#if FUTURA_COMPILE_FAIL_CASE == 0
    (void)pool.submit(sum_vector, std::vector<int>{1, 2, 3});
#elif FUTURA_COMPILE_FAIL_CASE == 1
    futura::SharedArray<int> array(3);
    (void)pool.submit(sum, array); // memory of this node: cannot reach another host
#endif
}
