// Tests of futura::with_progress: what it yields, and what it draws, read back from a memory
// stream.
#include <futura/as_completed.hpp>
#include <futura/errors.hpp>
#include <futura/inline_executor.hpp>
#include <futura/progress.hpp>
#include <futura/thread_pool_executor.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ranges>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

/// A stream whose output the test reads back (`open_memstream`).
class Capture
{
public:
    Capture() : stream_(::open_memstream(&data_, &size_)) { BOOST_REQUIRE(stream_ != nullptr); }
    Capture(const Capture&) = delete;
    Capture& operator=(const Capture&) = delete;
    ~Capture()
    {
        std::fclose(stream_);
        std::free(data_); // NOLINT(cppcoreguidelines-no-malloc): open_memstream's buffer
    }

    [[nodiscard]] std::FILE* stream() const noexcept { return stream_; }

    /// Everything written so far.
    [[nodiscard]] std::string text() const
    {
        std::fflush(stream_);
        return {data_, size_};
    }

    /// The lines written so far (plain mode), without their '\n'.
    [[nodiscard]] std::vector<std::string> lines() const
    {
        std::vector<std::string> result;
        const std::string all = text();
        std::size_t from = 0;
        for (std::size_t nl = all.find('\n'); nl != std::string::npos; nl = all.find('\n', from)) {
            result.push_back(all.substr(from, nl - from));
            from = nl + 1;
        }
        BOOST_TEST(from == all.size(), "unterminated output: " << all.substr(from));
        return result;
    }

    /// The drawings of terminal mode: the text between '\r's, trailing blanks and '\n' removed.
    [[nodiscard]] std::vector<std::string> redraws() const
    {
        std::vector<std::string> result;
        const std::string all = text();
        for (std::size_t cr = all.find('\r'); cr != std::string::npos;) {
            const std::size_t next = all.find('\r', cr + 1);
            std::string drawing =
                all.substr(cr + 1, next == std::string::npos ? next : next - cr - 1);
            drawing.erase(drawing.find_last_not_of(" \n") + 1);
            result.push_back(std::move(drawing));
            cr = next;
        }
        return result;
    }

private:
    char* data_ = nullptr;
    std::size_t size_ = 0;
    std::FILE* stream_;
};

bool contains(const std::string& text, const std::string& part)
{
    return text.find(part) != std::string::npos;
}

std::vector<int> iota_vector(int n)
{
    std::vector<int> values;
    for (int i = 0; i < n; ++i) {
        values.push_back(i);
    }
    return values;
}

} // namespace

BOOST_AUTO_TEST_SUITE(progress)

BOOST_AUTO_TEST_CASE(yields_the_elements_in_order_and_prints_a_final_line)
{
    Capture out;
    const auto values = iota_vector(100);
    std::vector<int> seen;
    for (int x : futura::with_progress(
             values, {.label = "work", .stream = out.stream(), .terminal = false})) {
        seen.push_back(x);
    }
    BOOST_TEST(seen == values);
    const auto lines = out.lines();
    BOOST_TEST_REQUIRE(!lines.empty());
    const std::string& last = lines.back();
    BOOST_TEST(last.starts_with("work  [####################]  100/100  100%  "), last);
    BOOST_TEST(contains(last, " it/s  elapsed 0:00:0"), last);
    BOOST_TEST(!contains(last, "eta"), last); // nothing is left to estimate
    BOOST_TEST(!contains(out.text(), "\r"));
}

BOOST_AUTO_TEST_CASE(references_are_preserved)
{
    Capture out;
    std::vector<int> values = iota_vector(5);
    auto range = futura::with_progress(values, {.stream = out.stream(), .terminal = false});
    static_assert(std::same_as<std::ranges::range_reference_t<decltype(range)>, int&>);
    static_assert(std::ranges::input_range<decltype(range)>);
    static_assert(std::ranges::view<decltype(range)>);
    static_assert(std::ranges::sized_range<decltype(range)>);
    BOOST_TEST(range.size() == 5U);
    for (int& x : range) {
        x *= 10;
    }
    BOOST_TEST(values == (std::vector<int>{0, 10, 20, 30, 40}));

    futura::InlineExecutor inline_executor;
    std::vector<futura::Future<int>> futures{inline_executor.submit([] { return 1; })};
    using AsCompletedProgress = decltype(futura::with_progress(futura::as_completed(futures)));
    static_assert(std::same_as<std::ranges::range_reference_t<AsCompletedProgress>,
                               const futura::Future<int>&>);
}

BOOST_AUTO_TEST_CASE(an_rvalue_range_is_owned_and_composes_with_views)
{
    Capture out;
    std::vector<int> doubled;
    for (int x : futura::with_progress(std::vector<int>{1, 2, 3},
                                       {.stream = out.stream(), .terminal = false}) |
                     std::views::transform([](int v) { return 2 * v; })) {
        doubled.push_back(x);
    }
    BOOST_TEST(doubled == (std::vector<int>{2, 4, 6}));
    BOOST_TEST(contains(out.lines().back(), "3/3"));
}

