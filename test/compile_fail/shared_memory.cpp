// Compile-fail test: shared memory refuses at compile time what another process could not read
// (elements that are not plain bytes) and writes through a read-only mapped array. The build
// compiles this file once per FUTURA_COMPILE_FAIL_CASE and expects the error's message (see
// test/CMakeLists.txt and test/Jamfile); without a case it must compile, which shows that the
// failures come from the constraint and not from a mistake in this file.
#include <futura/mapped_array.hpp>
#include <futura/shared_array.hpp>
#include <futura/shared_value.hpp>

#include <string>

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
#else
    // The control: the same uses, allowed.
    futura::SharedArray<int> numbers(3);
    futura::SharedValue<long> counter;
    numbers[0] = read_only[0] + static_cast<int>(counter.load());
#endif
    (void)read_only;
}
