// An intrusive, counted reference to a shared state.
#pragma once

#include <futura/detail/shared_state.hpp>

#include <utility>

namespace futura::detail {

template <class T>
class StateRef
{
public:
    StateRef() noexcept = default;
    /// Adopts one reference the caller already holds.
    explicit StateRef(SharedState<T>* adopted) noexcept : state_(adopted) {}
    StateRef(const StateRef& other) noexcept : state_(other.state_)
    {
        if (state_ != nullptr) {
            state_->add_ref();
        }
    }
    StateRef(StateRef&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
    StateRef& operator=(StateRef other) noexcept
    {
        std::swap(state_, other.state_);
        return *this;
    }
    ~StateRef()
    {
        if (state_ != nullptr) {
            state_->release();
        }
    }

    [[nodiscard]] SharedState<T>* get() const noexcept { return state_; }
    SharedState<T>* operator->() const noexcept { return state_; }
    explicit operator bool() const noexcept { return state_ != nullptr; }
    friend bool operator==(const StateRef&, const StateRef&) = default;

private:
    SharedState<T>* state_ = nullptr;
};

} // namespace futura::detail
