// Tests of the server-less shared objects: SharedDict, SharedQueue, SharedLock, SharedEvent and
// SharedString. First in one process (threads, and handles through the codecs), then across a
// real ProcessPoolExecutor, then crashes: a worker SIGKILLed inside `update`, inside
// `insert_or_assign` of a new key, while blocked in a queue's `get`, holding a SharedLock; and
// a parent SIGKILLed while it and a worker hold shared objects, which must leave nothing behind.
//
// The helper program is named on the command line, after `--`:
//   test_shared_containers -- path/to/holding_shared_state
#include <futura/process_pool_executor.hpp>
#include <futura/shared_array.hpp>
#include <futura/shared_dict.hpp>
#include <futura/shared_event.hpp>
#include <futura/shared_lock.hpp>
#include <futura/shared_queue.hpp>
#include <futura/shared_string.hpp>
#include <futura/shared_value.hpp>

#include <boost/test/unit_test.hpp>

#include <csignal>
#include <cstdint>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <latch>
#include <map>
#include <mutex>
#include <poll.h>
#include <set>
#include <spawn.h>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <vector>

#include "support.hpp"

BOOST_TEST_DONT_PRINT_LOG_VALUE(std::optional<int>)
BOOST_TEST_DONT_PRINT_LOG_VALUE(std::optional<long>)
BOOST_TEST_DONT_PRINT_LOG_VALUE(std::optional<double>)

namespace fs = std::filesystem;
using namespace futura_test;
using futura::SharedDict;
using futura::SharedEvent;
using futura::SharedLock;
using futura::SharedQueue;
using futura::SharedString;
using futura::SharedValue;

namespace {

using Word = SharedString<16>;
using Counts = SharedDict<Word, long>;

static_assert(std::is_base_of_v<futura::Error, futura::BrokenSharedState>);
static_assert(std::is_base_of_v<futura::Error, futura::SharedDictFull>);
static_assert(std::is_base_of_v<futura::TimeoutError, futura::QueueFull>);
static_assert(std::is_base_of_v<futura::TimeoutError, futura::QueueEmpty>);
static_assert(std::is_base_of_v<futura::Error, futura::QueueClosed>);
static_assert(std::is_trivially_copyable_v<Word>);
static_assert(futura::transferable<Counts>);
static_assert(futura::transferable<SharedQueue<int>>);
static_assert(futura::transferable<SharedLock>);
static_assert(futura::transferable<SharedEvent>);

/// `value` encoded into a message and decoded from it in this process, as a worker would.
template <class T>
T round_trip(const T& value)
{
    futura::detail::Attachments attachments;
    futura::detail::WireWriter writer;
    writer.attach(attachments);
    futura::detail::Codec<T>::encode(writer, value);
    futura::detail::WireReader reader(writer.buffer());
    reader.attach(attachments);
    return futura::detail::Codec<T>::decode(reader);
}

std::set<std::string> entries_of(const fs::path& directory)
{
    std::set<std::string> names;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(directory, ec)) {
        names.insert(entry.path().filename().string());
    }
    return names;
}

/// Whether Boost.Interprocess made its folder of named objects in the temp folder (it must not:
/// futura's objects have no names). The rest of /tmp is other programs' business.
bool boost_interprocess_files()
{
    return fs::exists(fs::temp_directory_path() / "boost_interprocess");
}

/// "Shmem:" of /proc/meminfo, in kB.
long shmem_kb()
{
    std::ifstream meminfo("/proc/meminfo");
    std::string key;
    long value = 0;
    std::string unit;
    while (meminfo >> key >> value >> unit) {
        if (key == "Shmem:") {
            return value;
        }
    }
    return -1;
}

bool process_gone(int pid)
{
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    std::getline(stat, text);
    const auto state_at = text.rfind(')');
    return !stat || state_at == std::string::npos || state_at + 2 >= text.size() ||
           text[state_at + 2] == 'Z' || text[state_at + 2] == 'X';
}

