#!/bin/sh
# The quick start's compile line by hand, for a futura installed where the compiler looks
# (/usr/local, or the directories in CPATH and LIBRARY_PATH). doc/quickstart.md copies the line
# from here (scripts/check-docs checks the copy), and CI runs this file on test/consumer/main.cpp
# against the library it installed (scripts/test, stage consumer), so the line always links.
#
# Usage: sh example/build_by_hand.sh   in a directory holding app.cpp; writes ./app
set -eu
# [compile-by-hand]
g++ -std=c++20 -O2 app.cpp -o app \
    -lfutura -lboost_serialization -lboost_stacktrace_backtrace -ldl -pthread \
    -Wl,--wrap=main -Wl,--undefined=main
# [compile-by-hand-end]
