// Shared memory that can travel to another process: anonymous memfd segments and mapped files,
// mapped into this process, found again by address, and sent as (descriptor, offset, length).
#pragma once

#include <futura/detail/attachments.hpp>
#include <futura/detail/wire.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <new>
#include <string>

namespace futura::detail {

/// The public `futura::SharedMemoryExhausted`, by the name futura's own code has always used.
using SharedMemoryExhausted = futura::SharedMemoryExhausted;

/// Whether a mapping may be written.
enum class SegmentAccess
{
    read_only,
    read_write,
};

/// One mapping of (part of) a shared file into this process: an anonymous memfd segment, or a
/// user's file (MappedArray). Unmapped, and its descriptor closed, when the last owner goes; the
/// memory itself is freed by the kernel when no process holds a descriptor or mapping of it.
///
/// Every live segment is in a registry by address, so that a `std::span` into one can be sent
/// as a handle to the same memory rather than as a copy.
class Segment
{
public:
    /// Fresh zero-filled anonymous shared memory of `bytes` (> 0) bytes, backed up front: when
    /// memory is short this throws here rather than raising SIGBUS at a later first touch.
    /// @throws SharedMemoryExhausted if the system cannot provide it; std::system_error if the
    /// process is out of descriptors.
    static std::shared_ptr<Segment> create(std::size_t bytes);

    /// Maps `bytes` bytes at `offset` of the open file `fd` (read-write only if `access` asks
    /// for it). The caller has checked that the file is large enough.
    /// @throws std::system_error if the mapping fails.
    static std::shared_ptr<Segment> map(UniqueFd fd, std::uint64_t offset, std::size_t bytes,
                                        SegmentAccess access);

    /// Fresh anonymous shared memory of `bytes` (> 0) bytes of which only the first `backed`
    /// are backed up front (`back` adds more); mapped whole, without touching a page, so that
    /// its address never changes as it is backed (SharedVector grows in place).
    /// @throws as `create`.
    static std::shared_ptr<Segment> create_sparse(std::size_t bytes, std::size_t backed);

    /// Maps all `bytes` bytes of the memory file `fd` read-write without touching a page (a
    /// SharedVector's reserved room received from another process).
    /// @throws std::system_error if the mapping fails.
    static std::shared_ptr<Segment> map_sparse(UniqueFd fd, std::size_t bytes);

    /// Backs [offset, offset + bytes) of this segment's file now (fallocate), so that a first
    /// touch there is never SIGBUS. @throws SharedMemoryExhausted if the system cannot.
    void back(std::size_t offset, std::size_t bytes) const;

    /// Gives back the memory of [offset, offset + bytes) (page-aligned inside): it reads as
    /// zeros again, and is no longer backed.
    void release(std::size_t offset, std::size_t bytes) const noexcept;

    /// The live segment of this process whose mapping holds all of [at, at + bytes), or null.
    static std::shared_ptr<Segment> containing(const void* at, std::size_t bytes);

    /// A live segment of this process that maps [offset, offset + bytes) of the file
    /// (`device`, `inode`) with `access`, or null: an array sent back to the process that sent
    /// it needs no second mapping (for 400 MB, 15 ms to map and as much to unmap).
    static std::shared_ptr<Segment> mapping_of(std::uint64_t device, std::uint64_t inode,
                                               std::uint64_t offset, std::size_t bytes,
                                               SegmentAccess access);

    Segment(const Segment&) = delete;
    Segment& operator=(const Segment&) = delete;
    Segment(Segment&&) = delete;
    Segment& operator=(Segment&&) = delete;
    ~Segment();

    [[nodiscard]] std::byte* data() const noexcept { return data_; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] int fd() const noexcept { return fd_.get(); }
    [[nodiscard]] std::uint64_t file_offset() const noexcept { return file_offset_; }
    [[nodiscard]] SegmentAccess access() const noexcept { return access_; }

    /// Writes the pages holding [at, at + bytes) back to the file and waits (msync).
    /// @throws std::system_error if the file cannot be written.
    void flush(const void* at, std::size_t bytes) const;

private:
    struct Private
    {};

public:
    Segment(Private, UniqueFd fd, void* base, std::size_t length, std::size_t delta,
            std::size_t size, std::uint64_t file_offset, SegmentAccess access) noexcept;

private:
    static std::shared_ptr<Segment> mapped(UniqueFd fd, std::uint64_t offset, std::size_t bytes,
                                           SegmentAccess access, bool populate);

    UniqueFd fd_;
    void* base_;         // what mmap returned: page-aligned, for munmap
    std::size_t length_; // of the whole mapping
    std::byte* data_;    // base_ + the offset's distance from its page boundary
    std::size_t size_;
    std::uint64_t file_offset_; // of data_ in the file
    SegmentAccess access_;
    std::uint64_t device_ = 0; // of the file, to know it again (mapping_of)
    std::uint64_t inode_ = 0;
};

/// How `map_file` opens a file.
enum class FileOpen
{
    read_only,
    read_write,
    create, // or overwrite, read-write
};

/// Opens `path` and maps all of it (MappedArray). With `FileOpen::create` the file is made (or
/// truncated) to `count` zero elements of `element_size` bytes, with its blocks allocated so
/// that a full disk fails here and not at a later write; otherwise its size must be a non-zero
/// multiple of `element_size`, and `count` elements if `count` is not 0.
/// @throws std::filesystem::filesystem_error if the file cannot be opened or sized;
/// std::invalid_argument if its size does not fit.
std::shared_ptr<Segment> map_file(const std::filesystem::path& path, FileOpen how,
                                  std::size_t element_size, std::size_t count);

/// How a view of a segment travels: the index of its descriptor among the message's attachments,
/// the offset in the file and the length in bytes (0: an empty view, nothing attached).
struct SegmentHandle
{
    std::uint64_t index = 0;
    std::uint64_t offset = 0;
    std::uint64_t bytes = 0;

