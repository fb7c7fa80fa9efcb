// The compiled part of futura::SharedDict: checks and messages shared by every instantiation.
#include <futura/shared_dict.hpp>

#include <stdexcept>
#include <string>

namespace futura::detail {

namespace {

// Room for Boost's segment manager and the map's header, with some left for entries.
constexpr std::size_t minimum_capacity = 1024;

} // namespace

void dict_check_capacity(std::size_t capacity)
{
    if (capacity == 0) {
        throw std::invalid_argument("futura::SharedDict: capacity 0: give the bytes its entries "
                                    "may take, {.capacity = bytes}, at least 1024");
    }
    if (capacity < minimum_capacity) {
        throw std::invalid_argument("futura::SharedDict: capacity " + std::to_string(capacity) +
                                    " bytes is too small: at least 1024");
    }
}

void throw_dict_full(std::size_t capacity)
{
    throw SharedDictFull("futura::SharedDict: no room for another entry in its " +
                         std::to_string(capacity) +
                         " bytes (nothing was changed): make it with a larger {.capacity = bytes}");
}

void dict_check(std::uint64_t capacity, std::uint64_t map_offset, std::size_t area_offset,
                std::size_t body_size)
{
    if (body_size < area_offset || capacity != body_size - area_offset ||
        map_offset < area_offset || map_offset >= body_size) {
        WireReader::fail("a shared dictionary's handle does not match its segment");
    }
}

} // namespace futura::detail
