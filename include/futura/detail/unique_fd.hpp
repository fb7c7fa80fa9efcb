// detail::UniqueFd: an owned file descriptor, closed when destroyed.
#pragma once

#include <utility>

namespace futura::detail {

/// An owned file descriptor: closed when destroyed.
class UniqueFd
{
public:
    UniqueFd() noexcept = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept
    {
        if (this != &other) {
            reset(std::exchange(other.fd_, -1));
        }
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    [[nodiscard]] int get() const noexcept { return fd_; }
    [[nodiscard]] explicit operator bool() const noexcept { return fd_ >= 0; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept;

    /// A new descriptor for the same open file (close-on-exec).
    /// @throws std::system_error if the process is out of descriptors.
    [[nodiscard]] static UniqueFd duplicate(int fd);

private:
    int fd_ = -1;
};

} // namespace futura::detail
