// Shared helpers of the futura unit tests: the executor factories the typed suite runs over,
// deadlines, gates and countdowns that never block forever, and small task functions.
//
// Rules these helpers exist for (see doc/style.md, Tests):
// - concurrency tests start their threads together (std::latch) and give up at a deadline;
// - nothing ever blocks forever: a blocked task gives up at `hang_limit`, so a failing test
//   reports a failure instead of hanging the suite;
// - Boost.Test is not thread-safe: assertions run in the test's own thread only; other threads
//   record what they saw and the test checks it afterwards.
#pragma once

#include <futura/futura.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <unistd.h>
#include <vector>

namespace futura_test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/// How long to wait for something that should happen. Generous: the suite also runs under
/// ThreadSanitizer on a loaded 2-core machine.
inline constexpr auto should_happen = std::chrono::seconds(10);

/// How long a task blocked on a `Gate` waits at most. Longer than any wait of a test, so that
/// reaching it always means the test failed (and the test still ends, instead of hanging).
inline constexpr auto hang_limit = std::chrono::seconds(60);

/// A short timeout, only for waits that are expected to time out.
inline constexpr auto expected_timeout = std::chrono::milliseconds(50);

/// Polls `condition` until it holds or `within` has passed. @return whether it holds.
template <class Condition>
[[nodiscard]] bool eventually(Condition&& condition,
                              std::chrono::nanoseconds within = should_happen)
{
    const auto until = Clock::now() + within;
    while (!condition()) {
        if (Clock::now() >= until) {
            return condition();
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200)); // polling, not correctness
    }
    return true;
}

/// A gate tasks wait at until the test opens it. A waiter gives up after `hang_limit` (and
/// `gave_up()` then tells the test), so a test that fails before opening never hangs its pool.
class Gate
{
public:
    Gate() = default;
    Gate(const Gate&) = delete;
    Gate& operator=(const Gate&) = delete;
    ~Gate() { open(); }

    void open()
    {
        {
            const std::lock_guard lock(mutex_);
            open_ = true;
        }
        changed_.notify_all();
    }

    /// Blocks until the gate is open. @return false if it gave up at `hang_limit`.
    bool wait()
    {
        std::unique_lock lock(mutex_);
        ++waiters_;
        changed_.notify_all();
        if (!changed_.wait_for(lock, hang_limit, [this] { return open_; })) {
            gave_up_ = true;
            return false;
        }
        return true;
    }

    /// Blocks until `n` threads have reached `wait()` (including ones already through).
    /// @return false if that did not happen within `within`.
    bool wait_for_waiters(std::size_t n, std::chrono::nanoseconds within = should_happen)
    {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, within, [&] { return waiters_ >= n; });
    }

    [[nodiscard]] std::size_t waiters() const
    {
        const std::lock_guard lock(mutex_);
        return waiters_;
    }

    [[nodiscard]] bool gave_up() const
    {
        const std::lock_guard lock(mutex_);
        return gave_up_;
    }

    /// Opens the gate when it goes out of scope. Declare it after the executor whose tasks wait
    /// at the gate, so the gate opens before the executor's destructor waits for those tasks.
    class Opener
    {
    public:
        explicit Opener(Gate& gate) noexcept : gate_(gate) {}
        Opener(const Opener&) = delete;
        Opener& operator=(const Opener&) = delete;
        ~Opener() { gate_.open(); }

    private:
        Gate& gate_;
    };

private:
    mutable std::mutex mutex_; // guards open_, waiters_, gave_up_
    std::condition_variable changed_;
    bool open_ = false;
    std::size_t waiters_ = 0;
    bool gave_up_ = false;
};

