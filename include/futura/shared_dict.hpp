// futura::SharedDict: a dictionary that processes share without a server (Python's
// Manager().dict()), on Boost.Interprocess containers in a futura shared memory segment.
#pragma once

#include <futura/detail/segment_array.hpp>
#include <futura/detail/shared_block.hpp>
#include <futura/errors.hpp>
#include <futura/shared_string.hpp>
#include <futura/transferable.hpp>

#include <boost/container/map.hpp>
#include <boost/interprocess/allocators/allocator.hpp>
#include <boost/interprocess/creation_tags.hpp>
#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/indexes/null_index.hpp>
#include <boost/interprocess/managed_external_buffer.hpp>
#include <boost/interprocess/mem_algo/rbtree_best_fit.hpp>
#include <boost/interprocess/sync/mutex_family.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

namespace futura {

/// How to make a `SharedDict`.
struct SharedDictOptions
{
    /// The bytes of shared memory its entries live in, allocated (and backed) up front; at
    /// least 1024. An entry takes about `sizeof(K) + sizeof(V) + 48` bytes.
    std::size_t capacity = std::size_t{1} << 20;
};

namespace detail {

/// What SharedDict keys and values may be: bytes that mean the same in every process.
template <class T>
concept shared_dict_element =
    shareable_element<T> && !std::is_const_v<T> && std::is_default_constructible_v<T>;

/// @throws std::invalid_argument unless `capacity` is large enough for a dictionary.
void dict_check_capacity(std::size_t capacity);
/// @throws SharedDictFull for a dictionary of `capacity` bytes.
[[noreturn]] void throw_dict_full(std::size_t capacity);
/// @throws ProtocolError if a received dictionary's body does not fit its segment.
void dict_check(std::uint64_t capacity, std::uint64_t map_offset, std::size_t area_offset,
                std::size_t body_size);

inline constexpr const char* shared_dict_name = "futura::SharedDict";

} // namespace detail

/// A dictionary in shared memory (Python's `Manager().dict()`, without the server): passed to
/// a process task it travels as a handle, and every process reads and writes the same entries,
/// each call taking the dictionary's lock (a robust, process-shared mutex) for nanoseconds
/// rather than a round trip to a manager process.
///
/// - `insert_or_assign`, `get` (a `std::optional` copy), `erase`, `contains`, `size`,
///   `clear`, and `snapshot()`, a `std::map` copy to iterate over.
/// - `update(key, fn)` calls `fn(V&)` on the key's value (value-initialised if absent) under
///   the lock and stores the result: the atomic `d[k] += 1` that Python's proxy is not.
/// - `lock()` returns a guard holding the lock across several calls (a transaction), whose
///   `owner_died()` says whether a process died holding the lock in the middle of one.
///
/// Keys and values are trivially copyable without pointers (numbers, enums, structs of them)
/// or bounded strings, `futura::SharedString<N>`; keys are ordered (`<=>`). The entries live in
/// `capacity` bytes fixed at construction and backed up front: running out is `SharedDictFull`,
/// never SIGBUS.
///
/// Crashes: a process killed while it holds the lock but is not writing (inside `update`'s
/// `fn`, or between the calls of a guard) leaves the dictionary whole, and the next owner's
/// guard says `owner_died()`. A process killed in the middle of a change (inside the allocator,
/// half-way through rebalancing the tree) leaves it *broken*: every later call, in any process,
/// throws `BrokenSharedState` rather than hang or return garbage.
///
/// Copies refer to the same dictionary (a handle). Default-constructed: a new one of 1 MiB.
///
/// @par Example
/// @code
/// void count(futura::SharedDict<futura::SharedString<32>, long> counts, std::string word)
/// {
///     counts.update(word, [](long& n) { ++n; });
/// }
/// futura::SharedDict<futura::SharedString<32>, long> counts{{.capacity = 1 << 20}};
/// pool.submit(count, counts, "apple").result(); // counts.get("apple") == 1
/// @endcode
///
/// @par Thread safety
/// Distinct objects: safe. Shared objects: safe, across threads and processes.
///
/// @tparam K the key: trivially copyable, pointer-free, totally ordered.
/// @tparam V the value: trivially copyable, pointer-free, default-constructible.
template <class K, class V>
class SharedDict
{
    static_assert(detail::shared_dict_element<K> && detail::shared_dict_element<V>,
                  "futura::SharedDict<K, V>: K and V must be trivially copyable and hold no "
                  "pointers, since other processes read their bytes: use numbers, enums, structs "
                  "of them, or futura::SharedString<N> for text (std::string cannot live in "
                  "shared memory)");
    static_assert(std::totally_ordered<K>,
                  "futura::SharedDict<K, V>: K must be ordered (operator<=> or <), as a std::map "
                  "key");

