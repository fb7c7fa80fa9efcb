// The compiled part of futura's exceptions: default messages, remote tracebacks, describe().
#include <futura/errors.hpp>

#include <boost/core/demangle.hpp>

#include <sstream>
#include <typeinfo>
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

RemoteTraceback::RemoteTraceback(std::string type_name, std::string stack_trace)
    : Error("futura: " + type_name + " was thrown in a worker process at:\n" + stack_trace),
      type_name_(std::move(type_name)), stack_trace_(std::move(stack_trace))
{}

namespace {

/// The trace an exception from a worker carries: a RemoteError's own, or the RemoteTraceback
/// nested in a rebuilt standard or futura exception. Null if none.
const RemoteTraceback* nested_traceback(const std::nested_exception& nested,
                                        std::exception_ptr& keep)
{
    keep = nested.nested_ptr();
    if (!keep) {
        return nullptr;
    }
    try {
        std::rethrow_exception(keep);
    } catch (const RemoteTraceback& where) {
        return &where; // lives in `keep`'s exception object
    } catch (...) {
        return nullptr;
    }
}

void indent_into(std::ostringstream& text, const std::string& lines)
{
    std::istringstream in(lines);
    for (std::string line; std::getline(in, line);) {
        text << "    " << line << '\n';
    }
}

void describe_into(std::ostringstream& text, const std::exception_ptr& error, int depth)
{
    if (depth > 0) {
        text << "caused by: ";
    }
    std::exception_ptr next;
    try {
        std::rethrow_exception(error);
    } catch (const RemoteError& e) {
        text << e.type_name() << ": " << e.message() << '\n';
        if (!e.stack_trace().empty()) {
            text << "  thrown in a worker process at:\n";
            indent_into(text, e.stack_trace());
        }
    } catch (const std::exception& e) {
        std::exception_ptr keep;
        const auto* nested = dynamic_cast<const std::nested_exception*>(&e);
        const RemoteTraceback* where =
            nested != nullptr ? nested_traceback(*nested, keep) : nullptr;
        text << (where != nullptr ? where->type_name() : boost::core::demangle(typeid(e).name()))
             << ": " << e.what() << '\n';
        if (where != nullptr) {
            text << "  thrown in a worker process at:\n";
            indent_into(text, where->stack_trace());
        } else if (nested != nullptr) {
            next = nested->nested_ptr(); // the program's own nesting (std::throw_with_nested)
        }
    } catch (...) {
        text << "an exception not derived from std::exception\n";
    }
    if (next && depth < 16) {
        describe_into(text, next, depth + 1);
    }
}

} // namespace

std::optional<std::string> remote_stack_trace(const std::exception_ptr& error)
{
    if (!error) {
        return std::nullopt;
    }
    try {
        std::rethrow_exception(error);
    } catch (const RemoteError& e) {
        if (!e.stack_trace().empty()) {
            return e.stack_trace();
        }
    } catch (const std::nested_exception& nested) {
        std::exception_ptr keep;
        if (const auto* where = nested_traceback(nested, keep)) {
            return where->stack_trace();
        }
    } catch (...) {
    }
    return std::nullopt;
}

std::string describe(const std::exception_ptr& error)
{
    if (!error) {
        return "no exception";
    }
    std::ostringstream text;
    describe_into(text, error, 0);
    return std::move(text).str();
}

} // namespace futura
