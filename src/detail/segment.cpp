// Shared memory that travels between processes: memfd segments, mapped files, their handles.
#include <futura/detail/segment.hpp>
#include <futura/detail/worker.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <system_error>
#include <unistd.h>

namespace futura::detail {

std::uint64_t machine_memory_bytes() noexcept
{
    struct sysinfo machine
    {};
    if (::sysinfo(&machine) != 0) {
        return std::numeric_limits<std::uint64_t>::max();
    }
    // In units, to stay clear of overflow: totalram counts mem_unit-byte units.
    const std::uint64_t unit = machine.mem_unit == 0 ? 1 : machine.mem_unit;
    const std::uint64_t units = std::uint64_t{machine.totalram} + machine.totalswap;
    return units > std::numeric_limits<std::uint64_t>::max() / unit
               ? std::numeric_limits<std::uint64_t>::max()
               : units * unit;
}

namespace {

// Every live segment of this process by the address its data starts at, so that a span into one
// can be sent as that segment (a worker writing through it writes into the caller's array).
struct Registry
{
    std::mutex mutex; // guards segments
    std::map<std::uintptr_t, std::weak_ptr<Segment>> segments;
};

Registry& registry()
{
    static Registry instance; // first use may come from a static initialiser
    return instance;
}

std::size_t page_size() noexcept
{
    static const auto size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return size;
}

[[noreturn]] void exhausted(std::size_t bytes, const char* step, int error)
{
    throw SharedMemoryExhausted("futura: cannot get " + std::to_string(bytes) +
                                " bytes of shared memory (" + step + ": " + std::strerror(error) +
                                "); free memory, or share less");
}

// An anonymous file in the kernel's internal tmpfs: it has no name anywhere (nothing in
// /dev/shm), and the kernel frees it when the last descriptor and mapping of it go, whichever
// process held them and however it ended.
UniqueFd new_memfd(std::size_t bytes)
{
    // The kernel's internal tmpfs has no size limit: a request beyond the machine's memory would
    // only end in the OOM killer. Refuse it here, with the sizes in the message.
    if (const auto memory = machine_memory_bytes(); bytes > memory) {
        throw SharedMemoryExhausted("futura: cannot get " + std::to_string(bytes) +
                                    " bytes of shared memory: more than this machine's memory "
                                    "and swap (" +
                                    std::to_string(memory) + " bytes)");
    }
    UniqueFd fd(::memfd_create("futura", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd) {
        if (errno == ENOMEM) {
            exhausted(bytes, "memfd_create", errno);
        }
        throw std::system_error(errno, std::system_category(),
                                "futura: cannot create a shared memory segment (memfd_create)");
    }
    if (bytes > static_cast<std::size_t>(std::numeric_limits<off_t>::max()) ||
        ::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0) {
        exhausted(bytes, "ftruncate",
                  bytes > static_cast<std::size_t>(std::numeric_limits<off_t>::max()) ? EFBIG
                                                                                      : errno);
    }
    return fd;
}

// A segment never changes size once made: nobody (not a buggy or hostile worker either) can
// shrink it under a mapping, which would turn a later access into SIGBUS.
void seal_size(int fd, int more_seals)
{
    (void)::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | more_seals | F_SEAL_SEAL);
}

bool fd_writable(int fd)
{
    const int flags = ::fcntl(fd, F_GETFL);
    return flags >= 0 && (flags & O_ACCMODE) == O_RDWR;
}

} // namespace

Segment::Segment(Private, UniqueFd fd, void* base, std::size_t length, std::size_t delta,
                 std::size_t size, std::uint64_t file_offset, SegmentAccess access) noexcept
    : fd_(std::move(fd)), base_(base), length_(length),
      data_(static_cast<std::byte*>(base) + delta), size_(size), file_offset_(file_offset),
      access_(access)
{}

Segment::~Segment()
{
    {
        auto& segments = registry();
        const std::lock_guard lock(segments.mutex);
        segments.segments.erase(reinterpret_cast<std::uintptr_t>(data_)); // NOLINT
    }
    ::munmap(base_, length_);
}

std::shared_ptr<Segment> Segment::mapped(UniqueFd fd, std::uint64_t offset, std::size_t bytes,
                                         SegmentAccess access, bool populate)
{
    const auto delta = static_cast<std::size_t>(offset % page_size());
    const auto length = delta + bytes;
    const int protection = access == SegmentAccess::read_write ? PROT_READ | PROT_WRITE : PROT_READ;
    void* base = ::mmap(nullptr, length, protection, MAP_SHARED | (populate ? MAP_POPULATE : 0),
                        fd.get(), static_cast<off_t>(offset - delta));
    if (base == MAP_FAILED) {
        if (errno == ENOMEM) {
            exhausted(bytes, "mmap", errno);
        }
        throw std::system_error(errno, std::system_category(),
                                "futura: cannot map " + std::to_string(bytes) +
                                    " bytes of shared memory or of a file");
    }
    auto segment = std::make_shared<Segment>(Private{}, std::move(fd), base, length, delta, bytes,
                                             offset, access);
    struct stat status
    {};
    if (::fstat(segment->fd_.get(), &status) == 0) {
        segment->device_ = status.st_dev;
        segment->inode_ = status.st_ino;
    }
    auto& segments = registry();
    const std::lock_guard lock(segments.mutex);
    segments.segments.insert_or_assign(reinterpret_cast<std::uintptr_t>(segment->data_), // NOLINT
                                       segment);
    return segment;
}

void refuse_before_main_in_spawned_worker(const char* what)
{
    // Only a spawned worker that has not entered its loop has the channel in its environment
    // (the loop removes it before any initializer or task runs). Its globals are constructed
    // anew, so a shared object among them would be this worker's own, not the parent's: every
    // write to it would be lost without a word. It says so and leaves; the parent breaks the
    // pool with these lines (a worker that dies while starting does).
    if (std::getenv(worker_channel_variable) == nullptr) {
        return;
    }
    std::fprintf(stderr,
                 "futura worker %d: %s was constructed before main (at namespace scope, or as a "
                 "static member): in a worker started with StartMethod::spawn it would be a "
                 "new object of this worker alone, not the parent's. Construct it in main and "
                 "pass it to the tasks as an argument (or as initargs), or use "
                 "StartMethod::fork, whose workers inherit the parent's objects.\n",
                 static_cast<int>(::getpid()), what);
    std::_Exit(5);
}

std::shared_ptr<Segment> Segment::create(std::size_t bytes)
{
    refuse_before_main_in_spawned_worker(
        "a futura shared object (SharedValue, SharedArray or a shared container)");
    auto fd = new_memfd(bytes);
    // Back every page now: tmpfs allocates lazily, and a page that cannot be allocated at its
    // first touch is SIGBUS in whichever process touches it. fallocate fails here instead.
    int result = 0;
    do {
        result = ::fallocate(fd.get(), 0, 0, static_cast<off_t>(bytes));
    } while (result != 0 && errno == EINTR);
    if (result != 0 && errno != EOPNOTSUPP) {
        exhausted(bytes, "fallocate", errno);
    }
    seal_size(fd.get(), 0);
    // The creator is about to fill it: mapping every page now is cheaper than a fault per page.
    return mapped(std::move(fd), 0, bytes, SegmentAccess::read_write, true);
}

std::shared_ptr<Segment> Segment::create_sparse(std::size_t bytes, std::size_t backed)
{
    auto fd = new_memfd(bytes);
    seal_size(fd.get(), 0);
    auto segment = mapped(std::move(fd), 0, bytes, SegmentAccess::read_write, false);
    segment->back(0, backed);
    return segment;
}

std::shared_ptr<Segment> Segment::map_sparse(UniqueFd fd, std::size_t bytes)
{
    return mapped(std::move(fd), 0, bytes, SegmentAccess::read_write, false);
}

void Segment::back(std::size_t offset, std::size_t bytes) const
{
    if (bytes == 0) {
        return;
    }
    int result = 0;
    do {
        result = ::fallocate(fd_.get(), 0, static_cast<off_t>(file_offset_ + offset),
                             static_cast<off_t>(bytes));
    } while (result != 0 && errno == EINTR);
    if (result != 0 && errno != EOPNOTSUPP) {
        exhausted(bytes, "fallocate", errno);
    }
}

void Segment::release(std::size_t offset, std::size_t bytes) const noexcept
{
    const auto page = page_size();
    const auto first = (offset + page - 1) / page * page;
    const auto last = (offset + bytes) / page * page;
    if (last > first) {
        (void)::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                          static_cast<off_t>(file_offset_ + first),
                          static_cast<off_t>(last - first));
    }
}

