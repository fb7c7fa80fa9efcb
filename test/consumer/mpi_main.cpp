// The smallest MPI program a user of futura writes (find_package(futura COMPONENTS mpi)): run
// under `mpiexec -n 2`, rank 1 serves and rank 0 submits.
#include <futura/mpi.hpp>

int square(int x) { return x * x; }

int main()
{
    futura::MpiPoolExecutor pool;
    return pool.submit(square, 7).result() == 49 ? 0 : 1;
}
