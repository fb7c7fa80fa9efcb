// futura::MapResults, the range Executor::map and starmap return, in detail: its concepts, its
// iterator, exceptions per element, timeouts, buffersize and lazy input, what it owns.
// (What every executor does with map is in the typed suite, test/executor.cpp.)
#include <futura/inline_executor.hpp>
#include <futura/map.hpp>
#include <futura/thread_pool_executor.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iterator>
#include <memory>
#include <mutex>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "support.hpp"

using namespace futura_test;
using namespace std::chrono_literals;

namespace {

using Results = futura::MapResults<int>;

static_assert(std::ranges::input_range<Results>);
static_assert(std::input_iterator<Results::iterator>);
static_assert(std::sentinel_for<std::default_sentinel_t, Results::iterator>);
static_assert(std::same_as<std::ranges::range_value_t<Results>, int>);
static_assert(std::is_nothrow_move_constructible_v<Results>);
static_assert(!std::is_copy_constructible_v<Results>);
static_assert(std::ranges::input_range<futura::MapResults<std::unique_ptr<int>>>);

std::string twice(const std::string& s) { return s + s; }

using futura::MapOptions;

/// A view of 0, scale, 2 * scale, ... (size elements) whose iterators point to the view, as those
/// of transform_view and filter_view do. Every live object registers itself, so an iterator can
/// tell (and count) when it is used after its view moved away or died, without reading it.
class ParentCheckedView : public std::ranges::view_interface<ParentCheckedView>
{
public:
    class iterator
    {
    public:
        using value_type = int;
        using difference_type = std::ptrdiff_t;

        iterator() = default;
        iterator(const ParentCheckedView* parent, int size, int scale)
            : parent_(parent), size_(size), scale_(scale)
        {}
        int operator*() const
        {
            check();
            return next_ * scale_;
        }
        iterator& operator++()
        {
            check();
            ++next_;
            return *this;
        }
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator& it, std::default_sentinel_t)
        {
            it.check();
            return it.next_ >= it.size_;
        }

    private:
        void check() const
        {
            if (!is_live(parent_)) {
                ++dangling_uses_;
            }
        }

        const ParentCheckedView* parent_ = nullptr;
        int size_ = 0;
        int scale_ = 0;
        int next_ = 0;
    };

    ParentCheckedView() { enroll(); }
    ParentCheckedView(int size, int scale) : size_(size), scale_(scale) { enroll(); }
    ParentCheckedView(const ParentCheckedView& other) : size_(other.size_), scale_(other.scale_)
    {
        enroll();
    }
    ParentCheckedView(ParentCheckedView&& other) noexcept : size_(other.size_), scale_(other.scale_)
    {
        enroll();
    }
    ParentCheckedView& operator=(const ParentCheckedView&) = default;
    ParentCheckedView& operator=(ParentCheckedView&&) noexcept = default;
    ~ParentCheckedView()
    {
        const std::lock_guard lock(registry_mutex());
        registry().erase(this);
    }

    [[nodiscard]] iterator begin() const { return {this, size_, scale_}; }
    [[nodiscard]] std::default_sentinel_t end() const noexcept { return {}; }

    static int dangling_uses() { return dangling_uses_.load(); }

private:
    static std::mutex& registry_mutex()
    {
        static std::mutex mutex; // guards registry()
        return mutex;
    }
    static std::set<const ParentCheckedView*>& registry()
    {
        static std::set<const ParentCheckedView*> live;
        return live;
    }
    static bool is_live(const ParentCheckedView* view)
    {
        const std::lock_guard lock(registry_mutex());
        return registry().count(view) != 0;
    }
    void enroll() noexcept
    {
        const std::lock_guard lock(registry_mutex());
        registry().insert(this);
    }

    int size_ = 0;
    int scale_ = 1;
    static inline std::atomic<int> dangling_uses_{0};
};

static_assert(std::ranges::view<ParentCheckedView>);
static_assert(std::ranges::input_range<ParentCheckedView>);

} // namespace

BOOST_AUTO_TEST_SUITE(map)

