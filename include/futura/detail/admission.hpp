// detail::Admission: whether an executor still takes tasks, and how many it took (the guard of
// every executor's `schedule`).
#pragma once

#include <futura/errors.hpp>

#include <cstddef>
#include <string>
#include <utility>

namespace futura::detail {

/// Whether an executor still takes tasks: open, shut down (later tasks get `ShutdownError`), or
/// broken (they get `BrokenError` saying why; broken implies shut down). Counts the tasks it
/// accepted (`ExecutorStats::submitted`).
///
/// Not synchronised: the executor keeps it under the mutex that guards its queue, so that a task
/// is either refused or queued before a shutdown looks at the queue.
template <class BrokenError>
class Admission
{
public:
    /// Takes one more task and counts it.
    /// @throws BrokenError (with the reason given to `break_with`) once broken, else
    /// `ShutdownError` once shut down.
    void accept()
    {
        check();
        ++accepted_;
    }

    /// Throws as `accept` would, and counts nothing: for an executor that has more to do, which
    /// may throw, before the task is surely taken (a thread pool starts a thread for it).
    void check() const
    {
        if (!accepting_) [[unlikely]] {
            refuse();
        }
    }

    /// Refuses every later task with `ShutdownError` (or `BrokenError`, once broken).
    void shut_down() noexcept { accepting_ = false; }

    /// The executor cannot go on: refuses every later task with `BrokenError(why)`. The first
    /// reason stays if it broke before. @return whether this call broke it.
    bool break_with(std::string why) noexcept
    {
        accepting_ = false;
        if (broken_) {
            return false;
        }
        broken_ = true;
        why_broken_ = std::move(why);
        return true;
    }

    /// Neither shut down nor broken.
    [[nodiscard]] bool accepting() const noexcept { return accepting_; }

    [[nodiscard]] bool broken() const noexcept { return broken_; }

    /// What `break_with` was given; empty while the executor is not broken.
    [[nodiscard]] const std::string& why_broken() const noexcept { return why_broken_; }

    /// The tasks `accept` took.
    [[nodiscard]] std::size_t accepted() const noexcept { return accepted_; }

private:
    [[noreturn]] void refuse() const
    {
        if (broken_) {
            throw BrokenError(why_broken_);
        }
        throw ShutdownError();
    }

    std::string why_broken_;
    std::size_t accepted_ = 0;
    bool accepting_ = true;
    bool broken_ = false;
};

} // namespace futura::detail
