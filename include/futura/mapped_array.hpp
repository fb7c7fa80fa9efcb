// futura::MappedArray: an array backed by a file (numpy.memmap), shared with worker processes.
#pragma once

#include <futura/detail/segment_array.hpp>
#include <futura/transferable.hpp>

#include <cstddef>
#include <filesystem>
#include <type_traits>

namespace futura {

/// An array of `T` backed by a file, mapped into memory (numpy's `memmap`): the file's bytes are
/// the elements, with no header, so it holds `file size / sizeof(T)` of them.
///
/// - `MappedArray<T>::create(path, n)` makes (or overwrites, like numpy's mode `"w+"`) a file of
///   `n` zero elements, open read-write.
/// - `MappedArray<T>(path)` opens an existing file read-write (numpy's `"r+"`).
/// - `MappedArray<const T>(path)` opens it read-only (numpy's `"r"`): the type says so, and a
///   write through it does not compile.
///
/// Passed to a process task it travels as a handle: the worker maps the same file through a copy
/// of this descriptor (no path is reopened, so a renamed or replaced file cannot be confused),
/// and a read-only array stays read-only there. Writes reach the file through the page cache:
/// every process mapping it sees them at once; `flush()` waits until they are on disk.
/// The file stays after the program: it is the user's data. Copies of a `MappedArray` refer to
/// the same mapping; `slice` gives part of it, still a handle.
///
/// @par Example
/// @code
/// auto out = futura::MappedArray<double>::create("data.f64", 1'000'000);
/// std::fill(out.begin(), out.end(), 1.0);
/// out.flush();
/// futura::MappedArray<const double> in("data.f64"); // read-only, 1'000'000 elements
/// @endcode
///
/// @par Thread safety
/// Distinct objects: safe. Shared objects: safe to copy and destroy; the elements are plain
/// memory, as for SharedArray.
///
/// @note If another program truncates the file while it is mapped, touching the lost part
/// raises SIGBUS, as with any memory-mapped file (numpy's too).
template <class T>
class MappedArray : public detail::SegmentArray<T>
{
    static_assert(detail::shareable_element<std::remove_const_t<T>>,
                  "futura::MappedArray<T>: T must be trivially copyable and hold no pointers, "
                  "since its bytes are a file's: use numbers, enums or structs of them");

    static_assert(detail::holds_no_pointers<T>(),
                  "futura::MappedArray<T>: T holds a pointer or a reference member (looked for "
                  "in its members, recursively): a file cannot hold one; store indices or "
                  "offsets instead");

    using Base = detail::SegmentArray<T>;

public:
    using typename Base::size_type;

    /// An empty handle (no file); `size()` is 0.
    MappedArray() noexcept = default;

    /// Opens all of `path`: read-only if `T` is const, else read-write.
    /// @throws std::filesystem::filesystem_error if it cannot be opened; std::invalid_argument
    /// if it is empty or its size is not a whole number of elements.
    explicit MappedArray(const std::filesystem::path& path) : MappedArray(path, 0) {}

    /// Opens `path`, which must hold exactly `size` elements (0: any number).
    /// @throws as MappedArray(path), and std::invalid_argument if it holds another number.
    MappedArray(const std::filesystem::path& path, size_type size)
        : MappedArray(detail::map_file(path, open_mode, sizeof(T), size))
    {}

    /// Makes `path` a file of `size` zero elements (overwriting any file there) and opens it
    /// read-write. Its disk blocks are allocated now, so a full disk fails here, not at a write.
    /// @throws std::invalid_argument if `size` is 0; std::filesystem::filesystem_error if the
    /// file cannot be created or sized.
    [[nodiscard]] static MappedArray create(const std::filesystem::path& path,
                                            size_type size) requires(!std::is_const_v<T>)
    {
        return MappedArray(detail::map_file(path, detail::FileOpen::create, sizeof(T), size));
    }

    /// Whether the elements may be written (the file was opened read-write).
    [[nodiscard]] static constexpr bool writable() noexcept { return !std::is_const_v<T>; }

    /// Writes changed pages back to the file and waits until they are there (msync).
    /// @throws std::system_error if the file cannot be written.
    void flush() const
    {
        if (!this->empty()) {
            this->segment()->flush(this->data(), this->size_bytes());
        }
    }

    /// A handle to the `count` elements from `offset` (see SharedArray::slice).
    /// @throws std::out_of_range if `[offset, offset + count)` is not inside this array.
    [[nodiscard]] MappedArray slice(size_type offset, size_type count) const
    {
        return this->template sliced<MappedArray>(offset, count, "MappedArray");
    }

private:
    friend struct detail::Codec<MappedArray>;

    static constexpr auto open_mode =
        std::is_const_v<T> ? detail::FileOpen::read_only : detail::FileOpen::read_write;

    explicit MappedArray(std::shared_ptr<detail::Segment> segment) noexcept
        : Base(segment, reinterpret_cast<T*>(segment->data()), // NOLINT: the file's T objects
               segment->size() / sizeof(T))
    {}
};

namespace detail {

/// A MappedArray travels as a handle: a copy of its file's descriptor, offset and length. A
/// read-only one sends a read-only descriptor, which the receiver cannot map for writing.
template <class T>
struct Codec<MappedArray<T>>
{
    static constexpr bool supported = true;
    static void encode(WireWriter& out, const MappedArray<T>& array) { array.encode_handle(out); }
    static MappedArray<T> decode(WireReader& in)
    {
        MappedArray<T> array;
        array.decode_handle(in, !std::is_const_v<T>);
        return array;
    }
    template <class Archive>
    static void serialize(Archive& archive, MappedArray<T>& array)
    {
        array.serialize_handle(archive, !std::is_const_v<T>);
    }
};

} // namespace detail

} // namespace futura

namespace boost::serialization {

/// A MappedArray inside a user type sent to or from a worker travels as a handle (see
/// SharedArray's).
template <class Archive, class T>
void serialize(Archive& archive, futura::MappedArray<T>& array, unsigned /*version*/)
{
    futura::detail::Codec<futura::MappedArray<T>>::serialize(archive, array);
}

} // namespace boost::serialization
