// Shared state without a server (issue 15): futura's SharedDict, SharedQueue and SharedLock
// against Python's Manager().dict(), Manager().Queue(), Manager().Lock(), multiprocessing's
// Value, Lock and Queue (bench/peers/shared_containers.py, read with --peer-results), and
// against the same work in one process under a std::mutex (std::unordered_map, std::deque,
// the mutex alone), the floor of any locked container.
//
// Each figure is the time of one operation (µs), the median of --reps repetitions:
//   get, set      a dictionary of 1,000 int keys: get (a copy of the value) or assign an
//                 existing key, uncontended, cycling over the keys;
//   update_2p     one hot key incremented by 2 processes at once (futura: 2 worker processes
//                 of a ProcessPoolExecutor calling update; Python: `with lock: d[k] += 1` on a
//                 Manager dict and lock, and `with v.get_lock(): v.value += 1` on a Value;
//                 in one process: 2 threads); the time per increment is the wall time over all
//                 increments of both;
//   queue         put then get of one int, in one process;
//   lock_1p       acquire and release, uncontended;
//   lock_2p       acquire and release by 2 processes at once (2 threads for std::mutex), the
//                 time per acquisition over all of both.
#include <futura/process_pool_executor.hpp>
#include <futura/shared_array.hpp>
#include <futura/shared_dict.hpp>
#include <futura/shared_event.hpp>
#include <futura/shared_lock.hpp>
#include <futura/shared_queue.hpp>
#include <futura/shared_value.hpp>

#include <deque>
#include <functional>
#include <iostream>
#include <latch>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "harness.hpp"