    using SegmentManager = boost::interprocess::segment_manager<
        char, boost::interprocess::rbtree_best_fit<boost::interprocess::null_mutex_family>,
        boost::interprocess::null_index>;
    using Allocator = boost::interprocess::allocator<std::pair<const K, V>, SegmentManager>;
    // The segment manager's own mutex is the null one: the block's robust lock guards all of it.
    using Map = boost::container::map<K, V, std::less<K>, Allocator>;

    // The body of the segment: where the map is, then the allocator's area.
    struct Body
    {
        std::uint64_t capacity = 0;   // bytes of the area
        std::uint64_t map_offset = 0; // of the Map, from the body's start
    };
    static constexpr std::size_t area_offset = 64; // Boost's alignment and a cache line

public:
    using key_type = K;
    using mapped_type = V;

    /// Holds the dictionary's lock while it lives: the calls made through it form one
    /// transaction that no other thread or process interleaves with.
    ///
    /// @par Thread safety
    /// Distinct objects: safe. Shared objects: unsafe (use it in the thread that made it).
    class Guard
    {
    public:
        /// Whether the lock's previous owner died holding it (not while writing, or the
        /// dictionary would be broken): its own transaction may be half done.
        [[nodiscard]] bool owner_died() const noexcept { return lock_.owner_died(); }

        [[nodiscard]] std::optional<V> get(const K& key) const { return find(*map_, key); }
        [[nodiscard]] bool contains(const K& key) const { return map_->find(key) != map_->end(); }
        [[nodiscard]] std::size_t size() const noexcept { return map_->size(); }
        bool insert_or_assign(const K& key, const V& value) const
        {
            return assign(*header_, *map_, key, value, capacity_);
        }
        bool erase(const K& key) const { return remove(*header_, *map_, key); }

        /// Releases the lock before the guard goes; the guard may not be used after.
        void unlock() noexcept { lock_.unlock(); }

    private:
        friend class SharedDict;
        explicit Guard(const SharedDict& dict)
            : block_(dict.block_), lock_(dict.block_.header(), detail::shared_dict_name),
              header_(&dict.block_.header()), map_(&dict.map()), capacity_(dict.capacity())
        {}
        // Declared first, so destroyed last: the segment stays mapped while the lock in it is
        // held, even if every handle of the dictionary went first.
        detail::SharedBlock block_;
        detail::StateLock lock_;
        detail::SharedHeader* header_;
        Map* map_;
        std::size_t capacity_;
    };

    /// A new, empty dictionary of 1 MiB. @throws as SharedDict(options).
    SharedDict() : SharedDict(SharedDictOptions{}) {}