BOOST_AUTO_TEST_CASE(plain_mode_prints_periodic_lines_at_most_once_a_second)
{
    // The loop takes at least 1.2 s (sleeps only overshoot), so one periodic line must appear;
    // the test then bounds the count by the time it really took.
    Capture out;
    constexpr int count = 240;
    const auto t0 = std::chrono::steady_clock::now();
    for (int x :
         futura::with_progress(std::views::iota(0, count),
                               {.stream = out.stream(), .terminal = false, .min_interval = 0s})) {
        static_cast<void>(x);
        std::this_thread::sleep_for(5ms);
    }
    const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0);
    const auto lines = out.lines();
    BOOST_TEST_REQUIRE(lines.size() >= 2U);
    BOOST_TEST(static_cast<double>(lines.size() - 1) <= seconds.count() + 0.001);
    for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
        BOOST_TEST(contains(lines[i], "/240  "), lines[i]);
        BOOST_TEST(contains(lines[i], "  eta "), lines[i]);
    }
    BOOST_TEST(lines.back().starts_with("[####################]  240/240  100%  "), lines.back());
}

BOOST_AUTO_TEST_CASE(terminal_mode_redraws_one_line_in_place)
{
    Capture out;
    const auto values = iota_vector(4);
    for (int x : futura::with_progress(
             values,
             {.label = "sq", .stream = out.stream(), .terminal = true, .min_interval = 0s})) {
        static_cast<void>(x);
    }
    const std::string text = out.text();
    BOOST_TEST(text.starts_with("\r"));
    BOOST_TEST(std::ranges::count(text, '\n') == 1);
    BOOST_TEST(text.ends_with("\n"));
    const auto drawings = out.redraws();
    // The empty bar, one drawing per element (no minimum interval), the final one.
    BOOST_TEST_REQUIRE(drawings.size() == 6U);
    BOOST_TEST(drawings.front().starts_with("sq  [--------------------]  0/4  0%  ? it/s  "),
               drawings.front());
    BOOST_TEST(drawings.front().ends_with("  eta ?"), drawings.front());
    BOOST_TEST(drawings[2].starts_with("sq  [##########----------]  2/4  50%  "), drawings[2]);
    BOOST_TEST(contains(drawings[2], "  eta 0:"), drawings[2]); // an estimate, from the rate
    BOOST_TEST(drawings.back().starts_with("sq  [####################]  4/4  100%  "),
               drawings.back());
    BOOST_TEST(!contains(drawings.back(), "eta"), drawings.back());
}

