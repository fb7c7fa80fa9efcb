#include <futura/shared_value.hpp>

#include <cerrno>
#include <pthread.h>
#include <system_error>

namespace futura::detail {

void init_robust_mutex(pthread_mutex_t& mutex)
{
    pthread_mutexattr_t attributes;
    int error = ::pthread_mutexattr_init(&attributes);
    // Process-shared: the mutex lives in memory that other processes map. Robust: the kernel
    // walks a dying thread's list of held robust mutexes and marks them, so a worker killed
    // while holding the lock cannot leave every other process waiting forever.
    if (error == 0) {
        error = ::pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
    }
    if (error == 0) {
        error = ::pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
    }
    // Error-checking: locking it again in the thread that holds it is EDEADLK, not a hang.
    if (error == 0) {
        error = ::pthread_mutexattr_settype(&attributes, PTHREAD_MUTEX_ERRORCHECK);
    }
    if (error == 0) {
        error = ::pthread_mutex_init(&mutex, &attributes);
    }
    ::pthread_mutexattr_destroy(&attributes);
    if (error != 0) {
        throw std::system_error(error, std::system_category(),
                                "futura::SharedValue: cannot make a process-shared lock");
    }
}

bool lock_robust_mutex(pthread_mutex_t& mutex)
{
    const int error = ::pthread_mutex_lock(&mutex);
    if (error == EOWNERDEAD) {
        // We hold it now. Marking it consistent keeps it usable for everyone after us; whether
        // the value is too is the caller's call (Guard::owner_died tells it).
        ::pthread_mutex_consistent(&mutex);
        return true;
    }
    if (error != 0) {
        throw std::system_error(error, std::system_category(),
                                "futura::SharedValue: cannot take the lock");
    }
    return false;
}

} // namespace futura::detail
