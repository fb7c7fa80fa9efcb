// The compiled part of detail::UniqueFd: closing and duplicating a descriptor.
#include <futura/detail/unique_fd.hpp>

#include <cerrno>
#include <fcntl.h>
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

} // namespace futura::detail