/// A fresh temporary directory, removed with its contents when it goes out of scope.
class TempDir
{
public:
    TempDir()
        : path_(std::filesystem::temp_directory_path() /
                ("futura-test-" + std::to_string(::getpid()) + "-" + std::to_string(next_++)))
    {
        std::filesystem::create_directories(path_);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir()
    {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }

    [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
    /// The path of the file `name` in the directory.
    [[nodiscard]] std::string file(std::string_view name) const { return (path_ / name).string(); }
    /// The names of the files in the directory whose names start with `prefix` (hidden ones
    /// left out), sorted.
    [[nodiscard]] std::vector<std::string> files(std::string_view prefix = {}) const
    {
        std::vector<std::string> names;
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator(path_, ec)) {
            auto name = entry.path().filename().string();
            if (!name.starts_with('.') && name.starts_with(prefix)) {
                names.push_back(std::move(name));
            }
        }
        std::sort(names.begin(), names.end());
        return names;
    }

private:
    static inline std::atomic<int> next_{0};
    std::filesystem::path path_;
};

/// The path of the helper program `name` (its file name) given on the test's command line after
/// `--`, or empty if it was not given.
inline std::string helper_program(std::string_view name)
{
    const auto& suite = boost::unit_test::framework::master_test_suite();
    for (int i = 1; i < suite.argc; ++i) {
        const std::filesystem::path candidate(suite.argv[i]);
        if (candidate.filename() == name) {
            return candidate.string();
        }
    }
    return {};
}

/// Creates the file `path` holding this process's pid, whole (written aside, then renamed): a
/// reader never sees a part of it. A task leaves such a mark to say that it ran, and where.
inline void write_pid_file(const std::string& path)
{
    const std::filesystem::path target(path);
    // Hidden, so that `TempDir::files` never lists it.
    const auto aside = target.parent_path() / ("." + target.filename().string() + ".tmp");
    {
        std::ofstream out(aside);
        out << ::getpid() << '\n';
    }
    std::error_code ignored; // the directory may be gone: the test is over
    std::filesystem::rename(aside, target, ignored);
}

/// A `Gate` that tasks in other processes can wait at too: a directory. A task (of any executor)
/// passes it with `wait_at_gate(gate.path())`, a plain function of a string, so it can travel to
/// a process pool's worker. Each waiter leaves a file holding its pid; `open()` creates the file
/// "open". As with `Gate`, a waiter gives up after `hang_limit`, and the gate opens when it goes
/// out of scope (declare it after the executor).
class FileGate
{
public:
    FileGate() = default;
    FileGate(const FileGate&) = delete;
    FileGate& operator=(const FileGate&) = delete;
    ~FileGate() { open(); }

    [[nodiscard]] std::string path() const { return directory_.path().string(); }

    void open() const { write_pid_file(directory_.file("open")); }

    /// How many tasks have reached the gate (including ones already through).
    [[nodiscard]] std::size_t waiters() const { return directory_.files("waiter-").size(); }

    /// The pids of the processes of the tasks that reached the gate.
    [[nodiscard]] std::vector<int> waiter_pids() const
    {
        std::vector<int> pids;
        for (const auto& name : directory_.files("waiter-")) {
            std::ifstream in(directory_.file(name));
            int pid = 0;
            if (in >> pid) {
                pids.push_back(pid);
            }
        }
        return pids;
    }

    /// Blocks until `n` tasks have reached the gate. @return false if that did not happen within
    /// `within`.
    [[nodiscard]] bool wait_for_waiters(std::size_t n,
                                        std::chrono::nanoseconds within = should_happen) const
    {
        return eventually([&] { return waiters() >= n; }, within);
    }

    /// Whether a waiter gave up at `hang_limit`.
    [[nodiscard]] bool gave_up() const { return !directory_.files("gave-up-").empty(); }

    /// Opens the gate when it goes out of scope, like `Gate::Opener`.
    class Opener
    {
    public:
        explicit Opener(const FileGate& gate) noexcept : gate_(gate) {}
        Opener(const Opener&) = delete;
        Opener& operator=(const Opener&) = delete;
        ~Opener() { gate_.open(); }

    private:
        const FileGate& gate_;
    };

private:
    TempDir directory_;
};

/// Waits at the `FileGate` whose directory is `gate` until it opens (or its directory is gone:
/// the test is over), giving up after `hang_limit`. A task, in whatever process runs it.
/// @return false if it gave up.
inline bool wait_at_gate(std::string gate)
{
    static std::atomic<int> next{0};
    const std::filesystem::path directory(std::move(gate));
    const auto me = std::to_string(::getpid()) + "-" +
                    std::to_string(std::hash<std::thread::id>()(std::this_thread::get_id())) + "-" +
                    std::to_string(next++);
    write_pid_file((directory / ("waiter-" + me)).string());
    const auto until = Clock::now() + hang_limit;
    while (std::filesystem::exists(directory) && !std::filesystem::exists(directory / "open")) {
        if (Clock::now() > until) {
            write_pid_file((directory / ("gave-up-" + me)).string());
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1)); // a task waiting, not a test
    }
    return true;
}

/// A countdown like std::latch, but whose waits give up at a deadline.
class Countdown
{
public:
    explicit Countdown(std::size_t count) : count_(count) {}

    void count_down()
    {
        {
            const std::lock_guard lock(mutex_);
            if (count_ > 0) {
                --count_;
            }
        }
        zero_.notify_all();
    }

