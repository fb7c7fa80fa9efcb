// futura::SharedVector: a vector in shared memory that grows in place and travels as a handle.
#pragma once

#include <futura/detail/segment.hpp>
#include <futura/detail/segment_array.hpp>
#include <futura/errors.hpp>
#include <futura/transferable.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <ranges>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace futura {

/// Options of a `SharedVector`, for designated initializers.
struct SharedVectorOptions
{
    /// The most elements the vector may ever hold: growing beyond throws `SharedVectorFull`.
    /// Its room is reserved as address space only (no memory) when the vector is made, so
    /// that the elements never move as it grows. 0: as many as the machine's memory and swap
    /// can hold.
    std::size_t max_size = 0;
};

namespace detail {

/// The first page of a SharedVector's segment; the elements start on the next page.
struct VectorHeader
{
    std::uint64_t tag = 0;      // element layout (vector_tag): a handle is checked against it
    std::uint64_t max_size = 0; // elements, fixed when made
    std::atomic<std::uint64_t> size{0};
    std::atomic<std::uint64_t> capacity{0}; // elements backed by memory
};

/// Where the elements start in the segment: a page, so that they are page-aligned.
inline constexpr std::size_t vector_data_offset = 4096;

/// The tag of a vector of elements of `size` bytes aligned to `alignment`.
[[nodiscard]] constexpr std::uint64_t vector_tag(std::size_t size, std::size_t alignment) noexcept
{
    constexpr std::uint64_t magic = 0x66757475'76656300; // "futuvec"
    return magic ^ (std::uint64_t{size} << 8U) ^ alignment;
}

/// The segment of one SharedVector and its header: what every handle of it holds.
class VectorBlock
{
public:
    VectorBlock() noexcept = default;

    /// A vector's segment with room for `max_size` elements of `element_size` bytes (0: as much
    /// as the machine has) and nothing backed yet.
    /// @throws std::invalid_argument if `max_size` elements would not fit in the machine's
    /// memory; SharedMemoryExhausted if the system cannot provide the segment.
    static VectorBlock create(std::size_t element_size, std::size_t max_size, std::uint64_t tag);

    [[nodiscard]] VectorHeader& header() const noexcept { return *header_; }
    [[nodiscard]] std::byte* data() const noexcept
    {
        return reinterpret_cast<std::byte*>(header_) + vector_data_offset; // NOLINT
    }
    /// From this process's mapping, not from the header (which another process can write).
    [[nodiscard]] std::size_t max_size() const noexcept { return max_size_; }
    [[nodiscard]] bool same_as(const VectorBlock& other) const noexcept
    {
        return header_ == other.header_;
    }
    [[nodiscard]] const std::shared_ptr<Segment>& segment() const noexcept { return segment_; }

    /// Backs room for `count` elements (doubling, as std::vector grows, if `grow`).
    /// @throws SharedVectorFull beyond max_size; SharedMemoryExhausted if memory runs out.
    void reserve(std::size_t count, bool grow) const;

    /// Gives back the memory of the elements from `count` on (whole pages).
    void shrink_to(std::size_t count) const noexcept;

    /// Sends the handle: a copy of the segment's descriptor.
    void encode(WireWriter& out) const;

    /// Maps the segment a handle names, checked to be a vector with `tag`.
    /// @throws ProtocolError if it is not.
    static VectorBlock decode(WireReader& in, std::size_t element_size, std::uint64_t tag);

private:
    VectorBlock(std::shared_ptr<Segment> segment, std::size_t element_size) noexcept;

    std::shared_ptr<Segment> segment_;
    VectorHeader* header_ = nullptr;
    std::size_t element_size_ = 0;
    std::size_t max_size_ = 0;
};

} // namespace detail