BOOST_AUTO_TEST_CASE(terminal_mode_respects_the_minimum_interval)
{
    Capture out;
    for (int x :
         futura::with_progress(std::views::iota(0, 10'000),
                               {.stream = out.stream(), .terminal = true, .min_interval = 1h})) {
        static_cast<void>(x);
    }
    BOOST_TEST(out.redraws().size() == 2U); // the empty bar and the final one
}

BOOST_AUTO_TEST_CASE(early_break_prints_the_partial_count)
{
    Capture out;
    const auto values = iota_vector(20);
    {
        for (int x : futura::with_progress(values, {.stream = out.stream(), .terminal = false})) {
            if (x == 10) {
                break; // 0..9 were done; 10 was read but not finished
            }
        }
        const auto lines = out.lines();
        BOOST_TEST_REQUIRE(lines.size() == 1U);
        BOOST_TEST(lines.back().starts_with("[##########----------]  10/20  50%  "), lines.back());
    }
}

BOOST_AUTO_TEST_CASE(a_range_never_iterated_prints_zero_done_when_destroyed)
{
    Capture out;
    {
        auto range = futura::with_progress(std::vector<int>{1, 2, 3},
                                           {.stream = out.stream(), .terminal = false});
        BOOST_TEST(out.text().empty()); // nothing before iterating (lazy)
    }
    BOOST_TEST(contains(out.lines().back(), "0/3  0%"), out.text());
}

BOOST_AUTO_TEST_CASE(timeout_of_as_completed_passes_through)
{
    Capture out;
    futura::Promise<int> finished;
    futura::Promise<int> never_finished;
    finished.set_result(1);
    const std::vector<futura::Future<int>> futures{finished.get_future(),
                                                   never_finished.get_future()};
    int sum = 0;
    auto loop = [&] {
        for (const auto& f : futura::with_progress(futura::as_completed(futures, 50ms),
                                                   {.stream = out.stream(), .terminal = false})) {
            sum += f.result();
        }
    };
    BOOST_CHECK_THROW(loop(), futura::TimeoutError);
    BOOST_TEST(sum == 1);
    BOOST_TEST(contains(out.lines().back(), "1/2  50%"), out.text()); // total from size()
}

BOOST_AUTO_TEST_CASE(an_exception_of_map_passes_through)
{
    Capture out;
    futura::InlineExecutor executor;
    const auto inputs = iota_vector(10);
    auto fail_on_five = [](int x) {
        if (x == 5) {
            throw std::domain_error("five");
        }
        return x;
    };
    std::vector<int> seen;
    auto loop = [&] {
        for (int y : futura::with_progress(
                 executor.map(fail_on_five, inputs),
                 {.total = inputs.size(), .stream = out.stream(), .terminal = false})) {
            seen.push_back(y);
        }
    };
    BOOST_CHECK_THROW(loop(), std::domain_error);
    BOOST_TEST(seen == (std::vector<int>{0, 1, 2, 3, 4}));
    BOOST_TEST(contains(out.lines().back(), "5/10  50%"), out.text());
}

BOOST_AUTO_TEST_CASE(an_unsized_range_without_total_shows_no_eta)
{
    Capture out;
    auto evens = std::views::iota(0, 10) | std::views::filter([](int x) { return x % 2 == 0; });
    static_assert(!std::ranges::sized_range<decltype(evens)>);
    std::vector<int> seen;
    for (int x : futura::with_progress(
             evens,
             {.label = "evens", .stream = out.stream(), .terminal = true, .min_interval = 0s})) {
        seen.push_back(x);
    }
    BOOST_TEST(seen == (std::vector<int>{0, 2, 4, 6, 8}));
    const auto drawings = out.redraws();
    BOOST_TEST_REQUIRE(drawings.size() == 7U);
    for (const auto& drawing : drawings) {
        BOOST_TEST(!contains(drawing, "eta"), drawing);
        BOOST_TEST(!contains(drawing, "%"), drawing);
        BOOST_TEST(!contains(drawing, "["), drawing);
    }
    BOOST_TEST(drawings.back().starts_with("evens  5/?  "), drawings.back());
}

BOOST_AUTO_TEST_CASE(the_total_option_overrides_the_size)
{
    Capture out;
    for (int x : futura::with_progress(iota_vector(10),
                                       {.total = 40, .stream = out.stream(), .terminal = false})) {
        static_cast<void>(x);
    }
    BOOST_TEST(out.lines().back().starts_with("[#####---------------]  10/40  25%  "), out.text());
}

BOOST_AUTO_TEST_CASE(a_zero_length_range_is_complete_at_once)
{
    Capture out;
    int iterations = 0;
    for (int x :
         futura::with_progress(std::vector<int>{}, {.stream = out.stream(), .terminal = false})) {
        static_cast<void>(x);
        ++iterations;
    }
    BOOST_TEST(iterations == 0);
    const auto lines = out.lines();
    BOOST_TEST_REQUIRE(lines.size() == 1U);
    BOOST_TEST(lines.back().starts_with("[####################]  0/0  100%  ? it/s  "),
               lines.back());

    Capture unsized;
    for (int x : futura::with_progress(std::views::iota(0, 0) |
                                           std::views::filter([](int) { return true; }),
                                       {.stream = unsized.stream(), .terminal = false})) {
        static_cast<void>(x);
    }
    BOOST_TEST(unsized.lines().back().starts_with("0/?  ? it/s  elapsed 0:00:00"), unsized.text());
}

BOOST_AUTO_TEST_CASE(works_with_a_thread_pool)
{
    futura::ThreadPoolExecutor pool{{.max_workers = 4}};
    std::vector<futura::Future<int>> futures;
    for (int i = 0; i < 200; ++i) {
        futures.push_back(pool.submit([](int x) { return x * x; }, i));
    }
    Capture squares;
    long sum = 0;
    for (const auto& f : futura::with_progress(
             futura::as_completed(futures),
             {.label = "squares", .stream = squares.stream(), .terminal = false})) {
        sum += f.result();
    }
    BOOST_TEST(sum == 2'646'700); // sum of i*i for i < 200
    BOOST_TEST(squares.lines().back().starts_with("squares  [####################]  200/200  "),
               squares.text());

    Capture mapped;
    const auto xs = iota_vector(100);
    std::vector<int> results;
    for (int y : futura::with_progress(
             pool.map([](int x) { return x + 1; }, xs),
             {.total = xs.size(), .stream = mapped.stream(), .terminal = false})) {
        results.push_back(y);
    }
    BOOST_TEST_REQUIRE(results.size() == 100U);
    BOOST_TEST(results.front() == 1);
    BOOST_TEST(results.back() == 100);
    BOOST_TEST(contains(mapped.lines().back(), "100/100  100%"), mapped.text());
}

BOOST_AUTO_TEST_CASE(an_unwritable_stream_is_ignored)
{
    std::FILE* read_only = std::fopen("/dev/null", "r");
    BOOST_TEST_REQUIRE(read_only != nullptr);
    int sum = 0;
    BOOST_CHECK_NO_THROW({
        for (int x : futura::with_progress(
                 iota_vector(10), {.stream = read_only, .terminal = true, .min_interval = 0s})) {
            sum += x;
        }
    });
    BOOST_TEST(sum == 45);
    std::fclose(read_only);
}

BOOST_AUTO_TEST_SUITE_END()
