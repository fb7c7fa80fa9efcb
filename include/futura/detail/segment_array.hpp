// The contiguous-array face shared by SharedArray and MappedArray: a typed view of part of a
// segment that keeps the segment mapped, with the accessors of std::span.
#pragma once

#include <futura/detail/segment.hpp>
#include <futura/transferable.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace futura::detail {

template <class T>
consteval bool holds_no_pointers();

/// Converts to any member type: aggregate-initializing a type from N of these compiles while N
/// is at most its number of members (Boost.PFR's way of counting them, with C arrays counted
/// element by element). Written out here because PFR's own count refuses aggregates with a
/// base class, which shared memory accepts.
struct AnyMember
{
    template <class U>
    operator U() const noexcept;
};

/// Stands for any member that holds no pointer: converting to a type that holds one is
/// deleted, so such a member makes the initialization ill-formed. (Deleted, not unconstrained:
/// a conversion that does not exist would let the list brace-elide into a nested aggregate and
/// skip over its pointer.) A reference member cannot bind to it either.
struct PointerFreeMember
{
    template <class U>
        requires(holds_no_pointers<U>())
    operator U() const noexcept;
    template <class U>
        requires(!holds_no_pointers<U>())
    operator U() const = delete;
};

template <class T, class Member, std::size_t... Index>
consteval bool initializable_from(std::index_sequence<Index...> /*members*/)
{
    return requires { T{(static_cast<void>(Index), Member{})...}; };
}

template <class T, std::size_t N>
consteval bool takes_members()
{
    return initializable_from<T, AnyMember>(std::make_index_sequence<N>{});
}

/// The number of members of aggregate `T`, knowing that it takes `Low` but not `High`.
template <class T, std::size_t Low, std::size_t High>
consteval std::size_t member_count_between()
{
    if constexpr (High - Low <= 1) {
        return Low;
    } else if constexpr (takes_members<T, Low + (High - Low) / 2>()) {
        return member_count_between<T, Low + (High - Low) / 2, High>();
    } else {
        return member_count_between<T, Low, Low + (High - Low) / 2>();
    }
}

/// The number of members of aggregate `T`: doubling, then halving (a large array member
/// costs a few steps, not one per element).
template <class T, std::size_t N = 1>
consteval std::size_t member_count()
{
    if constexpr (N > sizeof(T) * 8 || !takes_members<T, N>()) {
        return member_count_between<T, N / 2, N>();
    } else {
        return member_count<T, N * 2>();
    }
}

/// Whether `T` has no pointer or reference in it, looking into the members of aggregates,
/// recursively, and into arrays: a pointer's bytes mean nothing in another process. A class with
/// private members cannot be looked into; it is taken at its word.
template <class T>
consteval bool holds_no_pointers()
{
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_reference_v<U> || std::is_pointer_v<U> || std::is_member_pointer_v<U>) {
        return false;
    } else if constexpr (std::is_array_v<U>) {
        return holds_no_pointers<std::remove_all_extents_t<U>>();
    } else if constexpr (std::is_class_v<U> && std::is_aggregate_v<U> && !std::is_empty_v<U>) {
        return initializable_from<U, PointerFreeMember>(
            std::make_index_sequence<member_count<U>()>{});
    } else {
        return true;
    }
}

/// Elements that mean the same bytes in every process: what shared memory may hold.
template <class T>
concept shareable_element =
    std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> && !std::is_member_pointer_v<T> &&
    !std::is_reference_v<T> && !std::is_volatile_v<T>;

/// Copies share the elements (a handle, like std::shared_ptr): constness is the handle's, as for
/// std::span, not the elements'.
template <class T>
class SegmentArray
{
public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;
    using size_type = std::size_t;
    using difference_type = std::ptrdiff_t;
    using pointer = T*;
    using const_pointer = const T*;
    using reference = T&;
    using const_reference = const T&;
    using iterator = T*;
    using const_iterator = const T*;

