// futura::MappedArray: an array backed by a file (numpy.memmap), shared with worker processes.
#pragma once

#include <futura/detail/segment_array.hpp>
#include <futura/transferable.hpp>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <ranges>
#include <span>
#include <stdexcept>
#include <string>
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
/// Two dimensions, as numpy's `shape=(rows, columns)` in row-major order: `create(path, rows,
/// columns)`, or `with_columns(n)` on any array; then `rows()`, `columns()`, `row(i)` (a span),
/// `(i, j)`, and `rows(first, count)`, a handle to whole rows that travels to a worker with its
/// shape. `dump(path, data)` writes existing data to a new file and maps it in one call
/// (joblib's `dump`, then `load(mmap_mode="r+")`).
///
/// @par Example
/// @code
/// auto out = futura::MappedArray<double>::create("data.f64", 1'000'000);
/// std::fill(out.begin(), out.end(), 1.0);
/// out.flush();
/// futura::MappedArray<const double> in("data.f64"); // read-only, 1'000'000 elements
///
/// auto table = futura::MappedArray<float>::create("table.f32", 1000, 64); // 1000 rows of 64
/// table(3, 5) = 1.5f;                        // numpy: table[3, 5] = 1.5
/// std::span<float> third = table.row(3);     // table[3]
/// auto block = table.rows(100, 50);          // table[100:150], a handle with 64 columns
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

    /// Makes `path` a file of `rows` × `columns` zero elements, row after row, open read-write
    /// (numpy's `np.memmap(path, mode="w+", shape=(rows, columns))`).
    /// @throws as create(path, size), and std::invalid_argument if `columns` is 0.
    [[nodiscard]] static MappedArray create(const std::filesystem::path& path, size_type rows,
                                            size_type columns) requires(!std::is_const_v<T>)
    {
        if (columns == 0 || rows > static_cast<size_type>(-1) / columns) {
            throw std::invalid_argument("futura::MappedArray::create: cannot make " +
                                        std::to_string(rows) + " rows of " +
                                        std::to_string(columns) + " columns");
        }
        return create(path, rows * columns).with_columns(columns);
    }

    /// Writes `data` to a new file at `path` (overwriting any file there), flushes it to disk
    /// and returns it mapped read-write: joblib's `dump(data, path)` followed by
    /// `load(path, mmap_mode="r+")`, in one call. `columns` gives it two dimensions.
    /// @throws as create(path, size) (std::invalid_argument if `data` is empty, or its size is
    /// not a multiple of `columns`); std::system_error if it cannot be written to disk.
    template <std::ranges::input_range Range>
        requires(!std::is_const_v<T> && std::ranges::sized_range<Range> &&
                 std::convertible_to<std::ranges::range_reference_t<Range>, T>)
    [[nodiscard]] static MappedArray dump(const std::filesystem::path& path, Range&& data,
                                          size_type columns = 1)
    {
        const auto size = static_cast<size_type>(std::ranges::size(data));
        if (columns == 0 || size % columns != 0) {
            throw std::invalid_argument("futura::MappedArray::dump: " + std::to_string(size) +
                                        " elements are not rows of " + std::to_string(columns) +
                                        " columns");
        }
        auto array = create(path, size);
        std::ranges::copy(data, array.begin());
        array.flush();
        return array.with_columns(columns);
    }

    /// The same elements seen as rows of `columns` elements (numpy's `reshape(-1, columns)`);
    /// `with_columns(1)` is the one-dimensional view.
    /// @throws std::invalid_argument if the size is not a whole number of such rows.
    [[nodiscard]] MappedArray with_columns(size_type columns) const
    {
        if (columns == 0 || this->size() % columns != 0) {
            throw std::invalid_argument("futura::MappedArray::with_columns(" +
                                        std::to_string(columns) +
                                        "): " + std::to_string(this->size()) +
                                        " elements are not a whole number of rows of that many");
        }
        MappedArray view = *this;
        view.columns_ = columns;
        return view;
    }

    /// Elements per row: 1 unless the array was made or viewed with more.
    [[nodiscard]] size_type columns() const noexcept { return columns_; }
    /// The number of rows (the size, for a one-dimensional array).
    [[nodiscard]] size_type rows() const noexcept { return this->size() / columns_; }

    /// Row `i`, unchecked as `operator[]` (numpy's `a[i]`).
    [[nodiscard]] std::span<T> row(size_type i) const noexcept
    {
        return {this->data() + i * columns_, columns_};
    }

    /// The element at row `i`, column `j`, unchecked (numpy's `a[i, j]`).
    [[nodiscard]] T& operator()(size_type i, size_type j) const noexcept
    {
        return this->data()[i * columns_ + j];
    }

    /// A handle to rows `[first, first + count)`, with the same columns (numpy's
    /// `a[first:first + count]`): give each worker its block of rows.
    /// @throws std::out_of_range if those rows are not all inside.
    [[nodiscard]] MappedArray rows(size_type first, size_type count) const
    {
        if (first > rows() || count > rows() - first) {
            throw std::out_of_range("futura::MappedArray::rows(" + std::to_string(first) + ", " +
                                    std::to_string(count) + ") is out of range of an array of " +
                                    std::to_string(rows()) + " rows");
        }
        auto part = slice(first * columns_, count * columns_);
        part.columns_ = count == 0 ? 1 : columns_;
        return part;
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

    /// A handle to the elements from `offset` to the end (see SharedArray::slice).
    /// @throws std::out_of_range if `offset > size()`.
    [[nodiscard]] MappedArray slice(size_type offset) const
    {
        // Past the end, ask for one element there: the same out_of_range as any bad slice.
        return slice(offset, offset > this->size() ? 1 : this->size() - offset);
    }

private:
    friend struct detail::Codec<MappedArray>;

    static constexpr auto open_mode =
        std::is_const_v<T> ? detail::FileOpen::read_only : detail::FileOpen::read_write;

    explicit MappedArray(std::shared_ptr<detail::Segment> segment) noexcept
        : Base(segment, reinterpret_cast<T*>(segment->data()), // NOLINT: the file's T objects
               segment->size() / sizeof(T))
    {}

    /// After the handle, on the wire: a worker sees the rows as they were sent.
    void encode_columns(detail::WireWriter& out) const { out.u64(columns_); }
    void decode_columns(std::uint64_t columns)
    {
        if (columns == 0 || this->size() % columns != 0) {
            detail::WireReader::fail("a mapped array's columns do not divide its size");
        }
        columns_ = static_cast<size_type>(columns);
    }

    size_type columns_ = 1;
};

namespace detail {

/// A MappedArray travels as a handle: a copy of its file's descriptor, offset and length. A
/// read-only one sends a read-only descriptor, which the receiver cannot map for writing.
template <class T>
struct Codec<MappedArray<T>>
{
    static constexpr bool supported = true;
    static void encode(WireWriter& out, const MappedArray<T>& array)
    {
        array.encode_handle(out);
        array.encode_columns(out);
    }
    static MappedArray<T> decode(WireReader& in)
    {
        MappedArray<T> array;
        array.decode_handle(in, !std::is_const_v<T>);
        array.decode_columns(in.u64());
        return array;
    }
    template <class Archive>
    static void serialize(Archive& archive, MappedArray<T>& array)
    {
        array.serialize_handle(archive, !std::is_const_v<T>);
        std::uint64_t columns = array.columns_;
        // clang-format off
        archive & columns;
        // clang-format on
        if constexpr (!Archive::is_saving::value) {
            array.decode_columns(columns);
        }
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
