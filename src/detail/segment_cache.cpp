#include <futura/detail/segment.hpp>
#include <futura/detail/segment_cache.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

namespace futura::detail {

namespace {

constexpr std::size_t flag_page = 4096;

std::atomic<std::uint64_t> copies_into{0};
std::atomic<std::uint64_t> copies_out{0};
std::atomic<std::uint64_t> copies_into_warm{0};

// The release flag is one byte, read and written with pread/pwrite: neither side needs the
// other's last page mapped, and a receiver that vanished simply never sets it.
bool released(int fd, std::size_t flag_at) noexcept
{
    char flag = 0;
    return ::pread(fd, &flag, 1, static_cast<off_t>(flag_at)) == 1 && flag == 1;
}

void set_flag(int fd, std::size_t flag_at, char value) noexcept
{
    ssize_t n = 0;
    do {
        n = ::pwrite(fd, &value, 1, static_cast<off_t>(flag_at));
    } while (n < 0 && errno == EINTR);
}

std::size_t whole_pages(std::size_t bytes) noexcept
{
    return (bytes + flag_page - 1) / flag_page * flag_page;
}

// Copies the first `bytes` bytes of the memory file `fd` into `to`. Mapped (prefaulted in one
// call) and copied with memcpy when the file's size is sealed, so that nobody can shrink it under
// the mapping: on 400 MB that is about 125 ms (map, copy, unmap) against 200 for pread, whose
// per-page lookups cost more than the copy. Otherwise read with pread, which cannot fault.
void copy_out(const UniqueFd& fd, void* to, std::size_t bytes)
{
    const int seals = ::fcntl(fd.get(), F_GET_SEALS);
    if (seals >= 0 && (seals & F_SEAL_SHRINK) != 0) {
        void* mapped = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED | MAP_POPULATE, fd.get(), 0);
        if (mapped != MAP_FAILED) {
            std::memcpy(to, mapped, bytes);
            ::munmap(mapped, bytes);
            return;
        }
    }
    read_copy_segment(fd, to, bytes);
}

// Copies [data, data + bytes) into the memory file `fd`, or into its mapping `to` if not null.
// With `give_up`, in steps, giving each step's whole pages of the source back to the system
// behind the copy, so that the source and the segment together never hold much more than the
// data once (the lvalue rule: see ArgumentSegments). The first and last pages of the source may
// hold an allocator's data: only whole pages inside it are given back.
void copy_into(int fd, void* to, const void* data, std::size_t bytes, bool give_up)
{
    constexpr std::size_t step = std::size_t{16} << 20;
    const auto* from = static_cast<const char*>(data);
    auto freed = (reinterpret_cast<std::uintptr_t>(from) + flag_page - 1) & ~(flag_page - 1);
    for (std::size_t done = 0; done < bytes;) {
        const auto n = give_up ? std::min(step, bytes - done) : bytes;
        if (to != nullptr) {
            std::memcpy(static_cast<char*>(to) + done, from + done, n);
        } else {
            write_memory_file_at(fd, done, from + done, n);
        }
        done += n;
        const auto end = reinterpret_cast<std::uintptr_t>(from + done) & ~(flag_page - 1);
        if (give_up && end > freed) {
            (void)::madvise(reinterpret_cast<void*>(freed), end - freed, MADV_DONTNEED);
            freed = end;
        }
    }
}

} // namespace

SegmentCache::Entry::Entry(Entry&& other) noexcept
    : fd(std::move(other.fd)), mapping(std::exchange(other.mapping, nullptr)), size(other.size),
      owner(other.owner), used(other.used), idle_clock_started(other.idle_clock_started)
{}

SegmentCache::Entry& SegmentCache::Entry::operator=(Entry&& other) noexcept
{
    if (this != &other) {
        if (mapping != nullptr) {
            ::munmap(mapping, size - flag_page);
        }
        fd = std::move(other.fd);
        mapping = std::exchange(other.mapping, nullptr);
        size = other.size;
        owner = other.owner;
        used = other.used;
        idle_clock_started = other.idle_clock_started;
    }
    return *this;
}

SegmentCache::Entry::~Entry()
{
    if (mapping != nullptr) {
        ::munmap(mapping, size - flag_page);
    }
}