std::shared_ptr<Segment> Segment::map(UniqueFd fd, std::uint64_t offset, std::size_t bytes,
                                      SegmentAccess access)
{
    // Memory files (memfd, tmpfs: those that know seals) are prefaulted: the receiver of a
    // segment touches it all, and one populating call costs a third of a fault per page
    // (measured: 400 MB doubled in 82 + 24 ms instead of 225). A file on disk is not: that
    // would read all of it up front, where numpy.memmap reads what is touched.
    const bool in_memory = ::fcntl(fd.get(), F_GET_SEALS) >= 0;
    return mapped(std::move(fd), offset, bytes, access, in_memory);
}

std::shared_ptr<Segment> Segment::mapping_of(std::uint64_t device, std::uint64_t inode,
                                             std::uint64_t offset, std::size_t bytes,
                                             SegmentAccess access)
{
    auto& segments = registry();
    const std::lock_guard lock(segments.mutex);
    for (const auto& [address, weak] : segments.segments) {
        auto segment = weak.lock(); // null while its destructor runs
        if (segment && segment->inode_ == inode && segment->device_ == device &&
            segment->access_ == access && offset >= segment->file_offset_ &&
            offset - segment->file_offset_ <= segment->size_ &&
            bytes <= segment->size_ - (offset - segment->file_offset_)) {
            return segment;
        }
    }
    return nullptr;
}