    /// @return false if the count did not reach zero within `within`.
    bool wait(std::chrono::nanoseconds within = should_happen)
    {
        std::unique_lock lock(mutex_);
        return zero_.wait_for(lock, within, [this] { return count_ == 0; });
    }

    bool arrive_and_wait(std::chrono::nanoseconds within = should_happen)
    {
        count_down();
        return wait(within);
    }

private:
    std::mutex mutex_; // guards count_
    std::condition_variable zero_;
    std::size_t count_;
};

/// Raises `high_water` to at least `value`.
inline void raise_to(std::atomic<int>& high_water, int value)
{
    int seen = high_water.load();
    while (seen < value && !high_water.compare_exchange_weak(seen, value)) {
    }
}

/// Captures what is written to file descriptor 2 (where futura reports callback exceptions)
/// while it lives.
class StderrCapture
{
public:
    StderrCapture() : file_(std::tmpfile())
    {
        if (file_ == nullptr) {
            throw std::runtime_error("StderrCapture: tmpfile failed");
        }
        std::fflush(stderr);
        saved_ = ::dup(2);
        ::dup2(::fileno(file_), 2);
    }
    StderrCapture(const StderrCapture&) = delete;
    StderrCapture& operator=(const StderrCapture&) = delete;
    ~StderrCapture()
    {
        restore();
        std::fclose(file_);
    }

    /// Everything written so far.
    [[nodiscard]] std::string text()
    {
        std::fflush(stderr);
        std::string all;
        std::rewind(file_);
        char buffer[512];
        std::size_t n = 0;
        while ((n = std::fread(buffer, 1, sizeof buffer, file_)) > 0) {
            all.append(buffer, n);
        }
        return all;
    }

private:
    void restore() noexcept
    {
        if (saved_ >= 0) {
            std::fflush(stderr);
            ::dup2(saved_, 2);
            ::close(saved_);
            saved_ = -1;
        }
    }

    std::FILE* file_;
    int saved_ = -1;
};

/// Reads a range of results (`MapResults`) to its end and describes what it saw, one element after
/// another separated by " | ": its value, or `throws: <what>` if reading it threw. Stops after
/// `limit` elements (endless ranges) and after an increment that throws (`++ throws: <what>`).
/// As one string, so that a failed comparison prints both sides.
template <class Results>
std::string read_outcomes(Results& results, std::size_t limit = 100000)
{
    std::ostringstream seen;
    std::size_t count = 0;
    auto it = results.begin();
    while (!(it == results.end()) && count < limit) {
        seen << (count++ == 0 ? "" : " | ");
        try {
            seen << *it;
        } catch (const std::exception& e) {
            seen << "throws: " << e.what();
        }
        try {
            ++it;
        } catch (const std::exception& e) {
            seen << " | ++ throws: " << e.what();
            break;
        }
    }
    return seen.str();
}

/// An input range of 0, 1, 2, ... (up to `size`, or endless) that counts the elements read from
/// it. A container-like range, not a view: passed as an lvalue, `map` refers to it, and its
/// iterators do not point into it.
class CountingInput
{
public:
    class iterator
    {
    public:
        using value_type = int;
        using difference_type = std::ptrdiff_t;

        iterator() = default;
        iterator(int* pulled, std::optional<int> size) : pulled_(pulled), size_(size) {}

        int operator*() const
        {
            ++*pulled_;
            return next_;
        }
        iterator& operator++()
        {
            ++next_;
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept
        {
            return it.size_ && it.next_ >= *it.size_;
        }

    private:
        int* pulled_ = nullptr;
        std::optional<int> size_;
        int next_ = 0;
    };

    explicit CountingInput(std::optional<int> size = std::nullopt) : size_(size) {}

