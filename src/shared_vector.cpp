#include <futura/shared_vector.hpp>

#include <algorithm>
#include <fcntl.h>
#include <limits>
#include <new>
#include <string>
#include <sys/stat.h>

namespace futura::detail {

VectorBlock::VectorBlock(std::shared_ptr<Segment> segment, std::size_t element_size) noexcept
    : segment_(std::move(segment)),
      header_(reinterpret_cast<VectorHeader*>(segment_->data())), // NOLINT: the segment's start
      element_size_(element_size), max_size_((segment_->size() - vector_data_offset) / element_size)
{}

VectorBlock VectorBlock::create(std::size_t element_size, std::size_t max_size, std::uint64_t tag)
{
    const auto memory = machine_memory_bytes();
    const auto most = (memory - std::min<std::uint64_t>(memory, vector_data_offset)) / element_size;
    if (max_size == 0) {
        max_size = static_cast<std::size_t>(std::min<std::uint64_t>(
            most, std::numeric_limits<std::size_t>::max() / 2 / element_size));
    } else if (max_size > most) {
        throw std::invalid_argument("futura::SharedVector: max_size " + std::to_string(max_size) +
                                    " elements of " + std::to_string(element_size) +
                                    " bytes is more than this machine's memory and swap (" +
                                    std::to_string(memory) + " bytes)");
    }
    if (max_size == 0) {
        throw std::invalid_argument("futura::SharedVector: an element does not fit in memory");
    }
    // Only the header page is backed: the rest is address space until the vector grows.
    VectorBlock block(
        Segment::create_sparse(vector_data_offset + max_size * element_size, vector_data_offset),
        element_size);
    auto& header = block.header();
    new (&header) VectorHeader{};
    header.tag = tag;
    header.max_size = max_size;
    return block;
}

void VectorBlock::reserve(std::size_t count, bool grow) const
{
    if (count > max_size_) {
        throw SharedVectorFull("futura::SharedVector: cannot hold " + std::to_string(count) +
                               " elements: its max_size is " + std::to_string(max_size_) +
                               " (SharedVectorOptions::max_size, fixed when it was made)");
    }
    const std::size_t capacity =
        std::min<std::uint64_t>(header_->capacity.load(std::memory_order_acquire), max_size_);
    if (count <= capacity) {
        return;
    }
    // Doubling, as std::vector does, so that n push_backs cost O(n); but never past max_size,
    // and in whole pages (a page backed is a page, whatever is asked).
    auto target =
        grow ? std::max(count, std::min(max_size_,
                                        std::max<std::size_t>(2 * capacity, 4096 / element_size_)))
             : count;
    target = std::min(max_size_, target);
    segment_->back(vector_data_offset + capacity * element_size_,
                   (target - capacity) * element_size_);
    // The grower is about to write there: map the new pages in one call, not a fault per page.
    populate_shared(data() + capacity * element_size_, (target - capacity) * element_size_);
    // Another process may have grown it meanwhile: capacity only ever rises.
    auto seen = header_->capacity.load(std::memory_order_relaxed);
    while (seen < target &&
           !header_->capacity.compare_exchange_weak(seen, target, std::memory_order_release)) {
    }
}

void VectorBlock::shrink_to(std::size_t count) const noexcept
{
    const std::size_t capacity =
        std::min<std::uint64_t>(header_->capacity.load(std::memory_order_acquire), max_size_);
    if (count >= capacity) {
        return;
    }
    // Whole pages past the last element: the page holding it stays backed.
    const auto page = std::size_t{4096};
    const auto keep = (count * element_size_ + page - 1) / page * page / element_size_;
    if (keep >= capacity) {
        return;
    }
    header_->capacity.store(keep, std::memory_order_release);
    segment_->release(vector_data_offset + keep * element_size_, (capacity - keep) * element_size_);
}

void VectorBlock::encode(WireWriter& out) const
{
    const auto handle = attach_segment(out, *segment_, segment_->data(), segment_->size());
    out.u64(handle.index);
    out.u64(handle.bytes);
}

VectorBlock VectorBlock::decode(WireReader& in, std::size_t element_size, std::uint64_t tag)
{
    const auto index = in.u64();
    const auto bytes = in.u64();
    auto fd = in.descriptor(index);
    struct stat status
    {};
    if (::fstat(fd.get(), &status) != 0 || !S_ISREG(status.st_mode) ||
        static_cast<std::uint64_t>(status.st_size) != bytes || bytes <= vector_data_offset ||
        (bytes - vector_data_offset) % element_size != 0 ||
        bytes > std::numeric_limits<std::size_t>::max() / 2) {
        WireReader::fail("a shared vector's handle does not match its segment");
    }
    // Its size must be sealed, or its sender could shrink it under our mapping (SIGBUS).
    if (const int seals = ::fcntl(fd.get(), F_GET_SEALS);
        seals < 0 || (seals & F_SEAL_SHRINK) == 0 || (seals & F_SEAL_WRITE) != 0) {
        WireReader::fail("a shared vector came in memory that its sender can still shrink");
    }
    const auto size = static_cast<std::size_t>(bytes);
    auto segment =
        Segment::mapping_of(status.st_dev, status.st_ino, 0, size, SegmentAccess::read_write);
    if (!segment || segment->file_offset() != 0 || segment->size() != size) {
        segment = Segment::map_sparse(std::move(fd), size);
    }
    VectorBlock block(std::move(segment), element_size);
    // The header's fields are the sender's word: checked once here, and every later use of the
    // size or capacity is clamped to this process's own max_size_ (see SharedVector::size).
    if (block.header().tag != tag || block.header().max_size != block.max_size_) {
        WireReader::fail("a shared vector's handle names a vector of another element type");
    }
    // The elements in use are about to be touched: map their pages in one call rather than a
    // fault per page (a loop such as `x *= 2` would otherwise fault on each: 150 ms on 400 MB
    // instead of 15). The rest of the room stays address space.
    const auto in_use = std::min<std::uint64_t>(block.header().size.load(std::memory_order_acquire),
                                                block.max_size_);
    populate_shared(block.data(), static_cast<std::size_t>(in_use) * element_size);
    // The message holds the mapping too: a worker answers before it lets go of the message, so
    // unmapping (0.5 s for 800 MB in use) is not on the caller's wait.
    in.keep_alive(block.segment_);
    return block;
}

} // namespace futura::detail
