#!/usr/bin/python3
"""The Python peers of bench/process_pool.cpp: Python's process pools and joblib.

Runs the same workloads the same way as the C++ harness, and prints machine-readable
`result group=... impl=... median=...` lines on stdout (progress goes to stderr), which
futura_bench_process_pool reads with --peer-results to put Python in its table:

  W4  throughput of N trivial tasks (default 20,000): ProcessPoolExecutor.submit (keeping the
      futures, then reading every result), ProcessPoolExecutor.map with chunksize 1 and 100,
      multiprocessing.Pool.map with its default chunksize, joblib's Parallel(n_jobs=workers);
      and a million tiny tasks (--w4-big-n) with Pool.map's default chunksize (joblib, at
      about 0.1 M tasks/s here, would take a minute a repetition).
      Tasks per second, median of --reps repetitions, each in a fresh pool after a warm-up.
  W5  sequential submit().result() round trips in --w5-rounds rounds (each in a fresh
      executor after --w5-warmup untimed ones): p50 and p99 latency in microseconds.
  W7  start to first result: construct a ProcessPoolExecutor with the fork, spawn or forkserver
      context, submit one trivial task and read its result. Milliseconds, median of --w7-reps.

Runs under /usr/bin/python3, whose joblib is Debian's python3-joblib.

Usage: /usr/bin/python3 bench/peers/process_pool.py [--workers N] [--w4-n N] [--reps N] ...
"""

import argparse
import math
import multiprocessing
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor


def add_one(i):
    """The trivial task of W4, W5 and W7."""
    return i + 1


def percentile(samples, p):
    """Nearest-rank percentile, as the C++ harness computes it."""
    ordered = sorted(samples)
    rank = min(max(math.ceil(p * len(ordered)), 1), len(ordered))
    return ordered[rank - 1]


def result_line(group, impl, label, n, values, median=None):
    """A `result` line: the median of values (unless given) and their spread."""
    fields = {
        "group": group,
        "impl": impl,
        "label": label.replace(" ", "%20"),
        "n": n,
        "reps": len(values),
        "median": statistics.median(values) if median is None else median,
        "min": min(values),
        "max": max(values),
    }
    return "result " + " ".join(f"{key}={value}" for key, value in fields.items())


def check_sum(what, total, n):
    if total != n * (n + 1) // 2:
        sys.exit(f"{what}: wrong sum of results: {total}")


# ---- W4 -----------------------------------------------------------------------------------------
# Each function runs one measurement in a fresh pool, after an untimed warm-up that starts its
# workers, and returns tasks per second.

def executor(workers):
    # Python 3.11's default on Linux, named so that the table says which it is.
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))


def w4_submit(workers, n, warmup):
    with executor(workers) as pool:
        for future in [pool.submit(add_one, i) for i in range(warmup)]:
            future.result()
        start = time.perf_counter()
        futures = [pool.submit(add_one, i) for i in range(n)]
        total = 0
        for future in futures:
            total += future.result()
        del futures
        rate = n / (time.perf_counter() - start)
    check_sum("W4 submit", total, n)
    return rate


def w4_executor_map(workers, n, warmup, chunksize):
    with executor(workers) as pool:
        sum(pool.map(add_one, range(warmup), chunksize=chunksize))
        start = time.perf_counter()
        total = sum(pool.map(add_one, range(n), chunksize=chunksize))
        rate = n / (time.perf_counter() - start)
    check_sum("W4 ProcessPoolExecutor.map", total, n)
    return rate


def w4_pool_map(workers, n, warmup):
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        sum(pool.map(add_one, range(warmup)))
        start = time.perf_counter()
        total = sum(pool.map(add_one, range(n)))
        rate = n / (time.perf_counter() - start)
    check_sum("W4 Pool.map", total, n)
    return rate


def w4_joblib(workers, n, warmup):
    # joblib keeps its loky workers between calls: the warm-up starts them, as for the others.
    import joblib  # pylint: disable=import-outside-toplevel

    parallel = joblib.Parallel(n_jobs=workers)
    sum(parallel(joblib.delayed(add_one)(i) for i in range(warmup)))
    start = time.perf_counter()
    total = sum(parallel(joblib.delayed(add_one)(i) for i in range(n)))
    rate = n / (time.perf_counter() - start)
    check_sum("W4 joblib", total, n)
    return rate


# ---- W5 -----------------------------------------------------------------------------------------

def w5_round(workers, n, warmup):
    """One round in a fresh executor: the latencies of n timed round trips, in µs."""
    samples = []
    with executor(workers) as pool:
        for i in range(warmup + n):
            start = time.perf_counter_ns()
            result = pool.submit(add_one, i).result()
            stop = time.perf_counter_ns()
            if result != i + 1:
                sys.exit(f"W5: wrong result {result} for {i}")
            if i >= warmup:
                samples.append((stop - start) / 1000.0)
    return samples


# ---- W7 -----------------------------------------------------------------------------------------