// ---------------------------------------------------------------------------------------------
// Iteration

BOOST_AUTO_TEST_CASE(range_for_reads_results_in_input_order)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 4}};
    std::vector<int> got;
    for (int r : pool.map(sleep_then_return, std::vector{9, 1, 5, 0, 3})) {
        got.push_back(r);
    }
    BOOST_TEST(got == (std::vector<int>{9, 1, 5, 0, 3}));
}

BOOST_AUTO_TEST_CASE(standard_range_algorithms_accept_the_results)
{
    futura::InlineExecutor executor;
    std::vector<int> copied;
    std::ranges::copy(executor.map(square, std::views::iota(0, 5)), std::back_inserter(copied));
    BOOST_TEST(copied == (std::vector<int>{0, 1, 4, 9, 16}));
    auto results = executor.map(square, std::views::iota(0, 5));
    BOOST_TEST(std::ranges::distance(results) == 5);
}

BOOST_AUTO_TEST_CASE(dereferencing_twice_gives_the_same_element)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    auto results = pool.map(square, std::vector{3, 4});
    auto it = results.begin();
    const int& first = *it;
    BOOST_TEST(*it == 9);
    BOOST_TEST(&*it == &first);
    ++it;
    BOOST_TEST(*it == 16);
}

BOOST_AUTO_TEST_CASE(arrow_reaches_members_of_the_result)
{
    futura::InlineExecutor executor;
    auto results = executor.map(twice, std::vector<std::string>{"ab", "c"});
    auto it = results.begin();
    BOOST_TEST(it->size() == 4U);
    BOOST_TEST(*it == "abab");
    it++; // postfix increment
    BOOST_TEST(it->size() == 2U);
    ++it;
    BOOST_TEST((it == results.end()));
}

BOOST_AUTO_TEST_CASE(incrementing_without_reading_skips_an_element_without_waiting_for_it)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    Gate gate;
    Gate::Opener open_gate(gate);
    auto results = pool.map([&gate](int x) { return x == 0 ? (gate.wait() ? 100 : -1) : x; },
                            std::vector{0, 1, 2});
    auto it = results.begin();
    ++it; // element 0 is blocked: skipping it must not wait
    BOOST_TEST(*it == 1);
    ++it;
    BOOST_TEST(*it == 2);
    BOOST_TEST(!gate.gave_up());
    gate.open();
}

BOOST_AUTO_TEST_CASE(moved_results_keep_iterating)
{
    futura::InlineExecutor executor;
    auto results = executor.map(square, std::vector{1, 2, 3});
    auto it = results.begin();
    BOOST_TEST(*it == 1);
    ++it;
    auto moved = std::move(results);
    BOOST_TEST(*it == 4); // the iterator refers to the state, which moved along
    BOOST_TEST(read_outcomes(moved) == values({4, 9}));
}

// ---------------------------------------------------------------------------------------------
// Exceptions per element

BOOST_AUTO_TEST_CASE(each_failed_element_rethrows_its_own_exception_in_turn)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 3}};
    auto results = pool.map(fail_if_odd, std::views::iota(0, 6));
    BOOST_TEST(read_outcomes(results) == "0 | throws: odd input 1 | 2 | throws: odd input 3 | 4 | "
                                         "throws: odd input 5");
}