    [[nodiscard]] iterator begin() { return {&pulled_, size_}; }
    [[nodiscard]] std::default_sentinel_t end() const noexcept { return {}; }
    /// How many elements were read (dereferenced) so far.
    [[nodiscard]] int pulled() const noexcept { return pulled_; }

private:
    int pulled_ = 0;
    std::optional<int> size_;
};

/// `values({1, 2})` is "1 | 2": what `read_outcomes` says of a range yielding 1 and 2.
inline std::string values(std::initializer_list<int> list)
{
    std::ostringstream out;
    std::size_t count = 0;
    for (int v : list) {
        out << (count++ == 0 ? "" : " | ") << v;
    }
    return out.str();
}

// ---------------------------------------------------------------------------------------------
// Tasks. Plain functions of serializable arguments, so that the typed executor suite can run
// them on a process pool too.

inline int square(int x) { return x * x; }
inline int mul(int x, int y) { return x * y; }
inline int add(int x, int y) { return x + y; }
inline void do_nothing() {}

/// Throws std::domain_error on division by zero: a standard exception type with a message.
inline int divide(int x, int y)
{
    if (y == 0) {
        throw std::domain_error("division by zero");
    }
    return x / y;
}

/// Throws std::invalid_argument for odd inputs, else returns x.
inline int fail_if_odd(int x)
{
    if (x % 2 != 0) {
        throw std::invalid_argument("odd input " + std::to_string(x));
    }
    return x;
}

/// Throws futura::TimeoutError for 1, as a task may: not to be confused with map's own timeout.
inline int timeout_on_one(int x)
{
    if (x == 1) {
        throw futura::TimeoutError("raised by the task");
    }
    return x;
}

inline int absolute(int x) { return x < 0 ? -x : x; }

inline int sleep_then_return(int milliseconds)
{
    std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
    return milliseconds;
}

// ---------------------------------------------------------------------------------------------
// The typed executor suite runs every test of test/executor.cpp (and the typed tests of wait.cpp
// and as_completed.cpp) once per factory below, through `futura::Executor&` only: that the same
// tests pass on `ProcessPoolExecutor` is the one-line switch the contract promises. Each factory
// says what its executor can do, and tests that need more restrict those parts at compile time
// with `if constexpr`, saying why. Tasks are plain functions with transferable arguments, and
// block at a `FileGate`, so that most tests run on every executor.

/// `ThreadPoolExecutor`.
struct ThreadPoolFactory
{
    static constexpr std::string_view name = "ThreadPoolExecutor";
    /// `submit` returns before the call runs, and calls run in parallel: a task may block.
    static constexpr bool concurrent = true;
    /// Calls run in this process: they may capture references, gates and counters.
    static constexpr bool shares_memory = true;
    /// Honours `max_workers` (defaulting to `available_cpus()`, rejecting `<= 0`).
    static constexpr bool sized = true;

    static std::unique_ptr<futura::Executor> make(int max_workers)
    {
        return std::make_unique<futura::ThreadPoolExecutor>(
            futura::ThreadPoolOptions{.max_workers = max_workers});
    }
    static std::unique_ptr<futura::Executor> make_default()
    {
        return std::make_unique<futura::ThreadPoolExecutor>();
    }
};

/// `InlineExecutor`: every call runs in `submit`, in the caller's thread.
struct InlineFactory
{
    static constexpr std::string_view name = "InlineExecutor";
    static constexpr bool concurrent = false;
    static constexpr bool shares_memory = true;
    static constexpr bool sized = false;

    static std::unique_ptr<futura::Executor> make(int /*max_workers*/)
    {
        return std::make_unique<futura::InlineExecutor>();
    }
    static std::unique_ptr<futura::Executor> make_default()
    {
        return std::make_unique<futura::InlineExecutor>();
    }
};

/// `ProcessPoolExecutor`: calls run in worker processes, which are this test program. A task
/// there is a plain function, a captureless lambda or a serializable function object, with
/// transferable arguments: it cannot capture references, gates or counters of the test.
struct ProcessPoolFactory
{
    static constexpr std::string_view name = "ProcessPoolExecutor";
    static constexpr bool concurrent = true;
    static constexpr bool shares_memory = false;
    static constexpr bool sized = true;

    static std::unique_ptr<futura::Executor> make(int max_workers)
    {
        return std::make_unique<futura::ProcessPoolExecutor>(
            futura::ProcessPoolOptions{.max_workers = max_workers});
    }
    static std::unique_ptr<futura::Executor> make_default()
    {
        return std::make_unique<futura::ProcessPoolExecutor>();
    }
};

/// The executors of the typed suite.
using ExecutorFactories = std::tuple<ThreadPoolFactory, InlineFactory, ProcessPoolFactory>;

/// A future already finished with `value`.
template <class T>
futura::Future<T> ready_future(T value)
{
    futura::Promise<T> promise;
    auto future = promise.get_future();
    promise.set_result(std::move(value));
    return future;
}

/// A future already failed with `error`.
template <class T, class E>
futura::Future<T> failed_future(E error)
{
    futura::Promise<T> promise;
    auto future = promise.get_future();
    promise.set_exception(std::make_exception_ptr(std::move(error)));
    return future;
}

/// A future already cancelled.
template <class T>
futura::Future<T> cancelled_future()
{
    futura::Promise<T> promise;
    auto future = promise.get_future();
    future.cancel();
    return future;
}

} // namespace futura_test
