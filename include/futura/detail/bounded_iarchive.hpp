// A Boost binary input archive for bytes from another process: a length field can claim no
// more elements than there are bytes left, so hostile bytes cannot make it allocate gigabytes
// before it finds out that they are not there.
#pragma once

#include <boost/archive/basic_archive.hpp>
#include <boost/archive/binary_iarchive_impl.hpp>
#include <boost/archive/detail/register_archive.hpp>
#include <boost/serialization/collection_size_type.hpp>

#include <streambuf>
#include <string>

namespace futura::detail {

/// `boost::archive::binary_iarchive` (without header) with bounds: the element count of a
/// collection and the length of a string must fit in the bytes that remain, and a bool must be
/// 0 or 1.
/// @throws boost::archive::archive_exception (input_stream_error) when they do not.
class BoundedInputArchive
    : public boost::archive::binary_iarchive_impl<BoundedInputArchive, char, std::char_traits<char>>
{
    using Base =
        boost::archive::binary_iarchive_impl<BoundedInputArchive, char, std::char_traits<char>>;

public:
    explicit BoundedInputArchive(std::streambuf& bytes) : Base(bytes, boost::archive::no_header)
    {
        init(boost::archive::no_header);
    }

    // Boost's archive machinery calls these on the most derived archive.
    friend class boost::archive::detail::interface_iarchive<BoundedInputArchive>;
    friend class boost::archive::basic_binary_iarchive<BoundedInputArchive>;
    friend class boost::archive::basic_binary_iprimitive<BoundedInputArchive, char,
                                                         std::char_traits<char>>;
    friend class boost::archive::load_access;

    using Base::load;
    void load(std::string& text);
    /// Boost reads the byte straight into a bool: any byte but 0 or 1 would be undefined
    /// behaviour, so it is checked first.
    void load(bool& value);

protected:
    template <class T>
    void load_override(T& value)
    {
        Base::load_override(value);
    }
    void load_override(boost::serialization::collection_size_type& count);

private:
    /// Bytes not read yet.
    [[nodiscard]] std::size_t remaining();
    [[noreturn]] static void too_long();
};

} // namespace futura::detail

BOOST_SERIALIZATION_REGISTER_ARCHIVE(futura::detail::BoundedInputArchive)
BOOST_SERIALIZATION_USE_ARRAY_OPTIMIZATION(futura::detail::BoundedInputArchive)