BOOST_AUTO_TEST_CASE(element_exception_has_the_task_exception_type)
{
    futura::InlineExecutor executor;
    auto results = executor.map(fail_if_odd, std::vector{1, 2});
    auto it = results.begin();
    BOOST_CHECK_THROW(*it, std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(increment_after_a_failed_element_moves_to_the_next_element)
{
    futura::InlineExecutor executor;
    auto results = executor.map(fail_if_odd, std::vector{1, 2, 4});
    auto it = results.begin();
    BOOST_CHECK_THROW(*it, std::invalid_argument);
    ++it;
    BOOST_TEST((it != results.end()));
    int second = -1;
    BOOST_CHECK_NO_THROW(second = *it);
    BOOST_TEST(second == 2);
}

BOOST_AUTO_TEST_CASE(dereferencing_a_failed_element_again_does_not_move_on)
{
    // Without an increment the iterator stays on the failed element: reading it again must not
    // yield the next element's value in its place.
    futura::InlineExecutor executor;
    auto results = executor.map(fail_if_odd, std::vector{1, 2});
    auto it = results.begin();
    BOOST_CHECK_THROW(*it, std::invalid_argument);
    BOOST_CHECK_THROW(*it, std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// Timeout

BOOST_AUTO_TEST_CASE(late_element_throws_timeout_error_and_keeps_throwing)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    Gate gate;
    Gate::Opener open_gate(gate);
    auto results = pool.map([&gate](int x) { return gate.wait() ? x : -1; }, std::vector{0, 1},
                            {.timeout = expected_timeout});
    auto it = results.begin();
    BOOST_CHECK_EXCEPTION(*it, futura::TimeoutError, [](const futura::TimeoutError& e) {
        return std::string(e.what()).find("timeout") != std::string::npos;
    });
    BOOST_CHECK_THROW(*it, futura::TimeoutError); // the deadline stays passed
    gate.open();
}

BOOST_AUTO_TEST_CASE(results_already_done_are_read_after_the_timeout)
{
    futura::InlineExecutor executor;
    auto results = executor.map(square, std::vector{1, 2}, {.timeout = 0s});
    BOOST_TEST(read_outcomes(results) == values({1, 4}));
}

// ---------------------------------------------------------------------------------------------
// buffersize and lazy input

BOOST_AUTO_TEST_CASE(without_buffersize_every_input_is_submitted_by_the_call)
{
    futura::InlineExecutor executor;
    CountingInput input(50);
    auto results = executor.map(square, input);
    BOOST_TEST(input.pulled() == 50);
    BOOST_TEST(executor.stats().submitted == 50U);
}

BOOST_AUTO_TEST_CASE(thread_pool_map_ignores_chunksize_as_python_threads_do)
{
    // ThreadPoolExecutor::map builds tasks that never leave the process: chunks would save no
    // message, so it submits one call per input (Python's thread pool ignores chunksize too),
    // and a file that uses only threads does not compile the chunk code. Elements still come
    // back one by one, in order.
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    std::vector<int> inputs{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    const auto results = pool.map(square, inputs, {.chunksize = 3}).to_vector();
    BOOST_TEST(results == (std::vector<int>{1, 4, 9, 16, 25, 36, 49, 64, 81, 100}),
               boost::test_tools::per_element());
    BOOST_TEST(pool.stats().submitted == inputs.size());
}

BOOST_AUTO_TEST_CASE(with_buffersize_inputs_are_submitted_as_results_are_read)
{
    // The InlineExecutor runs a call when it is submitted: the count of calls shows exactly when
    // map submits.
    futura::InlineExecutor executor;
    CountingInput input(10);
    auto results = executor.map(square, input, {.buffersize = 3});
    BOOST_TEST(executor.stats().submitted == 3U);
    auto it = results.begin();
    for (int i = 0; i < 10; ++i) {
        BOOST_TEST(*it == i * i);
        BOOST_TEST(executor.stats().submitted <= static_cast<std::size_t>(std::min(10, i + 1 + 3)));
        ++it;
    }
    BOOST_TEST((it == results.end()));
    BOOST_TEST(executor.stats().submitted == 10U);
}

BOOST_AUTO_TEST_CASE(endless_input_is_consumed_lazily_and_abandoned_safely)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    CountingInput endless;
    {
        auto results = pool.map(square, endless, {.buffersize = 4});
        int i = 0;
        for (int r : results) {
            BOOST_TEST(r == i * i);
            if (++i == 100) {
                break;
            }
        }
        BOOST_TEST(endless.pulled() <= 100 + 4);
    } // destroying the results cancels what is still pending and stops pulling
    const int pulled = endless.pulled();
    pool.shutdown();
    BOOST_TEST(endless.pulled() == pulled);
    const auto stats = pool.stats();
    BOOST_TEST(stats.submitted == static_cast<std::size_t>(pulled));
    BOOST_TEST(stats.submitted == stats.completed + stats.failed + stats.cancelled);
}

BOOST_AUTO_TEST_CASE(buffersize_zero_throws_invalid_argument_with_a_message)
{
    futura::InlineExecutor executor;
    BOOST_CHECK_EXCEPTION((void)executor.map(square, std::vector{1}, {.buffersize = 0}),
                          std::invalid_argument, [](const std::invalid_argument& e) {
                              return std::string(e.what()).find("buffersize") != std::string::npos;
                          });
}

BOOST_AUTO_TEST_CASE(huge_buffersize_behaves_like_none)
{
    futura::InlineExecutor executor;
    auto results = executor.map(square, std::vector{1, 2, 3}, {.buffersize = SIZE_MAX});
    BOOST_TEST(read_outcomes(results) == values({1, 4, 9}));
}

BOOST_AUTO_TEST_CASE(submission_failure_while_reading_surfaces_as_shutdown_error)
{
    // With buffersize, inputs are submitted while reading: after shutdown, that submission fails
    // and reading reports it (CPython's map raises from next() too).
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    auto results = pool.map(square, std::views::iota(0, 5), {.buffersize = 1});
    auto it = results.begin();
    BOOST_TEST(*it == 0);
    pool.shutdown();
    bool shutdown_error = false;
    for (int i = 1; i < 5 && !shutdown_error; ++i) {
        try {
            ++it;
            BOOST_TEST(*it == i * i); // a result computed before shutdown is right
        } catch (const futura::ShutdownError&) {
            shutdown_error = true;
        }
    }
    BOOST_TEST(shutdown_error);
}

// ---------------------------------------------------------------------------------------------
// What map owns

BOOST_AUTO_TEST_CASE(rvalue_range_elements_are_moved_into_the_calls)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    std::vector<std::unique_ptr<int>> inputs;
    for (int i = 0; i < 5; ++i) {
        inputs.push_back(std::make_unique<int>(i));
    }
    auto results = pool.map([](std::unique_ptr<int> p) { return *p * 10; }, std::move(inputs));
    BOOST_TEST(read_outcomes(results) == values({0, 10, 20, 30, 40}));
}

BOOST_AUTO_TEST_CASE(lvalue_range_elements_are_copied_and_left_intact)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    const std::vector<std::string> inputs{"x", "yz"};
    auto results = pool.map([](std::string s) { return s.size(); }, inputs);
    std::vector<std::size_t> sizes;
    for (auto n : results) {
        sizes.push_back(n);
    }
    BOOST_TEST(sizes == (std::vector<std::size_t>{1, 2}));
    BOOST_TEST(inputs == (std::vector<std::string>{"x", "yz"}));
}

BOOST_AUTO_TEST_CASE(move_only_results_can_be_taken)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    auto results = pool.map([](int x) { return std::make_unique<int>(x); }, std::views::iota(0, 3));
    std::vector<std::unique_ptr<int>> taken;
    for (auto& p : results) {
        taken.push_back(std::move(p));
    }
    BOOST_REQUIRE(taken.size() == 3U);
    for (int i = 0; i < 3; ++i) {
        BOOST_REQUIRE(taken[static_cast<std::size_t>(i)] != nullptr);
        BOOST_TEST(*taken[static_cast<std::size_t>(i)] == i);
    }
}

