#!/usr/bin/python3
"""Build cost: the compile time and peak compiler memory of one translation unit, against the
headers of this tree and of a baseline commit, in one run (so that the ratios compare figures
measured under the same load).

Each case compiles one source file (`-c`, the flags of a Release build) several times with
/usr/bin/time and reports the median CPU time of the compiler (user + system: unlike the wall
time, it hardly depends on what else the machine runs), the median wall time, and the median
peak resident set. Prints the Markdown table on stdout and, on stderr, `result` lines in
bench/harness.hpp's format for bench/charts.py.

Usage: bench/build_cost.py --baseline=DIR [--reps=N] [--cxx=g++]
  DIR: a copy of the baseline commit's tree (scripts/bench makes it with git archive).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["-std=c++20", "-O3", "-DNDEBUG", "-c", "-o", os.devnull]


def measure(cxx: str, include: Path, source: Path,
            reps: int) -> tuple[list[float], list[float], list[float]]:
    """CPU seconds, wall seconds and peak MiB of each of `reps` compilations of `source`."""
    cpu, wall, mib = [], [], []
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        for _ in range(reps):
            subprocess.run(["/usr/bin/time", "-o", out.name, "-f", "%U %S %e %M", cxx, *FLAGS,
                            f"-I{include}", str(source)], check=True)
            user, system, elapsed, kib = Path(out.name).read_text().split()[-4:]
            cpu.append(float(user) + float(system))
            wall.append(float(elapsed))
            mib.append(float(kib) / 1024)
    return cpu, wall, mib


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--baseline-name", default="baseline")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--cxx", default="g++")
    args = parser.parse_args()

    base = args.baseline
    here = ROOT
    # (group, label, headers, source): the quickstart as it was (the umbrella header), the
    # thread-pool-only quickstart against both trees' headers, and a process-pool example.
    cases = [
        ("quickstart", f"example/quickstart.cpp as it was at {args.baseline_name}",
         base / "include", base / "example/quickstart.cpp"),
        ("quickstart", f"example/quickstart.cpp of this tree, {args.baseline_name}'s headers",
         base / "include", here / "example/quickstart.cpp"),
        ("quickstart", "example/quickstart.cpp of this tree, its headers",
         here / "include", here / "example/quickstart.cpp"),
        # Each tree's own example: this tree's may use what the baseline's headers lack.
        ("processes", f"example/processes.cpp as it was at {args.baseline_name}",
         base / "include", base / "example/processes.cpp"),
        ("processes", "example/processes.cpp of this tree, its headers",
         here / "include", here / "example/processes.cpp"),
    ]
    rows = []
    for group, label, include, source in cases:
        print(f"build_cost: {label} ({args.reps} compilations)", file=sys.stderr)
        cpu, wall, mib = measure(args.cxx, include, source, args.reps)
        rows.append((group, label, cpu, wall, mib))
        key = "".join(c if c.isalnum() else "_" for c in label)[:40]
        for unit, values in (("cpu_s", cpu), ("wall_s", wall), ("MiB", mib)):
            print(f"result group=build_{group}_{unit.lower()} impl={key} "
                  f"label={label.replace(' ', '%20')} median={statistics.median(values):.3f} "
                  f"min={min(values):.3f} max={max(values):.3f} n={args.reps}", file=sys.stderr)

    first = {}
    print("| translation unit | compiler CPU time (s) | vs. first | wall time (s) "
          "| peak compiler memory (MiB) | vs. first |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for group, label, cpu, wall, mib in rows:
        t, w, m = statistics.median(cpu), statistics.median(wall), statistics.median(mib)
        t0, m0 = first.setdefault(group, (t, m))
        print(f"| {label} | {t:.2f} ({min(cpu):.2f}–{max(cpu):.2f}) | {t / t0:.2f} | {w:.2f} "
              f"| {m:.0f} | {m / m0:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