    [[nodiscard]] size_type size() const noexcept { return size_; }
    [[nodiscard]] size_type size_bytes() const noexcept { return size_ * sizeof(T); }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] T* data() const noexcept { return data_; }
    [[nodiscard]] iterator begin() const noexcept { return data_; }
    [[nodiscard]] iterator end() const noexcept { return data_ + size_; }
    [[nodiscard]] const_iterator cbegin() const noexcept { return data_; }
    [[nodiscard]] const_iterator cend() const noexcept { return data_ + size_; }
    /// Unchecked, as for std::span (use `at` for a checked access).
    [[nodiscard]] T& operator[](size_type i) const noexcept { return data_[i]; }
    /// @throws std::out_of_range if `i >= size()`.
    [[nodiscard]] T& at(size_type i) const
    {
        if (i >= size_) {
            throw std::out_of_range("futura: index " + std::to_string(i) +
                                    " is out of range of a shared array of " +
                                    std::to_string(size_) + " elements");
        }
        return data_[i];
    }
    [[nodiscard]] T& front() const noexcept { return data_[0]; }
    [[nodiscard]] T& back() const noexcept { return data_[size_ - 1]; }
    [[nodiscard]] std::span<T> span() const noexcept { return {data_, size_}; }
    // No conversion operators: a SharedArray is a contiguous sized range, so std::span's own
    // range constructor makes `std::span<T> view = array;` work (and std::span<const T>).

protected:
    SegmentArray() noexcept = default;
    SegmentArray(std::shared_ptr<Segment> segment, T* data, size_type size) noexcept
        : segment_(std::move(segment)), data_(data), size_(size)
    {}

    /// The part [offset, offset + count) of this array, as the derived type.
    /// @throws std::out_of_range if it does not lie inside.
    template <class Derived>
    [[nodiscard]] Derived sliced(size_type offset, size_type count, const char* type) const
    {
        if (offset > size_ || count > size_ - offset) {
            throw std::out_of_range(std::string("futura::") + type + "::slice(" +
                                    std::to_string(offset) + ", " + std::to_string(count) +
                                    ") is out of range of an array of " + std::to_string(size_) +
                                    " elements");
        }
        Derived part;
        if (count != 0) {
            part.segment_ = segment_;
            part.data_ = data_ + offset;
            part.size_ = count;
        }
        return part;
    }

    /// Attaches the segment to the message and returns the handle of these elements (a handle
    /// of length 0 if empty).
    [[nodiscard]] SegmentHandle attach(WireWriter& out) const
    {
        return size_ == 0 ? SegmentHandle{} : attach_segment(out, *segment_, data_, size_bytes());
    }

    /// Points this (empty) array at what `handle` names.
    void open(WireReader& in, const SegmentHandle& handle, bool writable)
    {
        if (handle.bytes == 0) {
            return;
        }
        auto view = open_segment(in, handle, alignof(T), writable);
        if (view.bytes % sizeof(T) != 0) {
            WireReader::fail("a shared array's length is not a whole number of elements");
        }
        size_ = view.bytes / sizeof(T);
        data_ = reinterpret_cast<T*>(view.data); // NOLINT: the sender's T objects, same program
        segment_ = std::move(view.segment);
        // The message holds the mapping too: a worker answers before it lets go of the
        // message, so unmapping a large argument is not on the caller's wait.
        in.keep_alive(segment_);
    }

    /// Sends the elements as a handle to the same memory.
    void encode_handle(WireWriter& out) const { attach(out).encode(out); }

    /// Maps what `encode_handle` sent.
    void decode_handle(WireReader& in, bool writable)
    {
        open(in, SegmentHandle::decode(in), writable);
    }

    /// Boost.Serialization of the handle, inside a user type sent to or from a worker: the
    /// descriptor travels with the message that the archive is part of.
    template <class Archive>
    void serialize_handle(Archive& archive, bool writable)
    {
        serialize_segment_handle(
            archive, [&](WireWriter& out) { return attach(out); },
            [&](WireReader& in, const SegmentHandle& handle) { open(in, handle, writable); });
    }

    [[nodiscard]] const std::shared_ptr<Segment>& segment() const noexcept { return segment_; }

private:
    std::shared_ptr<Segment> segment_; // null when empty
    T* data_ = nullptr;
    size_type size_ = 0;
};

} // namespace futura::detail
