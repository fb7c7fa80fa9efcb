#include <futura/detail/attachments.hpp>
#include <futura/detail/wire.hpp>

#include <cerrno>
#include <fcntl.h>
#include <string>
#include <system_error>
#include <unistd.h>

namespace futura::detail {

void UniqueFd::reset(int fd) noexcept
{
    if (fd_ >= 0) {
        ::close(fd_);
    }
    fd_ = fd;
}

UniqueFd UniqueFd::duplicate(int fd)
{
    const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) {
        throw std::system_error(errno, std::system_category(),
                                "futura: cannot duplicate a file descriptor to send it");
    }
    return UniqueFd(copy);
}

std::uint32_t WireWriter::descriptor(int fd)
{
    if (attachments_ == nullptr) {
        throw ProtocolError("futura: this message cannot carry shared memory or files "
                            "(it is not going to another process)");
    }
    if (attachments_->descriptors.size() >= Attachments::max_descriptors) {
        throw ProtocolError("futura: one task's arguments (or result) hold more than 253 "
                            "shared arrays or files; pass fewer, or group them in one array");
    }
    attachments_->descriptors.push_back(UniqueFd::duplicate(fd));
    return static_cast<std::uint32_t>(attachments_->descriptors.size() - 1);
}

void WireReader::fail(const char* what)
{
    throw ProtocolError(std::string("futura: a message between processes is malformed: ") + what);
}

UniqueFd WireReader::descriptor(std::uint64_t index)
{
    if (attachments_ == nullptr || index >= attachments_->descriptors.size() ||
        !attachments_->descriptors[index]) {
        fail("it names a file descriptor that did not come with it");
    }
    return std::move(attachments_->descriptors[index]);
}

void WireReader::keep_alive(std::shared_ptr<const void> owner)
{
    if (attachments_ == nullptr) {
        fail("it holds a view of shared memory, but nothing can keep that memory alive here");
    }
    attachments_->keep_alive.push_back(std::move(owner));
}

} // namespace futura::detail