BOOST_AUTO_TEST_CASE(input_only_ranges_are_accepted)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    CountingInput input(4);
    static_assert(!std::ranges::forward_range<CountingInput>);
    auto results = pool.map(square, input);
    BOOST_TEST(read_outcomes(results) == values({0, 1, 4, 9}));
}

BOOST_AUTO_TEST_CASE(destroying_results_midway_cancels_the_pending_calls)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 1}};
    Gate gate;
    Gate::Opener open_gate(gate);
    std::atomic<int> calls{0};
    {
        auto results = pool.map(
            [&](int x) {
                ++calls;
                if (x == 0) {
                    gate.wait();
                }
                return x;
            },
            std::views::iota(0, 10));
        BOOST_TEST(gate.wait_for_waiters(1));
    }
    gate.open();
    pool.shutdown();
    BOOST_TEST(calls.load() == 1); // 1..9 were cancelled
    BOOST_TEST(pool.stats().cancelled == 9U);
}

// ---------------------------------------------------------------------------------------------
// Views whose iterators point into their view (transform_view, filter_view, istream_view...):
// map must keep the view where its iterators point. `ParentCheckedView` detects an iterator used
// after its view moved or died without touching freed memory, so the check is exact in every
// build; the transform_view case is the real-world one (the ASan run reports it precisely).