/// Whether thread `tid` (of any process) is asleep in the futex system call.
bool asleep_in_futex(int tid)
{
    std::ifstream syscall("/proc/" + std::to_string(tid) + "/syscall");
    long number = -1;
    syscall >> number;
    std::ifstream stat("/proc/" + std::to_string(tid) + "/stat");
    std::string text;
    std::getline(stat, text);
    const auto state_at = text.rfind(')');
    return number == 202 && state_at != std::string::npos && state_at + 2 < text.size() &&
           text[state_at + 2] == 'S'; // 202: futex on x86-64
}

// ---- tasks that run in worker processes ------------------------------------------------------

void count_hot_key(Counts counts, int times)
{
    for (int i = 0; i < times; ++i) {
        counts.update("hot", [](long& n) { ++n; });
    }
}

void produce(SharedQueue<int> queue, int first, int n)
{
    for (int i = first; i < first + n; ++i) {
        queue.put(i);
    }
}

long consume_until_closed(SharedQueue<int> queue)
{
    long sum = 0;
    while (auto item = queue.next()) {
        sum += *item;
    }
    return sum;
}

int get_one(SharedQueue<int> queue) { return queue.get(std::chrono::seconds(30)); }

void add_under_shared_lock(SharedLock lock, futura::SharedArray<long> pair, int times)
{
    for (int i = 0; i < times; ++i) {
        const std::lock_guard held(lock);
        pair[0] = pair[0] + 1; // two plain writes: only the lock keeps them together
        pair[1] = pair[0];
    }
}

bool wait_for_event(SharedEvent event) { return event.wait(std::chrono::seconds(30)); }

void die_inside_update(Counts counts)
{
    counts.update("apple", [](long& n) {
        n = -1; // on the task's copy: the dictionary never sees it
        ::raise(SIGKILL);
    });
}

void die_inside_insert(Counts counts)
{
    // Killed once the insertion of the new key has started writing (its lock held).
    futura::detail::while_writing_hook = [](const char*) { ::raise(SIGKILL); };
    counts.insert_or_assign("new", 1);
}

void die_inside_put(SharedQueue<int> queue)
{
    futura::detail::while_writing_hook = [](const char*) { ::raise(SIGKILL); };
    queue.put(7);
}

void block_in_get(SharedQueue<int> queue, SharedValue<int> tid)
{
    tid.store(static_cast<int>(::gettid()));
    (void)queue.get();
}

void die_holding_lock(SharedLock lock)
{
    lock.lock();
    ::raise(SIGKILL);
}

long read_count(Counts counts, std::string key) { return counts.get(key).value_or(-2); }

} // namespace

// ---- SharedString ----------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(shared_string)

BOOST_AUTO_TEST_CASE(converts_compares_and_hashes_like_its_text)
{
    const Word apple = "apple";
    const Word pear = std::string("pear");
    BOOST_TEST(apple.view() == "apple");
    BOOST_TEST(apple.size() == 5U);
    BOOST_TEST(Word().empty());
    BOOST_TEST((apple < pear));
    BOOST_TEST((apple == Word("apple")));
    BOOST_TEST(std::hash<Word>()(apple) == std::hash<std::string_view>()("apple"));
    BOOST_TEST(Word(std::string(16, 'x')).size() == 16U); // exactly the bound
    std::ostringstream out;
    out << apple;
    BOOST_TEST(out.str() == "apple");
}

