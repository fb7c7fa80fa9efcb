#include <futura/errors.hpp>

#include <utility>

namespace futura {

CancelledError::CancelledError() : Error("futura: the future was cancelled before its task ran") {}

TimeoutError::TimeoutError() : Error("futura: the timeout elapsed before the future was done") {}

ShutdownError::ShutdownError()
    : Error("futura: cannot schedule new futures after shutdown (submit before calling "
            "shutdown(), or use another executor)")
{}

RemoteError::RemoteError(std::string type_name, std::string message, std::string stack_trace)
    : Error("futura: a task in a worker process threw " + type_name + ": " + message),
      type_name_(std::move(type_name)), message_(std::move(message)),
      stack_trace_(std::move(stack_trace))
{}

} // namespace futura