std::shared_ptr<Segment> Segment::containing(const void* at, std::size_t bytes)
{
    const auto address = reinterpret_cast<std::uintptr_t>(at); // NOLINT
    auto& segments = registry();
    const std::lock_guard lock(segments.mutex);
    auto found = segments.segments.upper_bound(address);
    if (found == segments.segments.begin()) {
        return nullptr;
    }
    --found;
    auto segment = found->second.lock(); // null while its destructor runs: not containing then
    if (!segment || bytes > segment->size_ || address - found->first > segment->size_ - bytes) {
        return nullptr;
    }
    return segment;
}

void Segment::flush(const void* at, std::size_t bytes) const
{
    if (bytes == 0 || access_ == SegmentAccess::read_only) {
        return;
    }
    const auto address = reinterpret_cast<std::uintptr_t>(at); // NOLINT
    const auto first = address - address % page_size();
    if (::msync(reinterpret_cast<void*>(first), address + bytes - first, MS_SYNC) != 0) { // NOLINT
        throw std::system_error(errno, std::system_category(),
                                "futura: cannot write a mapped array back to its file (msync)");
    }
}

std::shared_ptr<Segment> map_file(const std::filesystem::path& path, FileOpen how,
                                  std::size_t element_size, std::size_t count)
{
    const auto fail = [&](const std::string& what, int error) {
        throw std::filesystem::filesystem_error("futura::MappedArray: " + what, path,
                                                std::error_code(error, std::system_category()));
    };
    const auto wrong_size = [&](const std::string& what) {
        throw std::invalid_argument("futura::MappedArray: '" + path.string() + "' " + what);
    };
    if (how == FileOpen::create) {
        // Created again in each spawned worker, the file would be truncated under the parent.
        refuse_before_main_in_spawned_worker("a futura::MappedArray created with create()");
    }
    if (how == FileOpen::create && count == 0) {
        wrong_size("cannot be created with 0 elements: a mapped array holds at least one");
    }
    const int flags = how == FileOpen::read_only    ? O_RDONLY
                      : how == FileOpen::read_write ? O_RDWR
                                                    : O_RDWR | O_CREAT | O_TRUNC;
    UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC, 0666)); // like fopen: umask applies
    if (!fd) {
        fail("cannot open the file", errno);
    }
    std::size_t bytes = 0;
    if (how == FileOpen::create) {
        if (count > std::numeric_limits<std::size_t>::max() / 2 / element_size) {
            wrong_size("cannot hold " + std::to_string(count) + " elements: too large");
        }
        bytes = count * element_size;
        if (::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0) {
            fail("cannot size the file to " + std::to_string(bytes) + " bytes", errno);
        }
        // Allocate the blocks now: a write into a hole that the disk cannot fill is SIGBUS.
        if (::fallocate(fd.get(), 0, 0, static_cast<off_t>(bytes)) != 0 && errno != EOPNOTSUPP) {
            fail("cannot allocate " + std::to_string(bytes) + " bytes on disk", errno);
        }
    } else {
        struct stat status
        {};
        if (::fstat(fd.get(), &status) != 0) {
            fail("cannot read the file's size", errno);
        }
        if (!S_ISREG(status.st_mode)) {
            wrong_size("is not a regular file");
        }
        bytes = static_cast<std::size_t>(status.st_size);
        if (bytes == 0) {
            wrong_size("is empty: a mapped array holds at least one element");
        }
        if (bytes % element_size != 0) {
            wrong_size("holds " + std::to_string(bytes) + " bytes, not a whole number of " +
                       std::to_string(element_size) + "-byte elements (wrong file or type?)");
        }
        if (count != 0 && bytes / element_size != count) {
            wrong_size("holds " + std::to_string(bytes / element_size) + " elements of " +
                       std::to_string(element_size) + " bytes, not the " + std::to_string(count) +
                       " expected");
        }
    }
    return Segment::map(std::move(fd), 0, bytes,
                        how == FileOpen::read_only ? SegmentAccess::read_only
                                                   : SegmentAccess::read_write);
}