def w7_once(workers, method):
    """Milliseconds from constructing the executor to holding its first result."""
    context = multiprocessing.get_context(method)
    start = time.perf_counter()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    result = pool.submit(add_one, 41).result()
    ms = (time.perf_counter() - start) * 1e3
    pool.shutdown()
    if result != 42:
        sys.exit("W7: wrong result")
    return ms


def interleaved(measurements, reps, unit):
    """Runs each (group, impl, function) reps times, rotating the order; values per impl."""
    values = {(group, impl): [] for group, impl, _ in measurements}
    for rep in range(reps):
        for k in range(len(measurements)):
            group, impl, once = measurements[(k + rep) % len(measurements)]
            values[(group, impl)].append(once())
            print(f"{group} rep {rep + 1}/{reps}  {impl:18} {values[(group, impl)][-1]:14.1f} "
                  f"{unit}", file=sys.stderr)
    return values


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                        help="worker processes (default: the CPUs this process may run on)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--w4-n", type=int, default=20_000)
    parser.add_argument("--w4-big-n", type=int, default=1_000_000)
    parser.add_argument("--w4-warmup", type=int, default=1_000)
    parser.add_argument("--w5-n", type=int, default=2_000)
    parser.add_argument("--w5-rounds", type=int, default=8)
    parser.add_argument("--w5-warmup", type=int, default=100)
    parser.add_argument("--w7-reps", type=int, default=11)
    parser.add_argument("--workloads", default="W4,W5,W7",
                        help="some of W4,W5,W7 (W3 has no Python peer)")
    args = parser.parse_args()
    workloads = args.workloads.split(",")
    workers, n, big_n, warmup = args.workers, args.w4_n, args.w4_big_n, args.w4_warmup
    python = f"Python {platform.python_version()}"
    lines = []

    if "W4" in workloads:
        # Imported here, not at the top: spawned workers (W7) import this module, and should
        # not pay for joblib, which the C++ side does not load either.
        import joblib  # pylint: disable=import-outside-toplevel

        pool_chunk = math.ceil(n / (4 * workers))
        big_chunk = math.ceil(big_n / (4 * workers))
        labels = {
            ("w4_submit", "python_submit"): f"{python} ProcessPoolExecutor.submit (fork)",
            ("w4_map_1", "python_executor_map_1"):
                f"{python} ProcessPoolExecutor.map chunksize 1 (fork)",
            ("w4_map", "python_executor_map_100"):
                f"{python} ProcessPoolExecutor.map chunksize 100 (fork)",
            ("w4_map", "python_pool_map"):
                f"{python} multiprocessing.Pool.map, default chunksize ({pool_chunk:,})",
            ("w4_map", "python_joblib"):
                f"joblib {joblib.__version__} Parallel(n_jobs={workers}), loky, automatic batches",
            ("w4_map_big", "python_pool_map"):
                f"{python} multiprocessing.Pool.map, default chunksize ({big_chunk:,})",
        }
        values = interleaved([
            ("w4_submit", "python_submit", lambda: w4_submit(workers, n, warmup)),
            ("w4_map_1", "python_executor_map_1", lambda: w4_executor_map(workers, n, warmup, 1)),
            ("w4_map", "python_executor_map_100",
             lambda: w4_executor_map(workers, n, warmup, 100)),
            ("w4_map", "python_pool_map", lambda: w4_pool_map(workers, n, warmup)),
            ("w4_map", "python_joblib", lambda: w4_joblib(workers, n, warmup)),
            ("w4_map_big", "python_pool_map", lambda: w4_pool_map(workers, big_n, warmup)),
        ], args.reps, "tasks/s")
        for (group, impl), rates in values.items():
            size = big_n if group == "w4_map_big" else n
            lines.append(result_line(group, impl, labels[(group, impl)], size, rates))

    if "W5" in workloads:
        per_round = args.w5_n // args.w5_rounds
        rounds = []
        for k in range(args.w5_rounds):
            rounds.append(w5_round(workers, per_round, args.w5_warmup))
            print(f"w5 round {k + 1}/{args.w5_rounds}  python"
                  f" p50 {percentile(rounds[-1], 0.5):8.2f} us"
                  f" p99 {percentile(rounds[-1], 0.99):8.2f} us", file=sys.stderr)
        samples = [s for r in rounds for s in r]
        label = f"{python} ProcessPoolExecutor submit().result() (fork)"
        for group, p in (("w5_p50", 0.5), ("w5_p99", 0.99)):
            lines.append(result_line(group, "python_roundtrip", label, len(samples),
                                     [percentile(r, p) for r in rounds],
                                     median=percentile(samples, p)))

    if "W7" in workloads:
        methods = ["fork", "spawn", "forkserver"]
        values = interleaved([("w7_start", f"python_{m}", lambda m=m: w7_once(workers, m))
                              for m in methods], args.w7_reps, "ms")
        for method in methods:
            label = f"{python} ProcessPoolExecutor, mp_context {method}"
            if method == "forkserver":
                label += " (server already running after the first)"
            lines.append(result_line("w7_start", f"python_{method}", label, 1,
                                     values[("w7_start", f"python_{method}")]))

    print("\n".join(lines))


if __name__ == "__main__":
    main()
