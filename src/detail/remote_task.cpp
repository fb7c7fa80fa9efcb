// The compiled part of the hooks that executors running calls in other processes use on tasks:
// terminal cancellation through a task's terminator, and the message for a task without a wire
// form.
#include <futura/detail/remote_task.hpp>
#include <futura/detail/task.hpp>

#include <string>

namespace futura::detail {

bool terminate(SharedStateBase* state)
{
    if (state == nullptr) {
        return false;
    }
    // Only tasks that a process-capable executor accepted have a terminator; a promise's state,
    // or a task of an in-process executor, has none.
    auto* task = dynamic_cast<TaskBase*>(state);
    RemoteTask* remote = task != nullptr ? task->remote() : nullptr;
    if (remote != nullptr && remote->terminator) {
        return remote->terminator->terminate(state);
    }
    return state->cancel();
}

std::string untravelled_message(const char* executor)
{
    return std::string("futura::") + executor +
           ": this call was submitted through futura::Executor& (or Future::then) in a "
           "translation unit that does not include <futura/process_pool_executor.hpp>, so it was "
           "compiled without the code that sends it to a worker process. Include that header "
           "(before the code that submits) in the file that submits the call.";
}

} // namespace futura::detail