SegmentCache::Filled SegmentCache::fill(const void* data, std::size_t bytes, std::uint64_t owner,
                                        bool give_up)
{
    copies_into.fetch_add(1, std::memory_order_relaxed);
    const auto room = whole_pages(bytes);
    if (room > limit_ || room > std::numeric_limits<std::size_t>::max() / 2) {
        // Larger than the whole cache: a one-off snapshot, as without a cache.
        auto fd = new_memory_file(bytes);
        copy_into(fd.get(), nullptr, data, bytes, give_up);
        seal_memory_file(fd.get(), true);
        const std::lock_guard lock(mutex_);
        ++fresh_;
        return {std::move(fd), 0};
    }
    Entry entry;
    {
        const std::lock_guard lock(mutex_);
        // The smallest released segment of this receiver that holds the data without wasting
        // more than its size again: warm pages, and the rest stays available.
        auto best = entries_.end();
        for (auto it = entries_.begin(); it != entries_.end(); ++it) {
            const auto data_room = it->size - flag_page;
            if (it->owner == owner && data_room >= bytes && data_room <= 2 * room &&
                (best == entries_.end() || it->size < best->size) &&
                released(it->fd.get(), data_room)) {
                best = it;
            }
        }
        if (best != entries_.end()) {
            entry = std::move(*best);
            entries_.erase(best);
            held_ -= entry.size;
            ++warm_;
            copies_into_warm.fetch_add(1, std::memory_order_relaxed);
        } else {
            ++fresh_;
        }
    }
    if (!entry.fd) {
        // Fresh pages: pwrite backs them as it copies, cheaper than backing, mapping and
        // copying (measured on 400 MB: 300 ms against 480).
        entry.size = room + flag_page;
        entry.fd = new_memory_file(entry.size);
        seal_memory_file(entry.fd.get(), false); // its size, not its contents: it is reused
        entry.owner = owner;
        copy_into(entry.fd.get(), nullptr, data, bytes, give_up);
    } else {
        // Warm pages: mapped once, at the first reuse, then a memcpy each time.
        if (entry.mapping == nullptr) {
            void* mapped = ::mmap(nullptr, entry.size - flag_page, PROT_READ | PROT_WRITE,
                                  MAP_SHARED | MAP_POPULATE, entry.fd.get(), 0);
            if (mapped != MAP_FAILED) {
                entry.mapping = mapped;
            }
        }
        copy_into(entry.fd.get(), entry.mapping, data, bytes, give_up);
    }
    const auto flag_at = entry.size - flag_page;
    set_flag(entry.fd.get(), flag_at, 0); // in flight until its receiver says otherwise
    Filled filled{UniqueFd::duplicate(entry.fd.get()), flag_at};
    entry.used = Clock::now();
    entry.idle_clock_started = false;
    const std::lock_guard lock(mutex_);
    // Room for it within the limit: the least recently used go first.
    while (held_ + entry.size > limit_ && !entries_.empty()) {
        const auto oldest =
            std::min_element(entries_.begin(), entries_.end(),
                             [](const Entry& a, const Entry& b) { return a.used < b.used; });
        held_ -= oldest->size;
        entries_.erase(oldest);
    }
    held_ += entry.size;
    entries_.push_back(std::move(entry));
    return filled;
}

void SegmentCache::trim(Clock::duration idle)
{
    std::vector<Entry> dropped; // closed outside the lock
    const auto now = Clock::now();
    const std::lock_guard lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end();) {
        if (idle != Clock::duration::zero() && !it->idle_clock_started) {
            // Its idle time starts once its receiver is done with it, as this trim sees:
            // counting from the fill would give back the segment of every call that runs
            // longer than `idle` (a long call's argument, a result its caller reads slowly),
            // and the next call of that size would find no warm pages.
            it->idle_clock_started = released(it->fd.get(), it->size - flag_page);
            it->used = now;
            ++it;
        } else if (now - it->used >= idle) {
            held_ -= it->size;
            dropped.push_back(std::move(*it));
            it = entries_.erase(it);
        } else {
            ++it;
        }
    }
}

void SegmentCache::touch()
{
    const auto now = Clock::now();
    const std::lock_guard lock(mutex_);
    for (auto& entry : entries_) {
        entry.used = now;
        entry.idle_clock_started = false;
    }
}

void SegmentCache::forget(std::uint64_t owner)
{
    const std::lock_guard lock(mutex_);
    std::erase_if(entries_, [&](const Entry& entry) {
        if (entry.owner == owner) {
            held_ -= entry.size;
            return true;
        }
        return false;
    });
}

