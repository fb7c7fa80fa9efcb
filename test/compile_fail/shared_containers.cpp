// Compile-fail test: SharedDict and SharedQueue refuse at compile time keys, values and items
// that another process could not read (std::string: a pointer to this process's heap), and
// keys without an order. The build compiles this file once per FUTURA_COMPILE_FAIL_CASE and
// expects the error's message (see test/CMakeLists.txt and test/Jamfile); without a case it
// must compile, which shows that the failures come from the constraints.
#include <futura/shared_dict.hpp>
#include <futura/shared_queue.hpp>
#include <futura/shared_string.hpp>

#include <string>

namespace {

struct Point // trivially copyable, but without an order
{
    int x;
    int y;
};

} // namespace

void use_shared_containers()
{
#if FUTURA_COMPILE_FAIL_CASE == 1
    // "K and V must be trivially copyable".
    futura::SharedDict<std::string, int> names;
    (void)names;
#elif FUTURA_COMPILE_FAIL_CASE == 2
    // "T must be trivially copyable".
    futura::SharedQueue<std::string> lines;
    (void)lines;
#elif FUTURA_COMPILE_FAIL_CASE == 3
    // "K must be ordered".
    futura::SharedDict<Point, int> points;
    (void)points;
#else
    // The control: bounded strings and plain values, allowed.
    futura::SharedDict<futura::SharedString<16>, Point> names;
    futura::SharedQueue<futura::SharedString<16>> lines;
    names.insert_or_assign("origin", Point{0, 0});
    lines.put("hello");
#endif
}
