// Which values name memory or files of this node (shared memory, mapped files, futura's shared
// containers): they travel to a process on the same node, never to another host.
#pragma once

#include <futura/mapped_array.hpp>
#include <futura/shared_array.hpp>
#include <futura/shared_dict.hpp>
#include <futura/shared_event.hpp>
#include <futura/shared_lock.hpp>
#include <futura/shared_queue.hpp>
#include <futura/shared_value.hpp>

#include <array>
#include <map>
#include <optional>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace futura::detail::mpi {

template <class T>
struct NodeLocal : std::false_type
{};

template <class T>
inline constexpr bool node_local = NodeLocal<std::remove_cvref_t<T>>::value;

template <class T>
struct NodeLocal<SharedArray<T>> : std::true_type
{};
template <class T>
struct NodeLocal<MappedArray<T>> : std::true_type
{};
template <class T>
struct NodeLocal<SharedValue<T>> : std::true_type
{};
template <class T>
struct NodeLocal<SharedQueue<T>> : std::true_type
{};
template <class K, class V>
struct NodeLocal<SharedDict<K, V>> : std::true_type
{};
template <>
struct NodeLocal<SharedLock> : std::true_type
{};
template <>
struct NodeLocal<SharedEvent> : std::true_type
{};
/// A mutable span travels only as a view of a SharedArray (its writes must reach the caller).
template <class T, std::size_t N>
    requires(!std::is_const_v<T>)
struct NodeLocal<std::span<T, N>> : std::true_type
{};

// Containers of them.
template <class T, class A>
struct NodeLocal<std::vector<T, A>> : NodeLocal<T>
{};
template <class T, std::size_t N>
struct NodeLocal<std::array<T, N>> : NodeLocal<T>
{};
template <class T>
struct NodeLocal<std::optional<T>> : NodeLocal<T>
{};
template <class A, class B>
struct NodeLocal<std::pair<A, B>> : std::bool_constant<node_local<A> || node_local<B>>
{};
template <class... T>
struct NodeLocal<std::tuple<T...>> : std::bool_constant<(node_local<T> || ...)>
{};
template <class K, class V, class C, class A>
struct NodeLocal<std::map<K, V, C, A>> : std::bool_constant<node_local<K> || node_local<V>>
{};

} // namespace futura::detail::mpi
