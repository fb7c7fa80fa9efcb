// What identifies the code a call runs, for duration estimates (see call_key_of in task.hpp).
#pragma once

#include <cstdint>

namespace futura::detail {

/// A function's address, or a callable type's `type_info` address: the same for every call of
/// that code in one process.
using CallKey = std::uintptr_t;

} // namespace futura::detail
