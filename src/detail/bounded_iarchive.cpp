// The bounded Boost binary input archive: collection sizes checked against the bytes left.
#include <futura/detail/bounded_iarchive.hpp>

#include <boost/archive/archive_exception.hpp>

#include <utility>

// The archive's templates, compiled once here for BoundedInputArchive as Boost's own library
// compiles them for binary_iarchive.
#include <boost/archive/impl/archive_serializer_map.ipp>
#include <boost/archive/impl/basic_binary_iarchive.ipp>
#include <boost/archive/impl/basic_binary_iprimitive.ipp>

namespace boost::archive {
template class detail::archive_serializer_map<futura::detail::BoundedInputArchive>;
template class basic_binary_iprimitive<futura::detail::BoundedInputArchive, char,
                                       std::char_traits<char>>;
template class basic_binary_iarchive<futura::detail::BoundedInputArchive>;
template class binary_iarchive_impl<futura::detail::BoundedInputArchive, char,
                                    std::char_traits<char>>;
} // namespace boost::archive

namespace futura::detail {

std::size_t BoundedInputArchive::remaining()
{
    const auto available = this->m_sb.in_avail();
    return available > 0 ? static_cast<std::size_t>(available) : 0;
}

void BoundedInputArchive::too_long()
{
    throw boost::archive::archive_exception(boost::archive::archive_exception::input_stream_error,
                                            "a length field is larger than the rest of the "
                                            "message");
}

void BoundedInputArchive::load(std::string& text)
{
    std::size_t length = 0;
    load(length);
    if (length > remaining()) {
        too_long();
    }
    text.resize(length);
    if (length > 0) {
        load_binary(text.data(), length);
    }
}

void BoundedInputArchive::load(bool& value)
{
    unsigned char byte = 0;
    load_binary(&byte, 1);
    if (byte > 1) {
        throw boost::archive::archive_exception(
            boost::archive::archive_exception::input_stream_error,
            "a boolean field is neither 0 nor 1");
    }
    value = byte == 1;
}

void BoundedInputArchive::load_override(boost::serialization::collection_size_type& count)
{
    Base::load_override(count);
    // Every element takes at least one byte, but for classes whose serialize saves nothing:
    // a collection of those is refused beyond the bytes left, a price worth the bound.
    const std::size_t claimed = std::as_const(count);
    if (claimed > remaining()) {
        too_long();
    }
}

} // namespace futura::detail