    /// The handle's one wire form, for every shared-memory type: its three numbers.
    void encode(WireWriter& out) const
    {
        out.u64(index);
        out.u64(offset);
        out.u64(bytes);
    }
    static SegmentHandle decode(WireReader& in)
    {
        SegmentHandle handle;
        handle.index = in.u64();
        handle.offset = in.u64();
        handle.bytes = in.u64();
        return handle;
    }

    /// The same numbers in a Boost.Serialization archive (see serialize_segment_handle).
    template <class Archive>
    void transfer(Archive& archive)
    {
        // clang-format off
        archive & index & offset & bytes;
        // clang-format on
    }
};

/// A view of part of a segment, as mapped from a handle.
struct SegmentView
{
    std::shared_ptr<Segment> segment;
    std::byte* data = nullptr;
    std::size_t bytes = 0;
};

/// Attaches a copy of the descriptor of `segment` to the message and returns the handle of
/// [at, at + bytes) (which must be inside it, and non-empty).
SegmentHandle attach_segment(WireWriter& out, const Segment& segment, const void* at,
                             std::size_t bytes);

/// Maps what a handle names. The offset must be a multiple of `alignment` and the range must lie
/// inside the file; the mapping is writable only if `writable` is asked for and the descriptor
/// allows it.
/// @throws ProtocolError if the handle is malformed, or asks to write through a read-only file.
SegmentView open_segment(WireReader& in, const SegmentHandle& handle, std::size_t alignment,
                         bool writable);

/// `attach_segment`, then the handle into the message.
void encode_segment_view(WireWriter& out, const Segment& segment, const void* at,
                         std::size_t bytes);

/// Reads a handle that `encode_segment_view` wrote and maps it (`open_segment`).
SegmentView decode_segment_view(WireReader& in, std::size_t alignment, bool writable);

/// Copies `bytes` (> 0) bytes at `data` into a fresh, write-sealed segment and sends its handle:
/// automatic sharing of contiguous data.
/// @throws SharedMemoryExhausted if the system cannot provide the memory.
void encode_copy_in_segment(WireWriter& out, const void* data, std::size_t bytes);

/// A fresh anonymous memory file of `bytes` bytes (not backed yet, size not sealed).
/// @throws SharedMemoryExhausted if the system cannot provide it.
UniqueFd new_memory_file(std::size_t bytes);

/// Writes `bytes` bytes at `data` at the start of the memory file `fd` (no page faults: the
/// kernel backs each page as it copies into it).
/// @throws SharedMemoryExhausted if the system runs out of memory meanwhile.
void write_memory_file(int fd, const void* data, std::size_t bytes);
/// As `write_memory_file`, at `offset` in the file.
void write_memory_file_at(int fd, std::size_t offset, const void* data, std::size_t bytes);

/// Seals a memory file's size for good, and its contents too if it is a `snapshot`.
void seal_memory_file(int fd, bool snapshot);

/// The descriptor of a segment `encode_copy_in_segment` sent, checked to hold `bytes` bytes.
/// @throws ProtocolError if the message is malformed.
UniqueFd take_copy_segment(WireReader& in, std::size_t bytes);

/// The machine's memory and swap, in bytes (the most a segment may be).
[[nodiscard]] std::uint64_t machine_memory_bytes() noexcept;

/// Fresh memory of at least this many bytes that a decoder is about to fill is prefaulted first.
inline constexpr std::size_t prefault_threshold = std::size_t{1} << 20;

/// Maps every page of the fresh memory [at, at + bytes) in one call (MADV_POPULATE_WRITE)
/// before a decoder fills it: a third cheaper than a page fault per page on first touch
/// (measured: 400 MB in 175 ms instead of 250). Only a hint: nothing changes where the kernel
/// is too old for it.
void prefault(void* at, std::size_t bytes) noexcept;

/// Maps every page of [at, at + bytes), in a shared mapping of a memory file whose pages are
/// already backed (by fallocate or by a writer), in one call (MADV_POPULATE_READ), as
/// MAP_POPULATE does for a whole mapping: the kernel maps 16 pages per fault, writable (a
/// shared memory file has no dirty tracking), so later writes take no fault either. Not
/// MADV_POPULATE_WRITE, which takes a write fault per page: 230 ms for 800 MB against 80 ms
/// measured, the whole of SharedVector's gap to Python's shared_memory. Only a hint.
void populate_shared(void* at, std::size_t bytes) noexcept;

/// Reads the first `bytes` bytes of the segment into `out` (one copy by the kernel, without
/// mapping the segment into this process).
/// @throws ProtocolError if the segment cannot be read.
void read_copy_segment(const UniqueFd& fd, void* out, std::size_t bytes);

/// Refuses a segment received as a SharedArray or SharedValue unless its size is sealed. futura
/// makes those segments itself, sealed (Segment::create); one whose sender can still shrink it
/// (a compromised worker keeps its own descriptor) would turn the receiver's next access into
/// SIGBUS. (A user's file, MappedArray, cannot be sealed: mapped_array.hpp's note says so.)
/// @throws ProtocolError unless `segment` is memory whose size cannot shrink.
void check_size_sealed(const Segment& segment);

/// Ends a spawned worker that is constructing its globals, when one of them is the shared
/// object `what`: it would silently be the worker's own (see doc/process_pool.md).
void refuse_before_main_in_spawned_worker(const char* what);

} // namespace futura::detail