    /// A new, empty dictionary whose entries live in `options.capacity` bytes.
    /// @throws std::invalid_argument if the capacity is 0 or below 1024 bytes; std::bad_alloc
    /// if shared memory runs out.
    explicit SharedDict(SharedDictOptions options)
    {
        detail::dict_check_capacity(options.capacity);
        block_ = detail::SharedBlock::create(area_offset + options.capacity, tag);
        auto* area = block_.body() + area_offset;
        // The external buffer object only places the segment manager in the area; the memory
        // and what is built in it stay when it goes. Every process reaches the map through the
        // offset below, and the map reaches the manager through offset pointers.
        boost::interprocess::basic_managed_external_buffer<
            char, boost::interprocess::rbtree_best_fit<boost::interprocess::null_mutex_family>,
            boost::interprocess::null_index>
            buffer(boost::interprocess::create_only, area, options.capacity);
        auto* manager = buffer.get_segment_manager();
        // Raw memory and placement new: the named-object machinery needs an index, and this
        // manager has none (null_index) to keep it small.
        void* room = manager->allocate(sizeof(Map), std::nothrow);
        if (room == nullptr) {
            detail::throw_dict_full(options.capacity);
        }
        Map* map = ::new (room) Map(std::less<K>(), Allocator(manager));
        auto* body = ::new (block_.body()) Body;
        body->capacity = options.capacity;
        body->map_offset = static_cast<std::uint64_t>(reinterpret_cast<std::byte*>(map) - // NOLINT
                                                      block_.body());
    }

    /// The value of `key`, copied, or std::nullopt. @throws BrokenSharedState if broken.
    [[nodiscard]] std::optional<V> get(const K& key) const
    {
        const detail::StateLock lock(block_.header(), detail::shared_dict_name);
        return find(map(), key);
    }

    /// Whether `key` has a value. @throws BrokenSharedState if broken.
    [[nodiscard]] bool contains(const K& key) const
    {
        const detail::StateLock lock(block_.header(), detail::shared_dict_name);
        return map().find(key) != map().end();
    }

    /// How many entries it holds. @throws BrokenSharedState if broken.
    [[nodiscard]] std::size_t size() const
    {
        const detail::StateLock lock(block_.header(), detail::shared_dict_name);
        return map().size();
    }
    [[nodiscard]] bool empty() const { return size() == 0; }

    /// Sets `key` to `value` (Python's `d[key] = value`). @return whether the key is new.
    /// @throws SharedDictFull if a new key does not fit in the capacity (nothing changes);
    /// BrokenSharedState if broken.
    bool insert_or_assign(const K& key, const V& value) const
    {
        const detail::StateLock lock(block_.header(), detail::shared_dict_name);
        return assign(block_.header(), map(), key, value, capacity());
    }

    /// Removes `key`. @return whether it was there. @throws BrokenSharedState if broken.
    bool erase(const K& key) const
    {
        const detail::StateLock lock(block_.header(), detail::shared_dict_name);
        return remove(block_.header(), map(), key);
    }

    /// Removes every entry. @throws BrokenSharedState if broken.
    void clear() const
    {
        const detail::StateLock lock(block_.header(), detail::shared_dict_name);
        const detail::WritingScope writing(block_.header(), detail::shared_dict_name);
        map().clear();
    }

    /// Calls `fn(value)` on a copy of the value of `key` (value-initialised, `V{}`, if absent)
    /// with the lock held, then stores it: a read-modify-write no other process interleaves
    /// with (`d.update(k, [](long& n) { ++n; })` is Python's `d[k] += 1` made atomic).
    /// If `fn` throws, nothing changes; if the process dies inside `fn`, nothing changes
    /// either, and the next guard says `owner_died()`.
    /// @return the stored value.
    /// @note `fn` must not call this dictionary (its lock is held: that throws
    /// std::system_error, EDEADLK).
    /// @throws SharedDictFull if a new key does not fit; BrokenSharedState if broken.
    template <class F>
        requires(std::invocable<F&, V&>)
    auto update(const K& key, F&& fn) const -> V // trailing: clang-format 14 splits `V ... const`
    {
        const detail::StateLock lock(block_.header(), detail::shared_dict_name);
        auto& entries = map();
        const auto it = entries.find(key);
        V value = it == entries.end() ? V{} : it->second;
        std::invoke(fn, value);
        if (it == entries.end()) {
            assign(block_.header(), entries, key, value, capacity());
        } else {
            const detail::WritingScope writing(block_.header(), detail::shared_dict_name);
            it->second = value;
        }
        return value;
    }

    /// A copy of every entry, in key order, taken under the lock: iterate over it.
    /// @throws BrokenSharedState if broken.
    [[nodiscard]] std::map<K, V> snapshot() const
    {
        const detail::StateLock lock(block_.header(), detail::shared_dict_name);
        return std::map<K, V>(map().begin(), map().end());
    }