SegmentHandle attach_segment(WireWriter& out, const Segment& segment, const void* at,
                             std::size_t bytes)
{
    const auto distance =
        static_cast<std::uint64_t>(static_cast<const std::byte*>(at) - segment.data());
    return {out.descriptor(segment.fd()), segment.file_offset() + distance, bytes};
}

void encode_segment_view(WireWriter& out, const Segment& segment, const void* at, std::size_t bytes)
{
    attach_segment(out, segment, at, bytes).encode(out);
}

namespace {

// The descriptor at the reader's next index, checked to be a regular file holding
// [offset, offset + bytes): mapping beyond a file's end would be SIGBUS at first touch.
UniqueFd checked_descriptor(WireReader& in, std::uint64_t index, std::uint64_t offset,
                            std::uint64_t bytes, struct stat& status)
{
    auto fd = in.descriptor(index);
    if (::fstat(fd.get(), &status) != 0 || !S_ISREG(status.st_mode)) {
        WireReader::fail("a shared memory handle is not a file");
    }
    const auto size = static_cast<std::uint64_t>(status.st_size);
    if (offset > size || bytes > size - offset) {
        WireReader::fail("a shared memory handle reaches past the end of its segment");
    }
    return fd;
}

} // namespace

SegmentView open_segment(WireReader& in, const SegmentHandle& handle, std::size_t alignment,
                         bool writable)
{
    if (handle.bytes == 0 || handle.bytes > std::numeric_limits<std::size_t>::max() / 2) {
        WireReader::fail("a shared memory handle has an impossible length");
    }
    if (alignment != 0 && handle.offset % alignment != 0) {
        WireReader::fail("a shared memory handle is misaligned for its element type");
    }
    struct stat status
    {};
    auto fd = checked_descriptor(in, handle.index, handle.offset, handle.bytes, status);
    if (writable && !fd_writable(fd.get())) {
        WireReader::fail("a writable view of shared memory came with a read-only descriptor");
    }
    // A write-sealed memory file (a copy's snapshot) cannot be mapped for writing either: mmap
    // would refuse with EPERM, a system error, where it is the message that is wrong.
    if (const int seals = ::fcntl(fd.get(), F_GET_SEALS);
        writable && seals >= 0 && (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) != 0) {
        WireReader::fail("a writable view of shared memory came with a write-sealed descriptor");
    }
    const auto access = writable ? SegmentAccess::read_write : SegmentAccess::read_only;
    const auto bytes = static_cast<std::size_t>(handle.bytes);
    if (auto mapped =
            Segment::mapping_of(status.st_dev, status.st_ino, handle.offset, bytes, access)) {
        // Already mapped here (an array coming back to its sender): the same pages.
        auto* data = mapped->data() + (handle.offset - mapped->file_offset());
        return {std::move(mapped), data, bytes};
    }
    auto segment = Segment::map(std::move(fd), handle.offset, bytes, access);
    auto* data = segment->data();
    return {std::move(segment), data, bytes};
}

