// The compiled part of composing futures.
#include <futura/compose.hpp>
#include <futura/inline_executor.hpp>

namespace futura {

Future<void> make_ready_future()
{
    Promise<void> promise;
    promise.set_result();
    return promise.get_future();
}

namespace detail {

Executor& inline_continuations() noexcept
{
    // Never destroyed: continuations may be dispatched to it from other static destructors, and
    // an InlineExecutor owns no thread that could outlive main.
    static InlineExecutor* const executor = new InlineExecutor();
    return *executor;
}

} // namespace detail

} // namespace futura
