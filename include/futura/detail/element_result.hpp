// One element's outcome in a chunk of map inputs: its value or its exception.
#pragma once

#include <exception>
#include <optional>

namespace futura::detail {

/// Chunks report each element on its own, so that one failing input fails only its element of
/// the map, as without chunks (Python's chunked map loses the whole chunk instead).
template <class R>
struct ElementResult
{
    std::optional<R> value;
    std::exception_ptr error;
};

} // namespace futura::detail
