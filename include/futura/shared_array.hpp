// futura::SharedArray: a fixed-size array in shared memory that worker processes see too.
#pragma once

#include <futura/detail/segment_array.hpp>
#include <futura/transferable.hpp>

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <ranges>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace futura {

/// A fixed-size array of `T` in shared memory (Python's `multiprocessing.shared_memory` with a
/// numpy array over it). Passed to a process task it travels as a handle, not a copy: the
/// worker maps the same pages, and its writes are visible here, as this process's are there.
///
/// A `SharedArray` is a handle, like `std::shared_ptr`: copies refer to the same elements, and
/// the memory lives until the last handle in any process is gone. `slice(offset, count)` is a
/// handle to part of it, so one array can be split across the workers of a pool with no copy.
/// It views as a `std::span<T>`, iterates, and indexes like one; as for `std::span`, a
/// `const SharedArray` still gives write access to its elements.
///
/// The memory is an anonymous `memfd`: it never appears in /dev/shm, and the kernel frees it
/// when no process holds it any more, however those processes ended (see doc/shared_memory.md).
///
/// @par Example
/// @code
/// void twice(futura::SharedArray<double> part) { for (double& x : part) x *= 2; }
///
/// futura::SharedArray<double> data(1'000'000, 1.0);
/// futura::ProcessPoolExecutor pool{{.max_workers = 2}};
/// auto a = pool.submit(twice, data.slice(0, 500'000));
/// auto b = pool.submit(twice, data.slice(500'000, 500'000));
/// a.result(); b.result();                       // data[i] == 2.0 for every i
/// @endcode
///
/// @par Thread safety
/// Distinct objects: safe. Shared objects: safe to copy and destroy concurrently; the elements
/// are plain memory, shared between threads and processes without synchronisation: use
/// `SharedValue`, atomics through `std::atomic_ref`, or disjoint slices.
///
/// @tparam T trivially copyable, without pointers (its bytes must mean the same in every
/// process): numbers, enums, and structs of them.
template <class T>
class SharedArray : public detail::SegmentArray<T>
{
    static_assert(detail::shareable_element<T>,
                  "futura::SharedArray<T>: T must be trivially copyable and hold no pointers, "
                  "since a worker process sees its bytes: use numbers, enums or structs of them");
    static_assert(detail::holds_no_pointers<T>(),
                  "futura::SharedArray<T>: T holds a pointer or a reference member (looked for "
                  "in its members, recursively): another process cannot follow it; store "
                  "indices or offsets instead");
    static_assert(!std::is_const_v<T>,
                  "futura::SharedArray<T>: T must not be const (pass a std::span<const T> of "
                  "the array to give a task read-only access)");

    using Base = detail::SegmentArray<T>;

public:
    using typename Base::size_type;

    /// An empty handle (no memory), to assign to later; `size()` is 0.
    SharedArray() noexcept = default;

    /// `size` zero-initialised elements.
    /// @throws std::invalid_argument if `size` is 0; std::bad_alloc if shared memory runs out
    /// (its `what()` says how much was asked for and why it failed).
    explicit SharedArray(size_type size) : SharedArray(make(size)) {}

    /// `size` copies of `value`. @throws as SharedArray(size).
    SharedArray(size_type size, const T& value) : SharedArray(size)
    {
        std::fill(this->begin(), this->end(), value);
    }

    /// The elements of `values`. @throws as SharedArray(size) (an empty list is size 0).
    SharedArray(std::initializer_list<T> values) : SharedArray(values.size())
    {
        std::copy(values.begin(), values.end(), this->begin());
    }

    /// A copy of the elements of `range` (`std::vector`, `std::views::iota(0, n)`, ...).
    /// @throws as SharedArray(size) (an empty range is size 0).
    template <std::ranges::input_range Range>
        requires(!std::is_same_v<std::remove_cvref_t<Range>, SharedArray> &&
                 std::convertible_to<std::ranges::range_reference_t<Range>, T>)
    explicit SharedArray(Range&& range)
    {
        if constexpr (std::ranges::sized_range<Range> || std::ranges::forward_range<Range>) {
            *this = SharedArray(static_cast<size_type>(std::ranges::distance(range)));
            std::ranges::copy(range, this->begin());
        } else { // one pass only: count by collecting
            std::vector<T> values;
            std::ranges::copy(range, std::back_inserter(values));
            *this = SharedArray(values);
        }
    }

    /// A handle to the `count` elements from `offset`: no copy, and passed to a process task it
    /// is still a handle (like `std::span::subspan`, but sharing). A slice of 0 elements is an
    /// empty handle.
    /// @throws std::out_of_range if `[offset, offset + count)` is not inside this array.
    [[nodiscard]] SharedArray slice(size_type offset, size_type count) const
    {
        return this->template sliced<SharedArray>(offset, count, "SharedArray");
    }

    /// The elements from `offset` to the end. @throws std::out_of_range if `offset > size()`.
    [[nodiscard]] SharedArray slice(size_type offset) const
    {
        // Past the end, ask for one element there: the same out_of_range as any bad slice.
        return slice(offset, offset > this->size() ? 1 : this->size() - offset);
    }

    /// The same memory as `other` (whose elements are the same at the same place).
    [[nodiscard]] bool shares_memory_with(const SharedArray& other) const noexcept
    {
        return this->segment() != nullptr && this->segment() == other.segment();
    }

private:
    friend struct detail::Codec<SharedArray>;

    explicit SharedArray(const detail::SegmentView& view) noexcept
        : Base(view.segment, reinterpret_cast<T*>(view.data), view.bytes / sizeof(T)) // NOLINT
    {}

    static detail::SegmentView make(size_type size)
    {
        if (size == 0) {
            throw std::invalid_argument("futura::SharedArray: size 0: a shared array holds at "
                                        "least one element");
        }
        if (size > std::numeric_limits<size_type>::max() / 2 / sizeof(T)) {
            throw detail::SharedMemoryExhausted("futura::SharedArray: " + std::to_string(size) +
                                                " elements of " + std::to_string(sizeof(T)) +
                                                " bytes are more than the address space");
        }
        auto segment = detail::Segment::create(size * sizeof(T));
        auto* data = segment->data();
        return {std::move(segment), data, size * sizeof(T)};
    }
};

/// Whether the elements of `data` (a `std::span`, a `SharedArray`, a `MappedArray`, any
/// contiguous range) lie in shared memory or a mapped file of this process, so that passing a
/// span of them to a process task sends a handle rather than a copy (joblib's
/// `has_shareable_memory`). An empty range has no memory to share: false.
///
/// @par Example
/// @code
/// futura::SharedArray<double> data(1'000'000);
/// std::vector<double> local(10);
/// futura::has_shareable_memory(data);                                 // true
/// futura::has_shareable_memory(std::span(data).subspan(10, 5));     // true: a part of it
/// futura::has_shareable_memory(local);                                // false: would be copied
/// @endcode
///
/// @par Thread safety
/// Safe from any thread.
template <std::ranges::contiguous_range Range>
    requires(std::ranges::sized_range<Range>)
[[nodiscard]] bool has_shareable_memory(Range&& data)
{
    const auto bytes = std::ranges::size(data) * sizeof(std::ranges::range_value_t<Range>);
    return bytes != 0 && detail::Segment::containing(std::ranges::data(data), bytes) != nullptr;
}

namespace detail {

/// A SharedArray travels as a handle: a copy of its segment's descriptor, its offset and length.
template <class T>
struct Codec<SharedArray<T>>
{
    static constexpr bool supported = true;
    static void encode(WireWriter& out, const SharedArray<T>& array) { array.encode_handle(out); }
    static SharedArray<T> decode(WireReader& in)
    {
        SharedArray<T> array;
        array.decode_handle(in, true);
        check_received(array);
        return array;
    }
    template <class Archive>
    static void serialize(Archive& archive, SharedArray<T>& array)
    {
        array.serialize_handle(archive, true);
        if constexpr (!Archive::is_saving::value) {
            check_received(array);
        }
    }
    /// Only futura's own (sealed) segments are shared arrays: see check_size_sealed.
    static void check_received(const SharedArray<T>& array)
    {
        if (array.segment()) {
            check_size_sealed(*array.segment());
        }
    }
};

} // namespace detail

} // namespace futura

namespace boost::serialization {

/// A SharedArray inside a user type with a Boost.Serialization `serialize` travels as a handle,
/// beside the archive, when the type is sent to or from a worker process. Into any other archive
/// it throws std::logic_error: it is a handle to this machine's memory, not data.
template <class Archive, class T>
void serialize(Archive& archive, futura::SharedArray<T>& array, unsigned /*version*/)
{
    futura::detail::Codec<futura::SharedArray<T>>::serialize(archive, array);
}

} // namespace boost::serialization
