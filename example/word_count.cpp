// Workers count the words of files into one dictionary that every process shares: the program
// that Python writes with a Manager,
//
//     with Manager() as manager, ProcessPoolExecutor() as pool:
//         counts = manager.dict()
//         lock = manager.Lock()
//         for path in paths:
//             pool.submit(count_words, path, counts, lock)
//
//     def count_words(path, counts, lock):
//         for word in open(path).read().split():
//             with lock:                      # d[k] += 1 alone is not atomic
//                 counts[word] = counts.get(word, 0) + 1
//
// where every access is a round trip to the manager's server process. Here the dictionary is
// in shared memory, and `update` is the atomic `d[k] += 1`.
//
// The lines between `// [name]` and `// [name-end]` are shown in the docs verbatim
// (doc/shared_memory.md; scripts/check-docs keeps them equal).
#include <futura/futura.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <ranges>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

// [count]
// A word is a key of at most 24 bytes, stored inline: a std::string cannot live in shared
// memory, whose bytes must mean the same in every process.
using Word = futura::SharedString<24>;
using Counts = futura::SharedDict<Word, long>;

// Runs in a worker process: `counts` is a handle to the dictionary every worker shares.
long count_words(std::string path, Counts counts)
{
    std::ifstream in(path);
    std::string word;
    long words = 0;
    while (in >> word) {
        if (word.size() > Word::max_size()) {
            continue; // longer than a key can be (Word("...") would throw std::length_error)
        }
        counts.update(word, [](long& n) { ++n; }); // d[word] += 1, atomic across processes
        ++words;
    }
    return words;
}
// [count-end]

namespace {

// Writes `n` small text files into `directory`; returns their paths.
std::vector<std::filesystem::path> write_files(const std::filesystem::path& directory, int n)
{
    const std::vector<std::string> vocabulary = {"the",    "futures", "of", "processes", "share",
                                                 "memory", "without", "a",  "server"};
    std::vector<std::filesystem::path> paths;
    for (int f = 0; f < n; ++f) {
        paths.push_back(directory / ("part-" + std::to_string(f) + ".txt"));
        std::ofstream out(paths.back());
        for (int i = 0; i < 2000; ++i) {
            // "the" is every other word; the others take turns.
            out << (i % 2 == 0 ? vocabulary[0]
                               : vocabulary[static_cast<std::size_t>(1 + (i / 2 + f) % 8)])
                << ' ';
        }
    }
    return paths;
}

} // namespace

int main()
{
    const auto directory = std::filesystem::temp_directory_path() /
                           ("futura-word-count-" + std::to_string(::getpid()));
    std::filesystem::create_directories(directory);
    const auto paths = write_files(directory, 8);

    // [run]
    futura::ProcessPoolExecutor pool;
    const Counts counts{{.capacity = 1 << 20}}; // 1 MiB of entries, allocated up front

    std::vector<futura::Future<long>> files;
    for (const auto& path : paths) {
        files.push_back(pool.submit(count_words, path.string(), counts));
    }
    long total = 0;
    for (auto& file : files) {
        total += file.result();
    }

    // A snapshot is a std::map copy, taken under the lock: sort it by count.
    auto snapshot = counts.snapshot();
    std::vector<std::pair<Word, long>> top(snapshot.begin(), snapshot.end());
    std::ranges::sort(top, [](const auto& a, const auto& b) { return a.second > b.second; });
    for (const auto& [word, n] : top | std::views::take(3)) {
        std::cout << word << ": " << n << '\n'; // the: 8000, then 1000 for each other word
    }
    // [run-end]

    std::filesystem::remove_all(directory);
    long counted = 0;
    for (const auto& [word, n] : snapshot) {
        counted += n;
    }
    const bool right = total == 16'000 && counted == total && counts.get("the") == 8000L &&
                       counts.get("server") == 1000L && counts.size() == 9;
    std::cout << total << " words, " << counts.size()
              << " distinct: " << (right ? "as expected" : "WRONG") << '\n';
    return right ? 0 : 1;
}