/// A vector of trivially copyable `T` in shared memory: it grows like a `std::vector`, and
/// passed to a task of a `ProcessPoolExecutor` it travels as a handle, not a copy. A worker
/// sees the caller's elements and the caller sees the worker's writes, appends included.
///
/// Its whole room (`max_size` elements) is reserved as address space when it is made, and
/// backed by memory as it grows: the elements never move, so pointers, iterators and spans
/// into it stay valid as it grows (unlike a `std::vector`'s), in every process.
///
/// Use a `SharedArray` for a fixed size (a slice of it is a handle too); use a `SharedVector`
/// when the size is not known up front, or when a worker appends results.
///
/// @par Example
/// @code
/// void collect(futura::SharedVector<double> out) { out.push_back(42.0); } // in a worker
/// futura::SharedVector<double> results;
/// pool.submit(collect, results).result();
/// assert(results.size() == 1);
/// @endcode
///
/// @par Thread safety
/// Distinct objects: safe. Shared objects (handles to the same vector, in any process): reading
/// elements, and writing distinct elements, is safe; changing the size (`push_back`, `resize`,
/// `clear`, ...) is not synchronized: one thread of one process at a time, as for a
/// `std::vector`, with the others told by a future's result or a `SharedLock`.
template <class T>
class SharedVector
{
    static_assert(detail::shareable_element<T>,
                  "futura::SharedVector<T>: T must be trivially copyable and hold no pointers, "
                  "since a worker process sees its bytes: use numbers, enums or structs of them");
    static_assert(detail::holds_no_pointers<T>(),
                  "futura::SharedVector<T>: T holds a pointer or a reference member (looked for "
                  "in its members, recursively): another process cannot follow it; store "
                  "indices or offsets instead");
    static_assert(!std::is_const_v<T>, "futura::SharedVector<T>: T must not be const");
    static_assert(alignof(T) <= detail::vector_data_offset,
                  "futura::SharedVector<T>: T is aligned beyond a page");

public:
    using value_type = T;
    using size_type = std::size_t;
    using difference_type = std::ptrdiff_t;
    using reference = T&;
    using const_reference = const T&;
    using pointer = T*;
    using const_pointer = const T*;
    using iterator = T*;
    using const_iterator = const T*;

    /// An empty vector (its segment is made now, so that copies share it from the start).
    /// @throws SharedMemoryExhausted if the system cannot provide a segment.
    SharedVector() : SharedVector(SharedVectorOptions{}) {}

    /// An empty vector that may grow to `options.max_size` elements.
    /// @throws std::invalid_argument if that is more than the machine's memory.
    explicit SharedVector(SharedVectorOptions options)
        : block_(detail::VectorBlock::create(sizeof(T), options.max_size, tag))
    {}

    /// `count` copies of `value`. @throws SharedVectorFull if `count > options.max_size`.
    explicit SharedVector(size_type count, const T& value = T(), SharedVectorOptions options = {})
        : SharedVector(options)
    {
        resize(count, value);
    }

    /// The elements of `values`.
    SharedVector(std::initializer_list<T> values, SharedVectorOptions options = {})
        : SharedVector(std::span<const T>(values.begin(), values.size()), options)
    {}

    /// A copy of the elements of `range` (`std::vector`, `std::views::iota(0, n)`, ...).
    template <std::ranges::input_range Range>
        requires(!std::is_same_v<std::remove_cvref_t<Range>, SharedVector> &&
                 std::convertible_to<std::ranges::range_reference_t<Range>, T>)
    explicit SharedVector(Range&& range, SharedVectorOptions options = {}) : SharedVector(options)
    {
        if constexpr (std::ranges::sized_range<Range>) {
            reserve(static_cast<size_type>(std::ranges::size(range)));
        }
        for (auto&& value : range) {
            push_back(static_cast<T>(value));
        }
    }

    [[nodiscard]] size_type size() const noexcept
    {
        return std::min<std::uint64_t>(block_.header().size.load(std::memory_order_acquire),
                                       capacity());
    }
    [[nodiscard]] size_type capacity() const noexcept
    {
        return std::min<std::uint64_t>(block_.header().capacity.load(std::memory_order_acquire),
                                       block_.max_size());
    }
    [[nodiscard]] size_type max_size() const noexcept { return block_.max_size(); }
    [[nodiscard]] bool empty() const noexcept { return size() == 0; }
    [[nodiscard]] size_type size_bytes() const noexcept { return size() * sizeof(T); }

