// What the process-pool benchmark and its pipe ping-pong floor share: statistics, number
// formatting, the command line, and the `result` lines through which out-of-process peers (the
// Python peer, the ping-pong) hand their figures to the harness that prints the table.
//
// A `result` line is one figure of one implementation in one group of the table:
//
//   result group=w5_p50 impl=pipe_pinned label=bare%20pipe%20ping-pong n=2000 reps=8
//          median=23.1 min=21.9 max=25.0
//
// on one line, values without spaces (a label writes them `%20`). `median` is the figure;
// `min`/`max` its spread over repetitions (rounds, for latency percentiles).
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <fstream>
#include <map>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace futura_bench {

using Clock = std::chrono::steady_clock;

/// A wrong result, a bad command line or an unreadable peer file: ends the run, exit status 1.
class BenchError : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

[[noreturn]] inline void fail(const std::string& what) { throw BenchError(what); }

inline double seconds_since(Clock::time_point start)
{
    return std::chrono::duration<double>(Clock::now() - start).count();
}

inline double micros(Clock::duration span)
{
    return std::chrono::duration<double, std::micro>(span).count();
}

/// Nearest-rank percentile, `p` in (0, 1]; 0 for no samples. (The Python peer computes it alike.)
inline double percentile(std::vector<double> samples, double p)
{
    if (samples.empty()) {
        return 0.0;
    }
    const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(samples.size())));
    const auto index = std::clamp<std::size_t>(rank, 1, samples.size()) - 1;
    std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(index),
                     samples.end());
    return samples[index];
}

inline double median(const std::vector<double>& samples) { return percentile(samples, 0.5); }

/// One figure of one implementation: a row of the table.
struct Row
{
    std::string group; ///< which comparison: w4_submit, w5_p50, ...
    std::string impl;  ///< a short id: futura_submit, python_pool_map, ...
    std::string label; ///< what the table shows
    bool is_futura = false;
    long long n = 0; ///< tasks (or round trips) per repetition
    std::size_t reps = 0;
    double median = 0;
    double min = 0;
    double max = 0;
};

/// A row from repeated measurements: their median and extremes.
inline Row summarise(std::string group, std::string impl, std::string label, long long n,
                     const std::vector<double>& values)
{
    Row row{std::move(group), std::move(impl), std::move(label), false, n, values.size()};
    if (!values.empty()) {
        row.median = median(values);
        row.min = *std::min_element(values.begin(), values.end());
        row.max = *std::max_element(values.begin(), values.end());
    }
    return row;
}

inline std::string encode_spaces(std::string_view text)
{
    std::string encoded;
    for (const char c : text) {
        encoded += c == ' ' ? std::string_view("%20") : std::string_view(&c, 1);
    }
    return encoded;
}

inline std::string decode_spaces(std::string_view text)
{
    std::string decoded;
    for (std::size_t at = 0; at < text.size(); ++at) {
        if (text.substr(at, 3) == "%20") {
            decoded += ' ';
            at += 2;
        } else {
            decoded += text[at];
        }
    }
    return decoded;
}

inline void print_row(std::ostream& out, const Row& row)
{
    out << "result group=" << row.group << " impl=" << row.impl
        << " label=" << encode_spaces(row.label) << " n=" << row.n << " reps=" << row.reps
        << " median=" << row.median << " min=" << row.min << " max=" << row.max << '\n';
}

/// The `result` lines of file `path` (other lines are ignored). @throws BenchError if the file
/// cannot be read, has no result line, or a value is not a number.
inline std::vector<Row> read_rows(const std::string& path)
{
    std::ifstream in(path);
    if (!in) {
        fail("cannot read peer results from " + path);
    }
    const auto number = [&](const std::map<std::string, std::string>& fields,
                            const std::string& key) {
        const auto it = fields.find(key);
        if (it == fields.end()) {
            return 0.0;
        }
        try {
            return std::stod(it->second);
        } catch (const std::exception&) {
            fail("bad value for " + key + " in " + path + ": " + it->second);
        }
    };
    std::vector<Row> rows;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string word;
        if (!(words >> word) || word != "result") {
            continue;
        }
        std::map<std::string, std::string> fields;
        while (words >> word) {
            const auto eq = word.find('=');
            if (eq != std::string::npos) {
                fields[word.substr(0, eq)] = word.substr(eq + 1);
            }
        }
        Row row;
        row.group = fields["group"];
        row.impl = fields["impl"];
        row.label = decode_spaces(fields["label"]);
        row.n = std::llround(number(fields, "n"));
        row.reps = static_cast<std::size_t>(number(fields, "reps"));
        row.median = number(fields, "median");
        row.min = number(fields, "min");
        row.max = number(fields, "max");
        rows.push_back(std::move(row));
    }
    if (rows.empty()) {
        fail("no `result` line in " + path);
    }
    return rows;
}

/// `value` rounded to an integer, with thousands separators: 1,234,567.
template <class Number>
std::string grouped(Number value)
{
    const auto digits = std::to_string(std::llround(static_cast<double>(value)));
    const std::size_t sign = digits.starts_with('-') ? 1 : 0;
    std::string text;
    for (std::size_t k = 0; k < digits.size(); ++k) {
        if (k > sign && (digits.size() - k) % 3 == 0) {
            text += ',';
        }
        text += digits[k];
    }
    return text;
}

inline std::string fixed(double value, int decimals)
{
    std::array<char, 64> text{};
    std::snprintf(text.data(), text.size(), "%.*f", decimals, value);
    return text.data();
}

/// A positive integer option value. @throws BenchError otherwise.
inline long long to_count(std::string_view text, std::string_view option)
{
    long long value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || value <= 0) {
        fail("--" + std::string(option) + " needs a positive integer, not '" + std::string(text) +
             "'");
    }
    return value;
}

inline std::vector<std::string> split(std::string_view text)
{
    std::vector<std::string> parts;
    while (!text.empty()) {
        const auto comma = text.find(',');
        parts.emplace_back(text.substr(0, comma));
        text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    }
    return parts;
}

/// `--key=value` arguments in order. @throws BenchError on anything else.
inline std::vector<std::pair<std::string, std::string>> options(int argc, char** argv,
                                                                std::string_view usage)
{
    std::vector<std::pair<std::string, std::string>> parsed;
    for (int k = 1; k < argc; ++k) {
        const std::string_view arg = argv[k];
        if (arg == "--help" || arg == "-h") {
            parsed.emplace_back("help", "");
            continue;
        }
        const auto eq = arg.find('=');
        if (!arg.starts_with("--") || eq == std::string_view::npos) {
            fail("unknown argument '" + std::string(arg) + "'\n" + std::string(usage));
        }
        parsed.emplace_back(arg.substr(2, eq - 2), arg.substr(eq + 1));
    }
    return parsed;
}

} // namespace futura_bench