    /// Takes the lock for a transaction of several calls (through the guard).
    /// @throws BrokenSharedState if broken; std::system_error (EDEADLK) if this thread holds
    /// it already.
    [[nodiscard]] Guard lock() const { return Guard(*this); }

    /// The bytes the entries may take, as constructed.
    [[nodiscard]] std::size_t capacity() const noexcept
    {
        return static_cast<std::size_t>(body().capacity);
    }

    /// Whether `a` and `b` are the same dictionary.
    friend bool operator==(const SharedDict& a, const SharedDict& b) noexcept
    {
        return a.block_.same_as(b.block_);
    }

private:
    friend struct detail::Codec<SharedDict>;
    static constexpr std::uint64_t tag =
        detail::shared_tag(detail::SharedKind::dict,
                           detail::shared_layout(sizeof(K), alignof(K), sizeof(V), alignof(V)));

    struct Received
    {};
    explicit SharedDict(Received) noexcept {}

    [[nodiscard]] const Body& body() const noexcept
    {
        return *std::launder(reinterpret_cast<const Body*>(block_.body())); // NOLINT: made there
    }
    [[nodiscard]] Map& map() const noexcept
    {
        return *std::launder(reinterpret_cast<Map*>(block_.body() + body().map_offset)); // NOLINT
    }

    static std::optional<V> find(const Map& entries, const K& key)
    {
        const auto it = entries.find(key);
        if (it == entries.end()) {
            return std::nullopt;
        }
        return it->second;
    }

    static bool assign(detail::SharedHeader& header, Map& entries, const K& key, const V& value,
                       std::size_t capacity)
    {
        const auto it = entries.lower_bound(key);
        const detail::WritingScope writing(header, detail::shared_dict_name);
        if (it != entries.end() && !(key < it->first)) {
            it->second = value;
            return false;
        }
        try {
            // The tree allocates the node before it links it: out of room, nothing changed.
            entries.emplace_hint(it, key, value);
        } catch (const boost::interprocess::bad_alloc&) {
            detail::throw_dict_full(capacity);
        }
        return true;
    }

    static bool remove(detail::SharedHeader& header, Map& entries, const K& key)
    {
        const auto it = entries.find(key);
        if (it == entries.end()) {
            return false;
        }
        const detail::WritingScope writing(header, detail::shared_dict_name);
        entries.erase(it);
        return true;
    }

    void adopt(detail::SharedBlock block)
    {
        block_ = std::move(block);
        detail::dict_check(body().capacity, body().map_offset, area_offset, block_.body_size());
    }

    detail::SharedBlock block_;
};

namespace detail {

/// A SharedDict travels as a handle to its segment.
template <class K, class V>
struct Codec<SharedDict<K, V>>
{
    static constexpr bool supported = true;
    static void encode(WireWriter& out, const SharedDict<K, V>& dict) { dict.block_.encode(out); }
    static SharedDict<K, V> decode(WireReader& in)
    {
        SharedDict<K, V> dict(typename SharedDict<K, V>::Received{});
        dict.adopt(SharedBlock::decode(in, SharedDict<K, V>::tag));
        return dict;
    }
    template <class Archive>
    static void serialize(Archive& archive, SharedDict<K, V>& dict)
    {
        if constexpr (Archive::is_saving::value) {
            dict.block_.serialize(archive, SharedDict<K, V>::tag);
        } else {
            SharedBlock block;
            block.serialize(archive, SharedDict<K, V>::tag);
            dict.adopt(std::move(block));
        }
    }
};

} // namespace detail

} // namespace futura

namespace boost::serialization {

/// A SharedDict inside a user type sent to or from a worker travels as a handle.
template <class Archive, class K, class V>
void serialize(Archive& archive, futura::SharedDict<K, V>& dict, unsigned /*version*/)
{
    futura::detail::Codec<futura::SharedDict<K, V>>::serialize(archive, dict);
}

} // namespace boost::serialization
