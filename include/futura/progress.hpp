// futura::with_progress: a progress bar on stderr while iterating a range (like tqdm).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <utility>

namespace futura {

/// Options of `futura::with_progress`, for designated initializers:
/// `futura::with_progress(futura::as_completed(futures), {.label = "squares"})`.
struct ProgressOptions
{
    /// Printed before the bar.
    std::string label = {};
    /// How many elements the range yields. None: `std::ranges::size(range)` if the range is
    /// sized (`as_completed`'s is), else unknown, and the display shows no bar, percentage or ETA.
    std::optional<std::size_t> total = std::nullopt;
    /// Where the display goes; null means `stderr`. Write errors are ignored.
    std::FILE* stream = nullptr;
    /// True: one line redrawn in place with `'\r'`. False: a new line now and then, for logs.
    /// None: true if the stream is a terminal (`isatty`).
    std::optional<bool> terminal = std::nullopt;
    /// Redraw at most this often; lines for logs come at most once per `max(1 s, min_interval)`.
    std::chrono::duration<double> min_interval = std::chrono::milliseconds(100);
};

namespace detail {

/// The type-independent part of `with_progress`: counting, timing, formatting and drawing.
/// Drawing never throws; it happens when the count changes (no thread of its own).
class ProgressBar
{
public:
    ProgressBar(ProgressOptions options, std::optional<std::size_t> size);
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;
    /// Calls `finish()`.
    ~ProgressBar();

    /// Restarts the clock and, on a terminal, draws the empty bar; once, on the first call.
    void start() noexcept;
    /// Counts one element; redraws if the last drawing is old enough.
    void advance() noexcept;
    /// Draws the final line (the count so far, total rate and elapsed time); once.
    void finish() noexcept;

private:
    void draw(bool final) noexcept;

    std::string label_;
    std::optional<std::size_t> total_;
    std::FILE* stream_;
    bool terminal_;
    std::chrono::steady_clock::duration interval_;
    std::size_t done_ = 0;
    std::chrono::steady_clock::time_point start_;
    std::chrono::steady_clock::time_point last_draw_;
    std::size_t last_width_ = 0; // of the line on screen, to blank what a shorter one leaves
    bool started_ = false;
    bool finished_ = false;
};

} // namespace detail

/// The range `futura::with_progress` returns: the elements of `V`, counted on a progress bar.
///
/// An input range (and a view) yielding what `V` yields, references included. The final line
/// is drawn when iteration reaches the end, or when this range is destroyed before then (also
/// when an exception from `V`'s iterator ends the loop).
///
/// @par Thread safety
/// Distinct objects: safe. Shared objects: unsafe.
template <std::ranges::view V>
    requires(std::ranges::input_range<V>)
class ProgressView : public std::ranges::view_interface<ProgressView<V>>
{
public:
    class sentinel;

    class iterator
    {
    public:
        using iterator_concept = std::input_iterator_tag;
        using value_type = std::ranges::range_value_t<V>;
        using difference_type = std::ranges::range_difference_t<V>;

        iterator() requires std::default_initializable<std::ranges::iterator_t<V>>
        = default;
        /// The element of the underlying range; its exceptions pass through.
        decltype(auto) operator*() const { return *current_; }
        iterator& operator++()
        {
            ++current_;
            bar_->advance(); // counted once the underlying increment has succeeded
            return *this;
        }
        void operator++(int) { ++*this; }
        friend std::ranges::range_rvalue_reference_t<V> iter_move(const iterator& it)
        {
            return std::ranges::iter_move(it.current_);
        }

    private:
        friend class ProgressView;
        friend class sentinel;
        iterator(std::ranges::iterator_t<V> current, detail::ProgressBar* bar)
            : current_(std::move(current)), bar_(bar)
        {}
        std::ranges::iterator_t<V> current_ = {};
        detail::ProgressBar* bar_ = nullptr;
    };

    class sentinel
    {
    public:
        sentinel() = default;
        /// Reaching the end draws the final line.
        friend bool operator==(const iterator& it, const sentinel& end) { return end.reached(it); }

    private:
        friend class ProgressView;
        explicit sentinel(std::ranges::sentinel_t<V> end) : end_(std::move(end)) {}
        bool reached(const iterator& it) const
        {
            if (it.current_ != end_) {
                return false;
            }
            it.bar_->finish();
            return true;
        }
        std::ranges::sentinel_t<V> end_ = {};
    };

    ProgressView(V base, ProgressOptions options)
        : base_(std::move(base)),
          bar_(std::make_unique<detail::ProgressBar>(std::move(options), size_of(base_)))
    {}

    [[nodiscard]] iterator begin()
    {
        auto first = std::ranges::begin(base_);
        bar_->start(); // the clock starts with the iteration, not when the range was made
        return iterator(std::move(first), bar_.get());
    }
    [[nodiscard]] sentinel end() { return sentinel(std::ranges::end(base_)); }
    [[nodiscard]] auto size() requires std::ranges::sized_range<V>
    {
        return std::ranges::size(base_);
    }

private:
    static std::optional<std::size_t> size_of(V& base)
    {
        if constexpr (std::ranges::sized_range<V>) {
            return static_cast<std::size_t>(std::ranges::size(base));
        } else {
            return std::nullopt;
        }
    }

    V base_;
    std::unique_ptr<detail::ProgressBar> bar_; // on the heap: iterators keep pointing at it
};

/// Iterates `range` as it is, showing progress on stderr: done/total, rate, elapsed time and
/// the time left, like Python's tqdm. On a terminal one line is redrawn in place; otherwise
/// (a log, a CI job) a line is printed at most once a second, plus a final one.
///
/// The result is lazy and yields exactly the elements of `range`, references included; an
/// exception from `range`'s iterator (e.g. `TimeoutError` from `as_completed`) passes through.
/// An element counts once the loop moves past it. The display changes only as elements come:
/// while the loop waits for the next one, it stands still.
///
/// @par Example
/// @code
/// for (const auto& f : futura::with_progress(futura::as_completed(fs), {.label = "squares"})) {
///     total += f.result();
/// }
/// // squares  [##########----------]  512/1000  51%  4.1k it/s  elapsed 0:00:12  eta 0:00:11
/// for (int y : futura::with_progress(pool.map(square, xs), {.total = xs.size()})) { ... }
/// @endcode
///
/// @par Thread safety
/// Distinct objects: safe. Shared objects: unsafe. Other output to the same terminal while the
/// bar is drawn in place mixes with it.
///
/// @param range any input range; an lvalue is referred to, an rvalue is moved into the result.
/// @param options the label, total, stream and redraw rate.
template <std::ranges::input_range R>
    requires(std::ranges::viewable_range<R>)
[[nodiscard]] auto with_progress(R&& range, ProgressOptions options = {})
{
    return ProgressView<std::views::all_t<R>>(std::views::all(std::forward<R>(range)),
                                              std::move(options));
}

} // namespace futura
