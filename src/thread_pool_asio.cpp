// The Asio part of ThreadPoolExecutor: the pool as an Asio executor (get_executor), its
// execution context, and the report of an exception a posted function let escape.
#include <futura/thread_pool_asio.hpp>
#include <futura/thread_pool_executor.hpp>

#include <boost/asio/execution_context.hpp>

#include <cstdio>
#include <exception>
#include <typeinfo>
#include <utility>

namespace futura {

ThreadPoolExecutor::AsioExecutor ThreadPoolExecutor::get_executor() noexcept
{
    return AsioExecutor(*this);
}

boost::asio::execution_context& ThreadPoolExecutor::asio_context() noexcept
{
    void* services =
        asio_services([] { return static_cast<void*>(new boost::asio::execution_context); },
                      [](void* context) noexcept {
                          delete static_cast<boost::asio::execution_context*>(context);
                      });
    return *static_cast<boost::asio::execution_context*>(services);
}

namespace detail {

void report_posted_exception(std::exception_ptr error) noexcept
{
    try {
        std::rethrow_exception(std::move(error));
    } catch (const std::exception& e) {
        std::fprintf(stderr,
                     "futura: a function run through ThreadPoolExecutor::get_executor() threw "
                     "%s: %s\n",
                     typeid(e).name(), e.what());
    } catch (...) {
        std::fprintf(stderr, "futura: a function run through ThreadPoolExecutor::get_executor() "
                             "threw an exception not derived from std::exception\n");
    }
}

} // namespace detail

} // namespace futura
