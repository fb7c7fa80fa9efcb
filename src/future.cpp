// The compiled part of futura::Future: the report of an exception a done callback let escape.
// (The shared state, futexes, parkers and wait contexts have their own sources in src/detail.)
#include <futura/future.hpp>

#include <cstdio>
#include <exception>
#include <typeinfo>
#include <utility>

namespace futura::detail {

void report_callback_exception(std::exception_ptr error) noexcept
{
    // Like Python's executor, which logs "exception calling callback for <Future>" and goes on.
    try {
        std::rethrow_exception(std::move(error));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "futura: a done callback threw %s: %s\n", typeid(e).name(), e.what());
    } catch (...) {
        std::fprintf(stderr, "futura: a done callback threw an exception not derived from "
                             "std::exception\n");
    }
}

} // namespace futura::detail
