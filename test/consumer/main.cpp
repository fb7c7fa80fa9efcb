// The smallest program a user of futura writes; built by both consumer tests
// (find_package of an installed futura, add_subdirectory of the source tree).
#include <futura/futura.hpp>

int main()
{
    futura::ThreadPoolExecutor pool;
    auto f = pool.submit([] { return 6 * 7; });
    return f.result() == 42 ? 0 : 1;
}
