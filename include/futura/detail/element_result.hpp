// One element's outcome in a chunk of map inputs: its value or its exception.
#pragma once

#include <exception>
#include <memory>
#include <optional>
#include <string>

namespace futura::detail {

/// In a worker process, the stack where the exception being handled was thrown (set by the
/// worker loop before any task runs); null elsewhere, where an element's exception stays in
/// this process and needs no trace.
inline std::string (*element_trace)() = nullptr;

/// Chunks report each element on its own, so that one failing input fails only its element of
/// the map, as without chunks (Python's chunked map loses the whole chunk instead).
template <class R>
struct ElementResult
{
    std::optional<R> value;
    std::exception_ptr error;
    /// From a worker process: where `error` was thrown, sent along with it.
    std::shared_ptr<const std::string> trace;

    /// Records the exception being handled, and in a worker process its stack.
    void fail()
    {
        error = std::current_exception();
        if (element_trace != nullptr) {
            trace = std::make_shared<const std::string>(element_trace());
        }
    }
};

} // namespace futura::detail
