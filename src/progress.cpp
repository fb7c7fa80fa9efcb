// The drawing side of with_progress. It runs in the iterating thread, between elements, so it
// must be cheap when there is nothing to draw (one clock read per element) and must never throw
// into the user's loop: every drawing swallows its errors, and write errors are ignored.
#include <futura/progress.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <string>
#include <sys/ioctl.h>
#include <unistd.h>
#include <utility>

namespace futura::detail {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t bar_cells = 20;

/// `interval` as a clock duration, clamped to [0, 1e6 s] so that the conversion cannot overflow.
Clock::duration clock_interval(std::chrono::duration<double> interval)
{
    const std::chrono::duration<double> clamped = std::clamp(
        interval, std::chrono::duration<double>(0.0), std::chrono::duration<double>(1e6));
    return std::chrono::duration_cast<Clock::duration>(clamped);
}

/// `H:MM:SS`, e.g. `0:00:12`.
std::string format_time(double seconds)
{
    const auto total = static_cast<long long>(std::max(0.0, std::floor(seconds))); // as a clock
    std::array<char, 32> text{};
    std::snprintf(text.data(), text.size(), "%lld:%02lld:%02lld", total / 3600, total / 60 % 60,
                  total % 60);
    return text.data();
}

/// Items per second with an SI prefix (`4.1k it/s`), or seconds per item when slower than one
/// a second (`2.50 s/it`), as tqdm does.
std::string format_rate(std::size_t done, double seconds)
{
    if (done == 0 || seconds <= 0.0) {
        return "? it/s";
    }
    double rate = static_cast<double>(done) / seconds;
    std::array<char, 32> text{};
    if (rate < 1.0) {
        std::snprintf(text.data(), text.size(), "%.2f s/it", 1.0 / rate);
        return text.data();
    }
    constexpr std::array<const char*, 5> prefixes{"", "k", "M", "G", "T"};
    std::size_t prefix = 0;
    while (rate >= 999.95 && prefix + 1 < prefixes.size()) { // 999.96 prints as 1.0k, not 1000.0
        rate /= 1000.0;
        ++prefix;
    }
    std::snprintf(text.data(), text.size(), "%.1f%s it/s", rate, prefixes.at(prefix));
    return text.data();
}

/// Cuts `text` to at most `size` bytes without splitting a UTF-8 character.
void truncate_utf8(std::string& text, std::size_t size)
{
    if (text.size() <= size) {
        return;
    }
    // Back up over continuation bytes (10xxxxxx) to the start of the character that was cut.
    while (size > 0 && (static_cast<unsigned char>(text[size]) & 0xC0U) == 0x80U) {
        --size;
    }
    text.resize(size);
}

/// The width of the terminal behind `stream`, or 0 if unknown.
std::size_t terminal_columns(std::FILE* stream) noexcept
{
    const int fd = ::fileno(stream);
    winsize size{};
    if (fd < 0 || ::ioctl(fd, TIOCGWINSZ, &size) != 0) {
        return 0;
    }
    return size.ws_col;
}

} // namespace

ProgressBar::ProgressBar(ProgressOptions options, std::optional<std::size_t> size)
    : label_(std::move(options.label)), total_(options.total ? options.total : size),
      stream_(options.stream != nullptr ? options.stream : stderr),
      terminal_(options.terminal ? *options.terminal : ::isatty(::fileno(stream_)) == 1),
      // A log gets at most a line a second, however often a terminal is redrawn.
      interval_(clock_interval(
          terminal_ ? options.min_interval
                    : std::max(options.min_interval, std::chrono::duration<double>(1.0)))),
      start_(Clock::now()), last_draw_(start_)
{}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::start() noexcept
{
    if (started_) {
        return;
    }
    started_ = true;
    start_ = Clock::now();
    last_draw_ = start_;
    if (terminal_) {
        draw(false); // the empty bar, so that the user sees at once what is being waited for
    }
}

void ProgressBar::advance() noexcept
{
    ++done_;
    if (finished_) {
        return;
    }
    start();
    if (Clock::now() - last_draw_ >= interval_) {
        draw(false);
    }
}

void ProgressBar::finish() noexcept
{
    if (finished_) {
        return;
    }
    start();
    finished_ = true;
    draw(true);
}

void ProgressBar::draw(bool final) noexcept
{
    try {
        const auto now = Clock::now();
        last_draw_ = now;
        const double elapsed = std::chrono::duration<double>(now - start_).count();

        std::string line; // all but the label
        line.reserve(96);
        if (total_) {
            // Nothing to do is all done: an empty range shows a full bar.
            const double fraction =
                *total_ == 0 ? 1.0 : static_cast<double>(done_) / static_cast<double>(*total_);
            const auto filled = static_cast<std::size_t>(std::clamp(
                fraction * static_cast<double>(bar_cells), 0.0, static_cast<double>(bar_cells)));
            line += '[';
            line.append(filled, '#');
            line.append(bar_cells - filled, '-');
            line += "]  ";
            line += std::to_string(done_) + '/' + std::to_string(*total_) + "  ";
            line += std::to_string(static_cast<long long>(std::floor(fraction * 100.0))) + "%  ";
        } else {
            line += std::to_string(done_) + "/?  ";
        }
        line += format_rate(done_, elapsed);
        line += "  elapsed " + format_time(elapsed);
        if (total_ && !final) {
            // The average rate so far: steadier than a recent one when as_completed yields the
            // futures that were already done in a burst at the start.
            line += "  eta ";
            if (done_ >= *total_) {
                line += format_time(0.0);
            } else if (done_ == 0 || elapsed <= 0.0) {
                line += '?';
            } else {
                const auto left = static_cast<double>(*total_ - done_);
                line += format_time(left * elapsed / static_cast<double>(done_));
            }
        }

        // A line wider than the terminal would wrap, and '\r' would then go back to the start
        // of its last row only: keep it within the width, shortening the label first.
        const std::size_t width = terminal_ ? terminal_columns(stream_) : 0;
        const std::size_t fits = width > 1 ? width - 1 : std::string::npos;
        constexpr std::size_t gap = 2; // between the label and the rest
        std::string label = label_;
        if (label.size() + gap + line.size() > fits) {
            truncate_utf8(label, line.size() + gap < fits ? fits - line.size() - gap : 0);
            truncate_utf8(line, fits);
        }
        if (!label.empty()) {
            line.insert(0, label + std::string(gap, ' '));
        }

        std::string out;
        if (terminal_) {
            out += '\r';
            out += line;
            const std::size_t blank = std::min(last_width_, fits);
            if (blank > line.size()) {
                out.append(blank - line.size(), ' '); // the rest of a longer line
            }
            last_width_ = line.size();
            if (final) {
                out += '\n';
            }
        } else {
            out = std::move(line);
            out += '\n';
        }
        // One write per drawing, so that a concurrent writer cannot split the line.
        std::fwrite(out.data(), 1, out.size(), stream_);
        std::fflush(stream_);
    } catch (...) { // NOLINT(bugprone-empty-catch): a progress display must not break the loop
    }
}

} // namespace futura::detail
