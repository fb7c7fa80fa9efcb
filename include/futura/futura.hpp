// futura: Python's concurrent.futures for C++20. Includes every public header.
#pragma once

#include <futura/as_completed.hpp>
#include <futura/asio.hpp>
#include <futura/async_as_completed.hpp>
#include <futura/compose.hpp>
#include <futura/errors.hpp>
#include <futura/executor.hpp>
#include <futura/future.hpp>
#include <futura/inline_executor.hpp>
#include <futura/map.hpp>
#include <futura/mapped_array.hpp>
#include <futura/process_pool_executor.hpp>
#include <futura/progress.hpp>
#include <futura/register_exception.hpp>
#include <futura/shared_array.hpp>
#include <futura/shared_dict.hpp>
#include <futura/shared_event.hpp>
#include <futura/shared_lock.hpp>
#include <futura/shared_queue.hpp>
#include <futura/shared_string.hpp>
#include <futura/shared_value.hpp>
#include <futura/shared_vector.hpp>
#include <futura/thread_pool_asio.hpp>
#include <futura/thread_pool_executor.hpp>
#include <futura/transferable.hpp>
#include <futura/wait.hpp>
