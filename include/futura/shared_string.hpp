// futura::SharedString: a string of bounded length stored inline, so that it can live in shared
// memory (a key or value of SharedDict, an item of SharedQueue).
#pragma once

#include <algorithm>
#include <compare>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace futura {

/// A string of at most `N` bytes, stored inline: trivially copyable and pointer-free, so that
/// its bytes mean the same in every process. It converts from anything that converts to
/// `std::string_view` (a literal, a `std::string`), so `dict.get("apple")` works, and compares
/// and hashes like its text.
///
/// @par Example
/// @code
/// futura::SharedDict<futura::SharedString<32>, long> counts;
/// counts.update("apple", [](long& n) { ++n; });
/// std::string_view word = counts.snapshot().begin()->first; // "apple"
/// @endcode
///
/// @par Thread safety
/// A plain value: distinct objects safe, shared objects unsafe (as `std::string`).
///
/// @tparam N the bound in bytes, 1 to 65535.
template <std::size_t N>
class SharedString
{
    static_assert(N > 0 && N < 65536, "futura::SharedString<N>: N must be 1 to 65535 bytes");

public:
    /// The empty string.
    constexpr SharedString() noexcept = default;

    /// A copy of `text`.
    /// @throws std::length_error if `text` is longer than `N` bytes.
    template <class Text>
        requires(std::convertible_to<const Text&, std::string_view> &&
                 !std::same_as<Text, SharedString>)
    SharedString(const Text& text) // NOLINT: implicit
    {
        const std::string_view view = text;
        if (view.size() > N) {
            throw std::length_error(
                "futura::SharedString<" + std::to_string(N) + ">: \"" +
                std::string(view.substr(0, std::min<std::size_t>(view.size(), 40))) +
                (view.size() > 40 ? "...\"" : "\"") + " is " + std::to_string(view.size()) +
                " bytes, more than its bound of " + std::to_string(N) +
                ": choose a larger N, or shorten it");
        }
        std::copy(view.begin(), view.end(), chars_);
        size_ = static_cast<std::uint16_t>(view.size());
    }

    /// The most bytes it can hold.
    [[nodiscard]] static constexpr std::size_t max_size() noexcept { return N; }
    [[nodiscard]] constexpr std::size_t size() const noexcept { return size_; }
    [[nodiscard]] constexpr bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] constexpr const char* data() const noexcept { return chars_; }
    [[nodiscard]] constexpr std::string_view view() const noexcept { return {chars_, size_}; }
    [[nodiscard]] std::string str() const { return std::string(view()); }
    constexpr operator std::string_view() const noexcept { return view(); } // NOLINT: implicit

    friend constexpr bool operator==(const SharedString& a, const SharedString& b) noexcept
    {
        return a.view() == b.view();
    }
    friend constexpr std::strong_ordering operator<=>(const SharedString& a,
                                                      const SharedString& b) noexcept
    {
        return a.view() <=> b.view();
    }
    friend std::ostream& operator<<(std::ostream& out, const SharedString& text)
    {
        return out << text.view();
    }

private:
    // Not NUL-terminated: the size says where it ends. The bytes after it stay zero.
    char chars_[N] = {};
    std::uint16_t size_ = 0;
};

} // namespace futura

/// Hashes like its text.
template <std::size_t N>
struct std::hash<futura::SharedString<N>>
{
    std::size_t operator()(const futura::SharedString<N>& text) const noexcept
    {
        return std::hash<std::string_view>()(text.view());
    }
};
