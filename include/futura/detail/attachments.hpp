// What travels beside a message's bytes: file descriptors (passed with SCM_RIGHTS, so another
// process gets its own reference to the same memory or file) and objects a decoded value
// borrows from for as long as the message is in use.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

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

/// The attachments of one message.
struct Attachments
{
    /// Linux passes at most 253 descriptors in one sendmsg (SCM_MAX_FD).
    static constexpr std::size_t max_descriptors = 253;

    /// In the order the message's encoders attached them.
    std::vector<UniqueFd> descriptors;
    /// The sender's descriptor each was copied from (-1: made for this message alone), so that
    /// a file already attached is not attached again. Empty on the receiving side.
    std::vector<int> sources;
    /// Owners of memory that decoded values (a std::span into a shared segment) point into.
    std::vector<std::shared_ptr<const void>> keep_alive;
};

} // namespace futura::detail