BOOST_AUTO_TEST_CASE(map_keeps_a_view_and_its_iterators_together)
{
    futura::InlineExecutor executor;
    for (const bool buffered : {false, true}) {
        const auto before = ParentCheckedView::dangling_uses();
        const MapOptions options = buffered ? MapOptions{.buffersize = 1} : MapOptions{};
        auto rvalue = executor.map(square, ParentCheckedView(4, 10), options);
        BOOST_TEST(read_outcomes(rvalue) == values({0, 100, 400, 900}));
        const ParentCheckedView lvalue(3, 1);
        auto from_lvalue = executor.map(square, lvalue, options);
        BOOST_TEST(read_outcomes(from_lvalue) == values({0, 1, 4}));
        BOOST_TEST(ParentCheckedView::dangling_uses() == before,
                   "map used an iterator whose view had moved or died");
    }
}

BOOST_AUTO_TEST_CASE(map_over_a_transform_view)
{
    futura::InlineExecutor executor;
    const int offset = 1000;
    auto results =
        executor.map(square, std::views::iota(0, 4) |
                                 std::views::transform([offset](int x) { return x + offset; }));
    BOOST_TEST(read_outcomes(results) == values({1000000, 1002001, 1004004, 1006009}));
}

BOOST_AUTO_TEST_SUITE_END()

// ---- issue 10: Python habits -------------------------------------------------------------------

namespace {

std::atomic<int> printed{0};

void print_like(int x) // Python's print: returns nothing
{
    if (x < 0) {
        throw std::domain_error("negative");
    }
    printed.fetch_add(1);
}

void print_pair(int a, int b) { printed.fetch_add(a + b); }

} // namespace

BOOST_AUTO_TEST_SUITE(python_habits)

BOOST_AUTO_TEST_CASE(map_of_a_void_function_runs_every_call_and_yields_monostate)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    printed = 0;
    auto results = pool.map(print_like, std::views::iota(0, 100));
    static_assert(std::same_as<std::ranges::range_value_t<decltype(results)>, std::monostate>);
    BOOST_TEST(results.to_vector().size() == 100U); // Python: list(pool.map(print, xs))
    BOOST_TEST(printed.load() == 100);

    // An exception is thrown when its element is read, as for functions with a value.
    BOOST_CHECK_THROW((void)pool.map(print_like, std::vector{1, -1, 2}).to_vector(),
                      std::domain_error);

    printed = 0;
    futura::InlineExecutor inline_executor;
    const std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}};
    BOOST_TEST(inline_executor.starmap(print_pair, pairs).to_vector().size() == 2U);
    BOOST_TEST(printed.load() == 10);
}

BOOST_AUTO_TEST_CASE(to_vector_collects_the_results_in_one_expression)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 2}};
    const std::vector<int> squares = pool.map(square, std::views::iota(0, 6)).to_vector();
    BOOST_TEST(squares == (std::vector<int>{0, 1, 4, 9, 16, 25}));
    const auto doubled = pool.map(twice, std::vector<std::string>{"a", "bc"}).to_vector();
    BOOST_TEST(doubled == (std::vector<std::string>{"aa", "bcbc"}));
    // The part not yet read: what a partly read range still holds.
    auto results = pool.map(square, std::views::iota(0, 4));
    auto it = results.begin();
    ++it;
    BOOST_TEST(results.to_vector() == (std::vector<int>{1, 4, 9}));
}

BOOST_AUTO_TEST_SUITE_END()