    // Constness is the handle's, as for SharedArray and std::span: the elements stay writable.
    [[nodiscard]] T* data() const noexcept
    {
        return reinterpret_cast<T*>(block_.data()); // NOLINT: the segment holds Ts from here
    }
    [[nodiscard]] iterator begin() const noexcept { return data(); }
    [[nodiscard]] iterator end() const noexcept { return data() + size(); }
    [[nodiscard]] const_iterator cbegin() const noexcept { return data(); }
    [[nodiscard]] const_iterator cend() const noexcept { return data() + size(); }
    /// Unchecked, as for std::vector (use `at` for a checked access).
    [[nodiscard]] T& operator[](size_type i) const noexcept { return data()[i]; }
    /// @throws std::out_of_range if `i >= size()`.
    [[nodiscard]] T& at(size_type i) const
    {
        if (const auto n = size(); i >= n) {
            throw std::out_of_range("futura::SharedVector: index " + std::to_string(i) +
                                    " is out of range of a vector of " + std::to_string(n) +
                                    " elements");
        }
        return data()[i];
    }
    /// @throws std::out_of_range if empty.
    [[nodiscard]] T& front() const { return at(0); }
    /// @throws std::out_of_range if empty.
    [[nodiscard]] T& back() const
    {
        const auto n = size();
        return at(n == 0 ? 0 : n - 1);
    }
    [[nodiscard]] std::span<T> span() const noexcept { return {data(), size()}; }

    /// Backs room for `count` elements now. @throws SharedVectorFull if `count > max_size()`;
    /// SharedMemoryExhausted if memory runs out.
    void reserve(size_type count) { block_.reserve(count, false); }

    /// @throws SharedVectorFull if the vector holds `max_size()` elements already.
    void push_back(const T& value)
    {
        const auto n = size();
        if (n == capacity()) {
            block_.reserve(n + 1, true);
        }
        data()[n] = value;
        block_.header().size.store(n + 1, std::memory_order_release);
    }

    /// Appends `T(args...)`. @throws as push_back.
    template <class... Args>
    requires std::constructible_from<T, Args...> T& emplace_back(Args&&... args)
    {
        push_back(T(std::forward<Args>(args)...));
        return back();
    }

    /// Appends the elements of `values` at once (one growth).
    /// @throws SharedVectorFull if they would not fit in `max_size()`.
    void append(std::span<const T> values)
    {
        const auto n = size();
        if (values.size() > max_size() - n) {
            block_.reserve(max_size() + 1, false); // throws SharedVectorFull, naming the sizes
        }
        if (n + values.size() > capacity()) {
            block_.reserve(n + values.size(), true);
        }
        std::copy(values.begin(), values.end(), data() + n);
        block_.header().size.store(n + values.size(), std::memory_order_release);
    }

    /// Removes the last element. @throws std::out_of_range if empty.
    void pop_back()
    {
        const auto n = size();
        if (n == 0) {
            throw std::out_of_range("futura::SharedVector::pop_back on an empty vector");
        }
        block_.header().size.store(n - 1, std::memory_order_release);
    }

    /// `count` elements: new ones are `value`. @throws SharedVectorFull if `count > max_size()`.
    void resize(size_type count, const T& value = T())
    {
        const auto n = size();
        if (count > n) {
            block_.reserve(count, count == n + 1);
            std::fill(data() + n, data() + count, value);
        }
        block_.header().size.store(count, std::memory_order_release);
    }

    /// No elements; the memory stays (`shrink_to_fit` gives it back).
    void clear() noexcept { block_.header().size.store(0, std::memory_order_release); }

    /// Gives back the memory beyond `size()` (whole pages).
    void shrink_to_fit() noexcept { block_.shrink_to(size()); }

    /// Whether `other` is a handle to the same vector.
    [[nodiscard]] bool shares_memory_with(const SharedVector& other) const noexcept
    {
        return block_.same_as(other.block_);
    }

private:
    friend struct detail::Codec<SharedVector>;
    static constexpr std::uint64_t tag = detail::vector_tag(sizeof(T), alignof(T));

    explicit SharedVector(detail::VectorBlock block) noexcept : block_(std::move(block)) {}

    detail::VectorBlock block_;
};

namespace detail {

template <class T>
struct Codec<SharedVector<T>>
{
    static constexpr bool supported = true;
    static void encode(WireWriter& out, const SharedVector<T>& vector)
    {
        vector.block_.encode(out);
    }
    static SharedVector<T> decode(WireReader& in)
    {
        return SharedVector<T>(VectorBlock::decode(in, sizeof(T), SharedVector<T>::tag));
    }
};

} // namespace detail

} // namespace futura
