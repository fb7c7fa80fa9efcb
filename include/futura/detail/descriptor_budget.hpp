// How map's chunks stay within what one message can carry: at most 253 distinct descriptors
// (shared arrays and values, mapped files, large copies), Linux's SCM_MAX_FD.
#pragma once

#include <futura/detail/attachments.hpp>
#include <futura/detail/wire.hpp>
#include <futura/transferable.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace futura::detail {

/// ProcessPoolOptions::share_threshold's default: contiguous data of this many bytes or more
/// travels in a segment of its own.
inline constexpr std::size_t default_share_threshold = std::size_t{1} << 20;

/// Whether a value of type `T` may attach descriptors to a message: a handle to shared memory
/// or a file, or contiguous data that may travel in a segment of its own. Conservative: a type
/// futura does not see into (Boost.Serialization) may.
template <class T>
inline constexpr bool may_attach_descriptors =
    !(trivially_transferable<T> || std::is_same_v<T, bool> || std::is_same_v<T, std::string>);
template <class... Ts>
inline constexpr bool may_attach_descriptors<std::tuple<Ts...>> = (may_attach_descriptors<Ts> ||
                                                                   ...);
template <class A, class B>
inline constexpr bool may_attach_descriptors<std::pair<A, B>> =
    may_attach_descriptors<A> || may_attach_descriptors<B>;
template <class T>
inline constexpr bool may_attach_descriptors<std::optional<T>> = may_attach_descriptors<T>;
template <class T, std::size_t N>
inline constexpr bool may_attach_descriptors<std::array<T, N>> = may_attach_descriptors<T>;
template <class T, class A>
inline constexpr bool may_attach_descriptors<std::vector<T, A>> =
    trivially_transferable<T> || may_attach_descriptors<T>; // a large one is a segment

/// The most descriptors one value of type `T` brings to a message, for a map chunk's results
/// (which are known only once the worker has them): 0 for a type that brings none, its parts'
/// sum for a tuple, pair or array, and 1 for anything else that may (a handle, a vector that
/// may travel in a segment). A type that holds an unbounded number (a vector of handles, a
/// class with serialize()) counts 1 too: a chunk of those can still exceed a message, which
/// then fails its elements with ProtocolError saying so.
template <class T>
inline constexpr std::size_t max_descriptors_of = may_attach_descriptors<T> ? 1 : 0;
template <class... Ts>
inline constexpr std::size_t max_descriptors_of<std::tuple<Ts...>> = (std::size_t{0} + ... +
                                                                      max_descriptors_of<Ts>);
template <class A, class B>
inline constexpr std::size_t max_descriptors_of<std::pair<A, B>> =
    max_descriptors_of<A> + max_descriptors_of<B>;
template <class T>
inline constexpr std::size_t max_descriptors_of<std::optional<T>> = max_descriptors_of<T>;
template <class T, std::size_t N>
inline constexpr std::size_t max_descriptors_of<std::array<T, N>> = N* max_descriptors_of<T>;

/// How many results of type `R` one answer can carry: a map chunk holds no more inputs.
template <class R>
inline constexpr std::size_t max_results_per_message =
    max_descriptors_of<R> == 0
        ? static_cast<std::size_t>(-1)
        : std::max<std::size_t>(1, Attachments::max_descriptors / max_descriptors_of<R>);

template <class T>
inline constexpr bool is_trivial_vector = false;
template <class T, class A>
inline constexpr bool is_trivial_vector<std::vector<T, A>> =
    trivially_transferable<T> && !std::is_same_v<T, bool>;

template <class T>
inline constexpr bool is_tuple_like = false;
template <class... Ts>
inline constexpr bool is_tuple_like<std::tuple<Ts...>> = true;
template <class A, class B>
inline constexpr bool is_tuple_like<std::pair<A, B>> = true;

/// Counts the distinct descriptors of the values of one message as they are added, to cut a map
/// chunk before it would carry more than one message can.
class DescriptorBudget
{
public:
    /// `map` cuts its inputs into chunks: one message per chunk, not per input.
    static constexpr bool chunks_map = true;

    /// `share_threshold`: the executor's ProcessPoolOptions::share_threshold.
    /// How many results of type `R` a chunk may hold: as many as one answer carries.
    template <class R>
    static constexpr std::size_t max_results = max_results_per_message<R>;

    explicit DescriptorBudget(std::size_t share_threshold) noexcept
    {
        counter_.count_descriptors_only(seen_);
        counter_.share_threshold(share_threshold);
    }

    /// Whether `value` fits beside the values admitted so far; if so it is counted. The first
    /// value always fits (alone it is as legal as with chunksize 1: any error is the call's).
    template <class T>
    [[nodiscard]] bool admit(const T& value, bool first)
    {
        if constexpr (!may_attach_descriptors<T> || !Codec<T>::supported) {
            return true;
        } else {
            const auto before = seen_.descriptors.size();
            try {
                find(value);
            } catch (...) {
                // The real encoding will fail the same way and say so on the element's future.
            }
            counter_.buffer().clear();
            if (first || seen_.descriptors.size() <= Attachments::max_descriptors) {
                return true;
            }
            seen_.descriptors.resize(before);
            seen_.sources.resize(before);
            return false;
        }
    }

private:
    template <class T>
    void find(const T& value)
    {
        if constexpr (!may_attach_descriptors<T>) {
        } else if constexpr (is_trivial_vector<T>) {
            // No need to copy its bytes to learn that it would travel in a segment of its own.
            if (counter_.share_threshold() - 1 < value.size() * sizeof(typename T::value_type)) {
                (void)counter_.fresh_descriptor(-1);
            }
        } else if constexpr (is_tuple_like<T>) {
            std::apply([this](const auto&... part) { (find(part), ...); }, value);
        } else {
            Codec<T>::encode(counter_, value);
        }
    }

    Attachments seen_; // one empty descriptor per distinct one found, with its source
    WireWriter counter_;
};

} // namespace futura::detail
