// Compile-fail test: shared memory refuses at compile time what another process could not read
// (elements that are not plain bytes) and writes through a read-only mapped array. The build
// compiles this file once per FUTURA_COMPILE_FAIL_CASE and expects the error's message (see
// test/CMakeLists.txt and test/Jamfile); without a case it must compile, which shows that the
// failures come from the constraint and not from a mistake in this file.
#include <futura/mapped_array.hpp>
#include <futura/shared_array.hpp>
#include <futura/shared_value.hpp>
#include <futura/shared_vector.hpp>

#include <string>

namespace {

// Aggregates that hold a pointer or a reference somewhere inside (Boost.PFR looks).
struct Particle
{
    double position[3];
    const char* name; // a pointer among plain numbers
};
struct Cell
{
    int id;
    struct
    {
        double weight;
        int* next; // one level down
    } link;
};
// The same shapes without pointers are fine.
struct PlainParticle
{
    double position[3];
    int name_index;
};
struct PlainCell
{
    int id;
    struct
    {
        double weight;
        int next_index;
    } link;
};

// An aggregate with a base class is looked into as well (Boost.PFR's own count refuses these).
struct TaggedParticle : PlainParticle
{
    int tag;
};

} // namespace

void use_shared_memory(const futura::MappedArray<const int>& read_only)
{
#if FUTURA_COMPILE_FAIL_CASE == 1
    // Not trivially copyable: "T must be trivially copyable".
    futura::SharedArray<std::string> names(3);
    (void)names;
#elif FUTURA_COMPILE_FAIL_CASE == 2
    // A pointer inside means nothing in another process.
    futura::SharedValue<int*> pointer;
    (void)pointer;
#elif FUTURA_COMPILE_FAIL_CASE == 3
    // A write through a read-only mapped array: "read-only".
    read_only[0] = 1;
#elif FUTURA_COMPILE_FAIL_CASE == 4
    // An aggregate with a pointer member: "holds a pointer or a reference member".
    futura::SharedArray<Particle> particles(3);
    (void)particles;
#elif FUTURA_COMPILE_FAIL_CASE == 5
    // A pointer one level down, in a SharedValue: refused too.
    futura::SharedValue<Cell> cell;
    (void)cell;
#elif FUTURA_COMPILE_FAIL_CASE == 6
    // A vector in shared memory holds plain bytes too: "T must be trivially copyable".
    futura::SharedVector<std::string> names;
    (void)names;
#else
    // The control: the same uses, allowed.
    futura::SharedArray<int> numbers(3);
    futura::SharedValue<long> counter;
    numbers[0] = read_only[0] + static_cast<int>(counter.load());
    futura::SharedArray<PlainParticle> particles(3);
    futura::SharedValue<PlainCell> cell;
    particles[0].name_index = cell.load().id;
    futura::SharedArray<TaggedParticle> tagged(2);
    tagged[0].tag = particles[0].name_index;
    futura::SharedVector<PlainParticle> grown;
    grown.push_back(particles[0]);
#endif
    (void)read_only;
}