SegmentView decode_segment_view(WireReader& in, std::size_t alignment, bool writable)
{
    return open_segment(in, SegmentHandle::decode(in), alignment, writable);
}

UniqueFd new_memory_file(std::size_t bytes) { return new_memfd(bytes); }

void write_memory_file(int fd, const void* data, std::size_t bytes)
{
    write_memory_file_at(fd, 0, data, bytes);
}

void write_memory_file_at(int fd, std::size_t offset, const void* data, std::size_t bytes)
{
    // write(), not a mapping: the kernel allocates each page as it copies into it, with no page
    // faults and no SIGBUS (out of memory is ENOSPC/ENOMEM here).
    const auto* from = static_cast<const char*>(data);
    std::size_t done = 0;
    while (done < bytes) {
        const auto written =
            ::pwrite(fd, from + done, bytes - done, static_cast<off_t>(offset + done));
        if (written < 0 && errno == EINTR) {
            continue;
        }
        if (written <= 0) {
            exhausted(bytes, "write", written < 0 ? errno : ENOSPC);
        }
        done += static_cast<std::size_t>(written);
    }
}

void seal_memory_file(int fd, bool snapshot) { seal_size(fd, snapshot ? F_SEAL_WRITE : 0); }

void encode_copy_in_segment(WireWriter& out, const void* data, std::size_t bytes)
{
    if (out.counting_descriptors()) {
        out.u64(out.fresh_descriptor(-1)); // only counting (map chunks): make no segment
        return;
    }
    auto fd = new_memfd(bytes);
    write_memory_file(fd.get(), data, bytes);
    // A snapshot: the receiver cannot change what it was sent.
    seal_size(fd.get(), F_SEAL_WRITE);
    // Fresh: `fd` closes on return, and a later copy in this message may get its number.
    out.u64(out.fresh_descriptor(fd.get()));
}

UniqueFd take_copy_segment(WireReader& in, std::size_t bytes)
{
    struct stat status
    {};
    return checked_descriptor(in, in.u64(), 0, bytes, status);
}

void prefault(void* at, std::size_t bytes) noexcept
{
    // Whole pages inside the buffer only: its first and last pages may hold the allocator's
    // data. (Transparent huge pages were slower here: 430 ms for 400 MB, with compaction.)
    const auto page = page_size();
    const auto first = (reinterpret_cast<std::uintptr_t>(at) + page - 1) & ~(page - 1); // NOLINT
    const auto last = (reinterpret_cast<std::uintptr_t>(at) + bytes) & ~(page - 1);     // NOLINT
    if (last > first) {
        (void)::madvise(reinterpret_cast<void*>(first), last - first, // NOLINT
                        MADV_POPULATE_WRITE);
    }
}

void populate_shared(void* at, std::size_t bytes) noexcept
{
    const auto page = page_size();
    const auto first = reinterpret_cast<std::uintptr_t>(at) & ~(page - 1); // NOLINT
    const auto last = reinterpret_cast<std::uintptr_t>(at) + bytes;        // NOLINT
    if (bytes != 0) {
        (void)::madvise(reinterpret_cast<void*>(first), last - first, // NOLINT
                        MADV_POPULATE_READ);
    }
}

void read_copy_segment(const UniqueFd& fd, void* out, std::size_t bytes)
{
    auto* to = static_cast<char*>(out);
    std::size_t done = 0;
    while (done < bytes) {
        const auto got = ::pread(fd.get(), to + done, bytes - done, static_cast<off_t>(done));
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            WireReader::fail("a shared memory segment could not be read");
        }
        done += static_cast<std::size_t>(got);
    }
}

void check_size_sealed(const Segment& segment)
{
    // Seals are never removed: checked once, it holds for the mapping's life.
    const int seals = ::fcntl(segment.fd(), F_GET_SEALS);
    if (seals < 0 || (seals & F_SEAL_SHRINK) == 0) {
        WireReader::fail("a shared array or value came in memory that its sender can still "
                         "shrink");
    }
}

} // namespace futura::detail