void SegmentCache::retire(int fd)
{
    struct stat sent
    {};
    if (::fstat(fd, &sent) != 0) {
        return;
    }
    std::vector<Entry> dropped; // closed outside the lock
    const std::lock_guard lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end();) {
        struct stat status
        {};
        if (::fstat(it->fd.get(), &status) == 0 && status.st_ino == sent.st_ino &&
            status.st_dev == sent.st_dev) {
            held_ -= it->size;
            dropped.push_back(std::move(*it));
            it = entries_.erase(it);
        } else {
            ++it;
        }
    }
}

std::size_t SegmentCache::held_bytes() const
{
    const std::lock_guard lock(mutex_);
    return held_;
}

std::size_t SegmentCache::warm_fills() const
{
    const std::lock_guard lock(mutex_);
    return warm_;
}

std::size_t SegmentCache::fresh_fills() const
{
    const std::lock_guard lock(mutex_);
    return fresh_;
}

void encode_in_cached_segment(WireWriter& out, const void* data, std::size_t bytes)
{
    if (out.counting_descriptors()) {
        out.u64(out.fresh_descriptor(-1)); // only counting (map chunks): make no segment
        out.u64(0);
        return;
    }
    auto* const cache = out.segment_cache();
    if (auto* kept = out.argument_segments(); kept != nullptr) {
        if (kept->next < kept->segments.size()) {
            // Sent again: the segment is the task's copy now. A fresh one is write-sealed; a
            // cached one is not reused before a receiver has read it, and one that read it
            // claimed the call, which is then never sent again.
            const auto& sent = kept->segments[kept->next++];
            if (sent.release_flag != 0 && sent.owner != out.segment_owner() && cache != nullptr) {
                cache->retire(sent.fd.get());
            }
            out.u64(out.fresh_descriptor(sent.fd.get()));
            out.u64(sent.release_flag);
            return;
        }
        ArgumentSegments::Sent sent;
        if (cache == nullptr) {
            copies_into.fetch_add(1, std::memory_order_relaxed);
            sent.fd = new_memory_file(bytes);
            copy_into(sent.fd.get(), nullptr, data, bytes, true);
            seal_memory_file(sent.fd.get(), true);
        } else {
            auto filled = cache->fill(data, bytes, out.segment_owner(), true);
            sent.fd = std::move(filled.fd);
            sent.release_flag = filled.release_flag;
            sent.owner = out.segment_owner();
        }
        out.u64(out.fresh_descriptor(sent.fd.get()));
        out.u64(sent.release_flag);
        kept->segments.push_back(std::move(sent));
        kept->next = kept->segments.size();
        return;
    }
    if (cache == nullptr) {
        copies_into.fetch_add(1, std::memory_order_relaxed);
        auto fd = new_memory_file(bytes);
        write_memory_file(fd.get(), data, bytes);
        seal_memory_file(fd.get(), true); // a snapshot: the receiver cannot change it
        out.u64(out.fresh_descriptor(fd.get()));
        out.u64(0);
        return;
    }
    const auto filled = cache->fill(data, bytes, out.segment_owner());
    out.u64(out.fresh_descriptor(filled.fd.get()));
    out.u64(filled.release_flag);
}

ReceivedSegment take_cached_segment(WireReader& in, std::size_t bytes)
{
    ReceivedSegment received;
    // Taken out of the message, not duplicated: the segment is this value's alone, and once
    // copied out of (and released) it need not live until the call is over (400 MB less held
    // by a worker while its task runs).
    received.fd = in.take_descriptor(in.u64());
    received.release_flag = in.u64();
    struct stat status
    {};
    if (::fstat(received.fd.get(), &status) != 0 || !S_ISREG(status.st_mode)) {
        WireReader::fail("a shared memory handle is not a file");
    }
    const auto size = static_cast<std::uint64_t>(status.st_size);
    if (bytes > size) {
        WireReader::fail("a shared memory handle reaches past the end of its segment");
    }
    if (received.release_flag != 0 &&
        (received.release_flag < bytes || received.release_flag >= size)) {
        WireReader::fail("a shared vector's release flag is outside its segment");
    }
    return received;
}

void read_cached_segment(const ReceivedSegment& segment, void* to, std::size_t bytes)
{
    copies_out.fetch_add(1, std::memory_order_relaxed);
    copy_out(segment.fd, to, bytes);
    if (segment.release_flag != 0) {
        set_flag(segment.fd.get(), static_cast<std::size_t>(segment.release_flag), 1);
    }
}

LargeCopyCounters large_copy_counters() noexcept
{
    return {copies_into.load(std::memory_order_relaxed), copies_out.load(std::memory_order_relaxed),
            copies_into_warm.load(std::memory_order_relaxed)};
}

} // namespace futura::detail