BOOST_AUTO_TEST_CASE(a_string_over_its_bound_is_length_error)
{
    try {
        const Word word = "seventeen bytes!!";
        (void)word;
        BOOST_FAIL("no exception");
    } catch (const std::length_error& e) {
        const std::string what = e.what();
        BOOST_TEST(what.find("17 bytes") != std::string::npos, what);
        BOOST_TEST(what.find("bound of 16") != std::string::npos, what);
    }
    const Counts counts{{.capacity = 4096}};
    BOOST_CHECK_THROW(counts.insert_or_assign(std::string(100, 'k'), 1), std::length_error);
    BOOST_TEST(counts.size() == 0U);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- SharedDict, in one process --------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(shared_dict)

BOOST_AUTO_TEST_CASE(inserts_gets_erases_and_counts)
{
    const Counts counts;
    BOOST_TEST(counts.empty());
    BOOST_TEST(counts.insert_or_assign("apple", 3));
    BOOST_TEST(!counts.insert_or_assign("apple", 4)); // not new: assigned
    BOOST_TEST(counts.insert_or_assign("pear", 1));
    BOOST_TEST(counts.get("apple") == std::optional<long>(4));
    BOOST_TEST(!counts.get("plum").has_value());
    BOOST_TEST(counts.contains("pear"));
    BOOST_TEST(counts.size() == 2U);
    BOOST_TEST(counts.erase("pear"));
    BOOST_TEST(!counts.erase("pear"));
    BOOST_TEST(!counts.contains("pear"));
    counts.clear();
    BOOST_TEST(counts.empty());
    BOOST_TEST(counts.capacity() == std::size_t{1} << 20);
}

BOOST_AUTO_TEST_CASE(update_is_a_read_modify_write_from_a_value_initialised_value)
{
    const SharedDict<int, double> values;
    BOOST_TEST(values.update(7, [](double& x) { x += 1.5; }) == 1.5); // absent: from 0
    BOOST_TEST(values.update(7, [](double& x) { x *= 2; }) == 3.0);
    BOOST_TEST(values.get(7) == std::optional<double>(3.0));
    // A throwing fn changes nothing.
    BOOST_CHECK_THROW(values.update(7,
                                    [](double& x) {
                                        x = 100;
                                        throw std::runtime_error("no");
                                    }),
                      std::runtime_error);
    BOOST_TEST(values.get(7) == std::optional<double>(3.0));
    BOOST_CHECK_THROW(values.update(8, [](double&) { throw std::runtime_error("no"); }),
                      std::runtime_error);
    BOOST_TEST(!values.contains(8));
}

BOOST_AUTO_TEST_CASE(update_from_two_threads_is_exact)
{
    const Counts counts;
    std::latch start(2);
    const auto work = [&] {
        start.arrive_and_wait();
        for (int i = 0; i < 20'000; ++i) {
            counts.update("hot", [](long& n) { ++n; });
        }
    };
    std::thread a(work);
    std::thread b(work);
    a.join();
    b.join();
    BOOST_TEST(counts.get("hot") == std::optional<long>(40'000));
}

BOOST_AUTO_TEST_CASE(snapshot_is_an_ordered_copy_to_iterate)
{
    const Counts counts;
    for (const char* word : {"pear", "apple", "fig"}) {
        counts.insert_or_assign(word, static_cast<long>(std::string_view(word).size()));
    }
    std::vector<std::string> keys;
    for (const auto& [key, value] : counts.snapshot()) {
        keys.push_back(key.str());
        BOOST_TEST(value == static_cast<long>(key.size()));
    }
    BOOST_TEST(keys == std::vector<std::string>({"apple", "fig", "pear"}));
    auto copy = counts.snapshot();
    counts.insert_or_assign("kiwi", 4);
    BOOST_TEST(copy.size() == 3U); // a copy: later changes are not in it
}

BOOST_AUTO_TEST_CASE(a_guard_makes_one_transaction_of_several_calls)
{
    const Counts counts;
    counts.insert_or_assign("from", 10);
    {
        auto guard = counts.lock();
        BOOST_TEST(!guard.owner_died());
        const long moved = guard.get("from").value_or(0);
        guard.erase("from");
        guard.insert_or_assign("to", moved);
        BOOST_TEST(guard.size() == 1U);
        BOOST_TEST(guard.contains("to"));
    }
    BOOST_TEST(counts.get("to") == std::optional<long>(10));

    // The guard keeps the memory its lock lives in, whatever happens to the handle.
    auto orphan = Counts{{.capacity = 4096}}.lock();
    orphan.insert_or_assign("still", 1);
    BOOST_TEST(orphan.get("still") == std::optional<long>(1));
}

BOOST_AUTO_TEST_CASE(calling_itself_under_its_own_lock_throws_instead_of_hanging)
{
    const Counts counts;
    try {
        counts.update("a", [&](long&) { (void)counts.get("b"); });
        BOOST_FAIL("no exception");
    } catch (const std::system_error& e) {
        BOOST_TEST(e.code().value() == EDEADLK);
    }
    BOOST_TEST(!counts.contains("a"));
    const auto guard = counts.lock();
    BOOST_CHECK_THROW((void)counts.size(), std::system_error);
}

BOOST_AUTO_TEST_CASE(capacity_0_or_too_small_is_invalid_argument)
{
    try {
        const Counts counts{{.capacity = 0}};
        BOOST_FAIL("no exception");
    } catch (const std::invalid_argument& e) {
        BOOST_TEST(std::string(e.what()).find("capacity 0") != std::string::npos, e.what());
    }
    BOOST_CHECK_THROW((Counts{{.capacity = 100}}), std::invalid_argument);
    BOOST_CHECK_THROW((Counts{{.capacity = std::size_t{1} << 62}}), std::bad_alloc);
}

BOOST_AUTO_TEST_CASE(a_full_dict_throws_shared_dict_full_and_stays_usable)
{
    const SharedDict<int, long> numbers{{.capacity = 4096}};
    int stored = 0;
    try {
        for (; stored < 100'000; ++stored) {
            numbers.insert_or_assign(stored, stored);
        }
        BOOST_FAIL("never full");
    } catch (const futura::SharedDictFull& e) {
        BOOST_TEST(std::string(e.what()).find("4096 bytes") != std::string::npos, e.what());
    }
    BOOST_TEST(stored > 10);
    BOOST_TEST(numbers.size() == static_cast<std::size_t>(stored)); // nothing half-inserted
    BOOST_TEST(!numbers.insert_or_assign(0, -5));                   // existing keys still change
    BOOST_TEST(numbers.get(0) == std::optional<long>(-5));
    BOOST_TEST(numbers.erase(1));
    BOOST_TEST(numbers.insert_or_assign(stored, 1)); // room again
    BOOST_CHECK_THROW(numbers.update(stored + 1, [](long& n) { n = 1; }), futura::SharedDictFull);
}

BOOST_AUTO_TEST_CASE(travels_as_a_handle_to_the_same_entries)
{
    const Counts counts;
    counts.insert_or_assign("apple", 1);
    const auto received = round_trip(counts);
    BOOST_TEST((received == counts));
    received.update("apple", [](long& n) { n += 10; });
    BOOST_TEST(counts.get("apple") == std::optional<long>(11));
    // A handle of another kind or another layout is refused, not misread.
    futura::detail::Attachments attachments;
    futura::detail::WireWriter writer;
    writer.attach(attachments);
    futura::detail::Codec<Counts>::encode(writer, counts);
    futura::detail::WireReader reader(writer.buffer());
    reader.attach(attachments);
    using Other = SharedDict<int, long>;
    BOOST_CHECK_THROW((void)futura::detail::Codec<Other>::decode(reader),
                      futura::detail::ProtocolError);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- SharedQueue, in one process -------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(shared_queue)

BOOST_AUTO_TEST_CASE(puts_and_gets_in_order_and_try_calls_return_at_once)
{
    const SharedQueue<int> queue{{.capacity = 3}};
    BOOST_TEST(queue.capacity() == 3U);
    BOOST_TEST(!queue.try_get().has_value());
    queue.put(1);
    BOOST_TEST(queue.try_put(2));
    queue.put(3, std::chrono::seconds(1));
    BOOST_TEST(!queue.try_put(4)); // full
    BOOST_TEST(queue.size() == 3U);
    BOOST_TEST(queue.get() == 1);
    BOOST_TEST(queue.try_get() == std::optional<int>(2));
    BOOST_TEST(queue.get(std::chrono::seconds(1)) == 3);
    for (int round = 0; round < 10; ++round) { // wraps around the ring
        queue.put(round);
        queue.put(round + 100);
        BOOST_TEST(queue.get() == round);
        BOOST_TEST(queue.get() == round + 100);
    }
    BOOST_TEST(queue.empty());
}

BOOST_AUTO_TEST_CASE(timeouts_are_queue_full_and_queue_empty)
{
    const SharedQueue<int> queue{{.capacity = 1}};
    BOOST_CHECK_THROW((void)queue.get(expected_timeout), futura::QueueEmpty);
    queue.put(1);
    const auto start = Clock::now();
    BOOST_CHECK_THROW(queue.put(2, expected_timeout), futura::QueueFull);
    BOOST_TEST((Clock::now() - start >= expected_timeout));
    BOOST_CHECK_THROW(queue.put(2, expected_timeout), futura::TimeoutError);
}

BOOST_AUTO_TEST_CASE(capacity_0_is_invalid_argument)
{
    try {
        const SharedQueue<int> queue{{.capacity = 0}};
        BOOST_FAIL("no exception");
    } catch (const std::invalid_argument& e) {
        BOOST_TEST(std::string(e.what()).find("capacity 0") != std::string::npos, e.what());
    }
}

BOOST_AUTO_TEST_CASE(a_blocked_put_and_get_wake_when_another_thread_makes_room_or_an_item)
{
    const SharedQueue<long> queue{{.capacity = 4}};
    const long n = 50'000;
    long sum = 0;
    std::latch start(2);
    std::thread consumer([&] {
        start.arrive_and_wait();
        for (long i = 0; i < n; ++i) {
            sum += queue.get(should_happen);
        }
    });
    std::thread producer([&] {
        start.arrive_and_wait();
        for (long i = 0; i < n; ++i) {
            queue.put(i, should_happen);
        }
    });
    producer.join();
    consumer.join();
    BOOST_TEST(sum == n * (n - 1) / 2);
}

BOOST_AUTO_TEST_CASE(close_ends_consumers_cleanly_after_the_items_left)
{
    const SharedQueue<int> queue{{.capacity = 8}};
    std::vector<int> seen;
    std::thread consumer([&] {
        while (auto item = queue.next()) {
            seen.push_back(*item);
        }
    });
    queue.put(1);
    queue.put(2);
    queue.close();
    consumer.join(); // would hang if close did not wake it
    BOOST_TEST(seen == std::vector<int>({1, 2}));
    BOOST_TEST(queue.closed());
    BOOST_CHECK_THROW(queue.put(3), futura::QueueClosed);
    BOOST_CHECK_THROW((void)queue.try_put(3), futura::QueueClosed);
    BOOST_CHECK_THROW((void)queue.get(), futura::QueueClosed);
    BOOST_CHECK_THROW((void)queue.try_get(), futura::QueueClosed);
}

BOOST_AUTO_TEST_CASE(a_handle_received_after_its_owner_closed_it_says_closed)
{
    const SharedQueue<int> queue;
    queue.put(5);
    queue.close();
    const auto received = round_trip(queue);
    BOOST_TEST(received.closed());
    BOOST_TEST(received.get() == 5); // the item left is still there
    try {
        received.put(6);
        BOOST_FAIL("no exception");
    } catch (const futura::QueueClosed& e) {
        BOOST_TEST(std::string(e.what()).find("closed") != std::string::npos, e.what());
    }
    BOOST_TEST(!received.next().has_value());
}

BOOST_AUTO_TEST_CASE(holds_bounded_strings)
{
    const SharedQueue<Word> words;
    words.put("hello");
    BOOST_TEST(words.get().view() == "hello");
    BOOST_CHECK_THROW(words.put(std::string(17, 'x')), std::length_error);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- SharedLock and SharedEvent, in one process ----------------------------------------------

BOOST_AUTO_TEST_SUITE(shared_lock_and_event)

BOOST_AUTO_TEST_CASE(the_lock_works_with_the_standard_guards_and_excludes_other_threads)
{
    SharedLock lock;
    long counter = 0;
    std::latch start(2);
    const auto work = [&] {
        start.arrive_and_wait();
        for (int i = 0; i < 20'000; ++i) {
            const std::lock_guard held(lock);
            ++counter;
        }
    };
    std::thread a(work);
    std::thread b(work);
    a.join();
    b.join();
    BOOST_TEST(counter == 40'000);

    std::unique_lock held(lock);
    BOOST_TEST(!lock.owner_died());
    bool other_got_it = true;
    std::thread([&] { other_got_it = lock.try_lock(); }).join();
    BOOST_TEST(!other_got_it);
    bool timed_out = false;
    std::thread([&] { timed_out = !lock.try_lock_for(expected_timeout); }).join();
    BOOST_TEST(timed_out);
    held.unlock();
    std::thread([&] {
        other_got_it = lock.try_lock_for(should_happen);
        lock.unlock();
    }).join();
    BOOST_TEST(other_got_it);
    const std::unique_lock timed(lock, std::chrono::steady_clock::now() + should_happen);
    BOOST_TEST(timed.owns_lock());
}

BOOST_AUTO_TEST_CASE(the_lock_is_error_checking)
{
    SharedLock lock;
#if !defined(__SANITIZE_THREAD__)
    // ThreadSanitizer reports the misuse checked here (an unlock by a thread that does not hold
    // the mutex) in its interceptor, before the mutex refuses it: not under TSan.
    BOOST_CHECK_THROW(lock.unlock(), std::system_error); // not held: EPERM
#endif
    lock.lock();
    try {
        lock.lock();
        BOOST_FAIL("no exception");
    } catch (const std::system_error& e) {
        BOOST_TEST(e.code().value() == EDEADLK);
    }
#if !defined(__SANITIZE_THREAD__)
    std::thread([&] {
        try {
            lock.unlock();
        } catch (const std::system_error&) {
            return;
        }
        std::abort(); // a thread that does not hold it released it
    }).join();
#endif
    lock.unlock();
    const auto received = round_trip(lock);
    BOOST_TEST((received == lock));
}

BOOST_AUTO_TEST_CASE(an_event_is_set_cleared_and_waited_for)
{
    const SharedEvent event;
    BOOST_TEST(!event.is_set());
    BOOST_TEST(!event.wait(expected_timeout)); // false: the timeout elapsed
    event.set();
    BOOST_TEST(event.is_set());
    BOOST_TEST(event.wait());
    BOOST_TEST(event.wait(std::chrono::seconds(0)));
    event.clear();
    BOOST_TEST(!event.is_set());

    std::atomic<int> woken{0};
    std::vector<std::thread> waiters;
    for (int i = 0; i < 3; ++i) {
        waiters.emplace_back([&] { woken += event.wait(should_happen) ? 1 : 0; });
    }
    event.set(); // wakes all, whether they sleep already or not
    for (auto& waiter : waiters) {
        waiter.join();
    }
    BOOST_TEST(woken.load() == 3);
    BOOST_TEST(round_trip(event).is_set());
}

BOOST_AUTO_TEST_SUITE_END()

// ---- across a process pool -------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(process_pool)

BOOST_AUTO_TEST_CASE(a_hot_key_updated_from_two_workers_ends_exact)
{
    futura::ProcessPoolExecutor pool{{.max_workers = 2}};
    const Counts counts;
    auto a = pool.submit(count_hot_key, counts, 20'000);
    auto b = pool.submit(count_hot_key, counts, 20'000);
    count_hot_key(counts, 10'000); // and this process at the same time
    a.result();
    b.result();
    BOOST_TEST(counts.get("hot") == std::optional<long>(50'000));
    BOOST_TEST(pool.submit(read_count, counts, std::string("hot")).result() == 50'000);
}

BOOST_AUTO_TEST_CASE(a_queue_carries_items_between_workers_and_this_process)
{
    futura::ProcessPoolExecutor pool{{.max_workers = 2}};
    const SharedQueue<int> queue{{.capacity = 16}};
    auto consumer = pool.submit(consume_until_closed, queue);
    auto producer = pool.submit(produce, queue, 0, 5'000);
    produce(queue, 5'000, 5'000);
    producer.result();
    queue.close();
    BOOST_TEST(consumer.result() == 10'000L * 9'999 / 2);

    const SharedQueue<int> back{{.capacity = 2}};
    auto got = pool.submit(get_one, back);
    back.put(42);
    BOOST_TEST(got.result() == 42);
}

BOOST_AUTO_TEST_CASE(a_lock_and_an_event_work_across_processes)
{
    futura::ProcessPoolExecutor pool{{.max_workers = 2}};
    const SharedLock lock;
    const futura::SharedArray<long> pair(2);
    auto a = pool.submit(add_under_shared_lock, lock, pair, 20'000);
    auto b = pool.submit(add_under_shared_lock, lock, pair, 20'000);
    a.result();
    b.result();
    BOOST_TEST(pair[0] == 40'000);
    BOOST_TEST(pair[1] == 40'000);

    const SharedEvent event;
    auto waiter = pool.submit(wait_for_event, event);
    event.set();
    BOOST_TEST(waiter.result());
}

BOOST_AUTO_TEST_SUITE_END()

// ---- crashes ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(crashes)

BOOST_AUTO_TEST_CASE(killed_inside_update_the_dict_stays_whole_and_the_next_owner_learns_it)
{
    const auto shm_before = entries_of("/dev/shm");
    futura::ProcessPoolExecutor pool{{.max_workers = 1}};
    const Counts counts;
    counts.insert_or_assign("apple", 5);
    auto killed = pool.submit(die_inside_update, counts);
    BOOST_CHECK_THROW(killed.result(), futura::WorkerCrashed);
    {
        auto guard = counts.lock(); // does not wait forever
        BOOST_TEST(guard.owner_died());
        BOOST_TEST(guard.get("apple") == std::optional<long>(5)); // the update never landed
    }
    BOOST_TEST(!counts.lock().owner_died()); // consistent again
    counts.update("apple", [](long& n) { ++n; });
    BOOST_TEST(pool.submit(read_count, counts, std::string("apple")).result() == 6);
    BOOST_TEST(entries_of("/dev/shm") == shm_before);
    BOOST_TEST(!boost_interprocess_files());
}

BOOST_AUTO_TEST_CASE(killed_inside_insert_of_a_new_key_the_dict_is_broken_for_everyone)
{
    futura::ProcessPoolExecutor pool{{.max_workers = 1}};
    const Counts counts;
    counts.insert_or_assign("apple", 5);
    auto killed = pool.submit(die_inside_insert, counts);
    BOOST_CHECK_THROW(killed.result(), futura::WorkerCrashed);
    try {
        (void)counts.get("apple");
        BOOST_FAIL("no exception");
    } catch (const futura::BrokenSharedState& e) {
        const std::string what = e.what();
        BOOST_TEST(what.find("futura::SharedDict") != std::string::npos, what);
        BOOST_TEST(what.find("died") != std::string::npos, what);
    }
    // Every later call, in this process and in others, and never a hang.
    BOOST_CHECK_THROW((void)counts.size(), futura::BrokenSharedState);
    BOOST_CHECK_THROW(counts.insert_or_assign("pear", 1), futura::BrokenSharedState);
    BOOST_CHECK_THROW(counts.update("apple", [](long& n) { ++n; }), futura::BrokenSharedState);
    BOOST_CHECK_THROW((void)counts.snapshot(), futura::BrokenSharedState);
    BOOST_CHECK_THROW((void)counts.lock(), futura::BrokenSharedState);
    BOOST_CHECK_THROW((void)pool.submit(read_count, counts, std::string("apple")).result(),
                      futura::BrokenSharedState);
}

BOOST_AUTO_TEST_CASE(killed_inside_a_put_the_queue_is_broken)
{
    futura::ProcessPoolExecutor pool{{.max_workers = 1}};
    const SharedQueue<int> queue;
    queue.put(1);
    BOOST_CHECK_THROW(pool.submit(die_inside_put, queue).result(), futura::WorkerCrashed);
    BOOST_CHECK_THROW((void)queue.get(), futura::BrokenSharedState);
    BOOST_CHECK_THROW((void)queue.try_put(2), futura::BrokenSharedState);
    BOOST_CHECK_THROW((void)pool.submit(get_one, queue).result(), futura::BrokenSharedState);
}

BOOST_AUTO_TEST_CASE(killed_while_blocked_in_get_the_queue_is_untouched)
{
    const auto shm_before = entries_of("/dev/shm");
    futura::ProcessPoolExecutor pool{{.max_workers = 1}};
    const SharedQueue<int> queue{{.capacity = 4}};
    const SharedValue<int> tid(0);
    auto blocked = pool.submit(block_in_get, queue, tid);
    BOOST_REQUIRE(eventually([&] { return tid.load() != 0; }));
    // Asleep on the queue's futex, not merely on its way there. (Either way the outcome must be
    // the same; this makes the test exercise the harder case.)
    BOOST_TEST(eventually([&] { return asleep_in_futex(tid.load()); }));
    ::kill(tid.load(), SIGKILL);
    BOOST_CHECK_THROW(blocked.result(), futura::WorkerCrashed);
    queue.put(1);
    BOOST_TEST(queue.get(should_happen) == 1);
    auto next = pool.submit(get_one, queue); // a new worker blocks, and is woken
    queue.put(2);
    BOOST_TEST(next.result() == 2);
    BOOST_TEST(queue.empty());
    BOOST_TEST(entries_of("/dev/shm") == shm_before);
    BOOST_TEST(!boost_interprocess_files());
}

BOOST_AUTO_TEST_CASE(killed_holding_a_shared_lock_the_next_owner_gets_it_and_is_told)
{
    futura::ProcessPoolExecutor pool{{.max_workers = 1}};
    SharedLock lock;
    BOOST_CHECK_THROW(pool.submit(die_holding_lock, lock).result(), futura::WorkerCrashed);
    BOOST_TEST(lock.try_lock_for(should_happen));
    BOOST_TEST(lock.owner_died());
    lock.unlock();
    BOOST_TEST(!lock.owner_died());
    const std::lock_guard held(lock);
    BOOST_TEST(!lock.owner_died());
}

BOOST_AUTO_TEST_CASE(a_parent_killed_holding_shared_state_leaves_nothing_behind)
{
    const auto program = helper_program("holding_shared_state");
    BOOST_REQUIRE_MESSAGE(!program.empty(),
                          "the path of holding_shared_state must be given after --");
    const TempDir temp; // the parent's TMPDIR: it must stay empty
    const auto shm_before = entries_of("/dev/shm");

    int out[2];
    BOOST_REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    std::vector<std::string> environment{"TMPDIR=" + temp.path().string()};
    for (char** entry = environ; *entry != nullptr; ++entry) {
        if (!std::string_view(*entry).starts_with("TMPDIR=")) {
            environment.emplace_back(*entry);
        }
    }
    std::vector<char*> env;
    for (auto& variable : environment) {
        env.push_back(variable.data());
    }
    env.push_back(nullptr);
    std::string path = program;
    char* argv[] = {path.data(), nullptr};
    pid_t parent = -1;
    const int spawned = ::posix_spawn(&parent, path.c_str(), &actions, nullptr, argv, env.data());
    ::posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    BOOST_REQUIRE(spawned == 0);

    std::string text; // "worker PID" once a worker holds the objects, then "ready"
    const auto until = Clock::now() + 3 * should_happen;
    while (text.find("ready\n") == std::string::npos && Clock::now() < until) {
        pollfd ready{out[0], POLLIN, 0};
        if (::poll(&ready, 1, 100) > 0) {
            char buffer[256];
            const auto got = ::read(out[0], buffer, sizeof buffer);
            if (got <= 0) {
                break;
            }
            text.append(buffer, static_cast<std::size_t>(got));
        }
    }
    ::close(out[0]);
    std::istringstream lines(text);
    std::string word;
    int worker = 0;
    while (lines >> word && !(word == "worker" && lines >> worker)) {
    }
    const auto shmem_holding = shmem_kb();
    ::kill(parent, SIGKILL);
    int status = 0;
    ::waitpid(parent, &status, 0);
    BOOST_REQUIRE_MESSAGE(text.find("ready\n") != std::string::npos,
                          "holding_shared_state: " << text);
    BOOST_REQUIRE(worker > 0);
    BOOST_TEST(eventually([&] { return process_gone(worker); }), "worker " << worker << " lives");
    // The dictionary's 64 MiB were held by the parent and by a worker blocked in a queue's get.
    BOOST_TEST(eventually([&] { return shmem_kb() < shmem_holding - 50'000; }),
               "Shmem is still " << shmem_kb() << " kB (" << shmem_holding << " while held)");
    BOOST_TEST(entries_of("/dev/shm") == shm_before);
    BOOST_TEST(temp.files().empty());
}

BOOST_AUTO_TEST_SUITE_END()