namespace {

using namespace futura_bench;

constexpr std::string_view usage =
    "usage: futura_bench_shared_containers [--n=200000] [--n2p=200000] [--reps=5]\n"
    "                                       [--peer-results=FILE,...]";

constexpr int keys = 1000;

using Dict = futura::SharedDict<int, long>;

struct Settings
{
    long long n = 200'000;   // operations per repetition, one process
    long long n2p = 200'000; // operations per process per repetition, two processes
    std::size_t reps = 5;
    std::vector<std::string> peer_files;
};

/// Times `body(n)` `reps` times: microseconds per operation.
std::vector<double> timed(const Settings& s, long long n,
                          const std::function<void(long long)>& body)
{
    body(n / 10 + 1); // warm-up
    std::vector<double> per_op;
    for (std::size_t r = 0; r < s.reps; ++r) {
        const auto start = Clock::now();
        body(n);
        per_op.push_back(micros(Clock::now() - start) / static_cast<double>(n));
    }
    return per_op;
}

// ---- two processes: the workers of a pool, started together --------------------------------

// Counts itself ready, waits for the start, then runs its share.
void hammer_update(Dict dict, futura::SharedValue<int> ready, futura::SharedEvent go, long long n)
{
    ready.fetch_add(1);
    go.wait();
    for (long long i = 0; i < n; ++i) {
        dict.update(0, [](long& v) { ++v; });
    }
}

void hammer_lock(futura::SharedLock lock, futura::SharedArray<long> counter,
                 futura::SharedValue<int> ready, futura::SharedEvent go, long long n)
{
    ready.fetch_add(1);
    go.wait();
    for (long long i = 0; i < n; ++i) {
        const std::lock_guard held(lock);
        ++counter[0];
    }
}

/// Runs `submit_one()` twice on the pool's two workers, starts them together: µs per operation
/// over both.
template <class Submit>
double two_workers(futura::ProcessPoolExecutor& pool, long long n, Submit&& submit_one)
{
    const futura::SharedValue<int> ready(0);
    const futura::SharedEvent go;
    auto a = submit_one(pool, ready, go);
    auto b = submit_one(pool, ready, go);
    while (ready.load() < 2) {
        std::this_thread::yield();
    }
    const auto start = Clock::now();
    go.set();
    a.result();
    b.result();
    return micros(Clock::now() - start) / static_cast<double>(2 * n);
}

template <class Body>
double two_threads(long long n, Body&& body)
{
    std::latch start_line(3);
    const auto run = [&] {
        start_line.arrive_and_wait();
        body(n);
    };
    std::thread a(run);
    std::thread b(run);
    start_line.count_down();
    const auto start = Clock::now();
    start_line.wait();
    a.join();
    b.join();
    return micros(Clock::now() - start) / static_cast<double>(2 * n);
}

// ---- the measurements ----------------------------------------------------------------------

std::vector<Row> measure(const Settings& s)
{
    std::vector<Row> rows;
    const auto add = [&](std::string group, std::string impl, std::string label, long long n,
                         const std::vector<double>& values) {
        auto row = summarise(std::move(group), std::move(impl), std::move(label), n, values);
        row.is_futura = row.impl.starts_with("futura");
        rows.push_back(row);
        std::cerr << "  " << row.group << " " << row.label << ": " << fixed(row.median, 3)
                  << " µs\n";
    };

    // Dictionaries.
    const Dict dict{{.capacity = std::size_t{1} << 20}};
    std::unordered_map<int, long> map;
    std::mutex map_mutex; // guards map
    for (int k = 0; k < keys; ++k) {
        dict.insert_or_assign(k, k);
        map[k] = k;
    }
    long sink = 0;
    add("get", "futura_dict", "futura SharedDict::get", s.n, timed(s, s.n, [&](long long n) {
            for (long long i = 0; i < n; ++i) {
                sink += dict.get(static_cast<int>(i % keys)).value_or(0);
            }
        }));
    add("get", "std_map_mutex", "std::unordered_map + std::mutex, one process", s.n,
        timed(s, s.n, [&](long long n) {
            for (long long i = 0; i < n; ++i) {
                const std::lock_guard held(map_mutex);
                const auto it = map.find(static_cast<int>(i % keys));
                sink += it == map.end() ? 0 : it->second;
            }
        }));
    add("set", "futura_dict", "futura SharedDict::insert_or_assign", s.n,
        timed(s, s.n, [&](long long n) {
            for (long long i = 0; i < n; ++i) {
                dict.insert_or_assign(static_cast<int>(i % keys), i);
            }
        }));
    add("set", "std_map_mutex", "std::unordered_map + std::mutex, one process", s.n,
        timed(s, s.n, [&](long long n) {
            for (long long i = 0; i < n; ++i) {
                const std::lock_guard held(map_mutex);
                map.insert_or_assign(static_cast<int>(i % keys), i);
            }
        }));

    // One hot key from two processes.
    futura::ProcessPoolExecutor pool{{.max_workers = 2}};
    std::vector<double> updates;
    for (std::size_t r = 0; r < s.reps; ++r) {
        dict.insert_or_assign(0, 0);
        updates.push_back(two_workers(pool, s.n2p, [&](auto& p, auto ready, auto go) {
            return p.submit(hammer_update, dict, ready, go, s.n2p);
        }));
        if (dict.get(0) != std::optional<long>(2 * s.n2p)) {
            fail("SharedDict::update lost increments");
        }
    }
    add("update_2p", "futura_dict", "futura SharedDict::update, 2 worker processes", s.n2p,
        updates);
    std::vector<double> thread_updates;
    for (std::size_t r = 0; r < s.reps; ++r) {
        thread_updates.push_back(two_threads(s.n2p, [&](long long n) {
            for (long long i = 0; i < n; ++i) {
                const std::lock_guard held(map_mutex);
                ++map[0];
            }
        }));
    }
    add("update_2p", "std_map_mutex", "std::unordered_map + std::mutex, 2 threads", s.n2p,
        thread_updates);

    // Queues.
    const futura::SharedQueue<int> queue{{.capacity = 1024}};
    add("queue", "futura_queue", "futura SharedQueue put + get", s.n,
        timed(s, s.n, [&](long long n) {
            for (long long i = 0; i < n; ++i) {
                queue.put(static_cast<int>(i));
                sink += queue.get();
            }
        }));
    std::deque<int> deque;
    std::mutex deque_mutex; // guards deque
    add("queue", "std_deque_mutex", "std::deque + std::mutex, one process", s.n,
        timed(s, s.n, [&](long long n) {
            for (long long i = 0; i < n; ++i) {
                {
                    const std::lock_guard held(deque_mutex);
                    deque.push_back(static_cast<int>(i));
                }
                const std::lock_guard held(deque_mutex);
                sink += deque.front();
                deque.pop_front();
            }
        }));

    // Locks.
    futura::SharedLock lock;
    std::mutex mutex; // guards nothing: measured alone
    add("lock_1p", "futura_lock", "futura SharedLock", s.n, timed(s, s.n, [&](long long n) {
            for (long long i = 0; i < n; ++i) {
                const std::lock_guard held(lock);
            }
        }));
    add("lock_1p", "std_mutex", "std::mutex, one process", s.n, timed(s, s.n, [&](long long n) {
            for (long long i = 0; i < n; ++i) {
                const std::lock_guard held(mutex);
            }
        }));
    const futura::SharedArray<long> counter(1);
    std::vector<double> lock_2p;
    for (std::size_t r = 0; r < s.reps; ++r) {
        lock_2p.push_back(two_workers(pool, s.n2p, [&](auto& p, auto ready, auto go) {
            return p.submit(hammer_lock, lock, counter, ready, go, s.n2p);
        }));
    }
    add("lock_2p", "futura_lock", "futura SharedLock, 2 worker processes", s.n2p, lock_2p);
    std::vector<double> mutex_2p;
    long guarded = 0;
    for (std::size_t r = 0; r < s.reps; ++r) {
        mutex_2p.push_back(two_threads(s.n2p, [&](long long n) {
            for (long long i = 0; i < n; ++i) {
                const std::lock_guard held(mutex);
                ++guarded;
            }
        }));
    }
    add("lock_2p", "std_mutex", "std::mutex, 2 threads", s.n2p, mutex_2p);
    if (sink == 42 || guarded == 42) {
        std::cerr << "(unlikely)\n"; // keeps the loops' results alive
    }
    return rows;
}

// ---- the table -------------------------------------------------------------------------------

struct Group
{
    std::string id;
    std::string title;
    std::string subject; // futura's row
};

const std::vector<Group> groups = {
    {"get", "dict get, uncontended", "futura_dict"},
    {"set", "dict set, uncontended", "futura_dict"},
    {"update_2p", "`d[k] += 1` on one key, 2 processes", "futura_dict"},
    {"queue", "queue put + get", "futura_queue"},
    {"lock_1p", "lock acquire + release, uncontended", "futura_lock"},
    {"lock_2p", "lock acquire + release, 2 processes", "futura_lock"},
};

const Row* find_row(const std::vector<Row>& rows, const std::string& group, const std::string& impl)
{
    for (const auto& row : rows) {
        if (row.group == group && row.impl == impl) {
            return &row;
        }
    }
    return nullptr;
}

void print_table(std::ostream& out, const std::vector<Row>& rows, const Settings& s)
{
    out << "| operation | implementation | median µs/op | spread (min–max) | peer/futura |\n";
    out << "|---|---|---:|---:|---:|\n";
    for (const auto& group : groups) {
        const Row* subject = find_row(rows, group.id, group.subject);
        for (const bool futura : {true, false}) {
            for (const auto& row : rows) {
                if (row.group != group.id || row.is_futura != futura || row.median <= 0) {
                    continue;
                }
                const std::string ratio = subject != nullptr && subject->median > 0
                                              ? fixed(row.median / subject->median, 2) + "×"
                                              : "—";
                out << "| " << group.title << " | " << row.label << " | " << fixed(row.median, 3)
                    << " | " << fixed(row.min, 3) << "–" << fixed(row.max, 3) << " | " << ratio
                    << " |\n";
            }
        }
    }
    out << "\nMedians of " << s.reps << " repetitions of " << grouped(s.n)
        << " operations (one process) or " << grouped(s.n2p)
        << " per process (two processes; Python's peers run fewer, see "
           "bench/peers/shared_containers.py). peer/futura divides the row's time by futura's: "
           "how many times faster futura is.\n";
}

void print_goals(std::ostream& out, const std::vector<Row>& rows)
{
    const auto verdict = [](bool met) { return met ? "**met**" : "**not met**"; };
    out << "\nGoals of issue 15, on this run:\n\n";
    for (const char* group : {"get", "set"}) {
        const Row* futura = find_row(rows, group, "futura_dict");
        const Row* manager = find_row(rows, group, "python_manager_dict");
        if (futura == nullptr || manager == nullptr) {
            out << "- " << group << ": not measured in this run.\n";
            continue;
        }
        const double ratio = manager->median / futura->median;
        out << "- uncontended " << group << " ≤ 1 µs and ≥ 50× Manager().dict() ("
            << fixed(manager->median, 1) << " µs): futura " << fixed(futura->median, 3) << " µs, "
            << grouped(ratio) << "× — " << verdict(futura->median <= 1.0 && ratio >= 50) << ".\n";
    }
    if (const Row* futura = find_row(rows, "queue", "futura_queue")) {
        out << "- queue put + get ≤ 2 µs: futura " << fixed(futura->median, 3) << " µs — "
            << verdict(futura->median <= 2.0) << ".\n";
    }
    const Row* futura = find_row(rows, "update_2p", "futura_dict");
    const Row* manager = find_row(rows, "update_2p", "python_manager_dict_lock");
    if (futura != nullptr && manager != nullptr) {
        const double ratio = manager->median / futura->median;
        out << "- hot-key update from 2 processes ≥ 20× Manager's `d[k] += 1` under a Manager "
               "lock ("
            << fixed(manager->median, 1) << " µs): futura " << fixed(futura->median, 3) << " µs, "
            << grouped(ratio) << "× — " << verdict(ratio >= 20) << ".\n";
    } else {
        out << "- hot-key update from 2 processes: not measured in this run.\n";
    }
}

} // namespace

int main(int argc, char** argv)
{
    try {
        Settings s;
        for (const auto& [key, value] : options(argc, argv, usage)) {
            if (key == "help") {
                std::cout << usage << '\n';
                return 0;
            } else if (key == "n") {
                s.n = to_count(value, key);
            } else if (key == "n2p") {
                s.n2p = to_count(value, key);
            } else if (key == "reps") {
                s.reps = static_cast<std::size_t>(to_count(value, key));
            } else if (key == "peer-results") {
                s.peer_files = split(value);
            } else {
                fail("unknown option --" + key + "\n" + std::string(usage));
            }
        }
        auto rows = measure(s);
        for (const auto& file : s.peer_files) {
            for (auto& row : read_rows(file)) {
                rows.push_back(std::move(row));
            }
        }
        print_table(std::cout, rows, s);
        print_goals(std::cout, rows);
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "futura_bench_shared_containers: " << e.what() << '\n';
        return 1;
    }
}
