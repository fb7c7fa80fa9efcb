#!/usr/bin/python3
"""The Python peer of bench/thread_pool.cpp: concurrent.futures.ThreadPoolExecutor.

Runs the same workloads the same way as the C++ harness, and prints one machine-readable
`result key=value ...` line on stdout (progress goes to stderr), which futura_bench_thread_pool
reads with --peer-results to put Python in its table:

  W1  submit N trivial tasks, keep the futures, then read every result: tasks per second,
      median of --reps repetitions, each in a fresh executor after an untimed warm-up.
  W2  sequential submit -> result round trips, in --w2-rounds rounds (each in a fresh executor
      after --w2-warmup untimed ones): p50 and p99 latency in microseconds over all of them.

Usage: /usr/bin/python3 bench/peers/thread_pool.py [--workers N] [--w1-n N] [--reps N] ...
"""

import argparse
import math
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def add_one(i):
    """The task of both workloads."""
    return i + 1


def submit_and_collect(pool, n):
    """Submits n calls, then reads every result and drops the futures; checks the sum."""
    futures = [pool.submit(add_one, i) for i in range(n)]
    total = 0
    for future in futures:
        total += future.result()
    del futures
    if total != n * (n + 1) // 2:
        sys.exit(f"W1: wrong sum of results: {total}")


def w1_once(workers, n, warmup):
    """One W1 measurement in a fresh executor: tasks per second."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        submit_and_collect(pool, warmup)
        start = time.perf_counter()
        submit_and_collect(pool, n)
        return n / (time.perf_counter() - start)


def w2_round(workers, n, warmup):
    """One W2 round in a fresh executor: the latencies of n timed round trips, in µs."""
    samples = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i in range(warmup + n):
            start = time.perf_counter_ns()
            result = pool.submit(add_one, i).result()
            stop = time.perf_counter_ns()
            if result != i + 1:
                sys.exit(f"W2: wrong result {result} for {i}")
            if i >= warmup:
                samples.append((stop - start) / 1000.0)
    return samples


def percentile(samples, p):
    """Nearest-rank percentile, as the C++ harness computes it."""
    ordered = sorted(samples)
    rank = min(max(math.ceil(p * len(ordered)), 1), len(ordered))
    return ordered[rank - 1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                        help="max_workers (default: the CPUs this process may run on)")
    parser.add_argument("--w1-n", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--w2-n", type=int, default=20_000)
    parser.add_argument("--w2-rounds", type=int, default=4)
    parser.add_argument("--w2-warmup", type=int, default=500)
    args = parser.parse_args()

    rates = []
    for rep in range(args.reps):
        rates.append(w1_once(args.workers, args.w1_n, min(args.w1_n, 10_000)))
        print(f"W1 rep {rep + 1}/{args.reps}  python {rates[-1]:12.0f} tasks/s", file=sys.stderr)

    per_round = args.w2_n // args.w2_rounds
    rounds = []
    for k in range(args.w2_rounds):
        rounds.append(w2_round(args.workers, per_round, args.w2_warmup))
        print(f"W2 round {k + 1}/{args.w2_rounds}  python p50 {percentile(rounds[-1], 0.5):8.2f} us"
              f"  p99 {percentile(rounds[-1], 0.99):8.2f} us", file=sys.stderr)
    samples = [s for r in rounds for s in r]
    p50s = [percentile(r, 0.5) for r in rounds]
    p99s = [percentile(r, 0.99) for r in rounds]

    label = f"Python {platform.python_version()} concurrent.futures.ThreadPoolExecutor"
    fields = {
        "impl": "python",
        "label": label.replace(" ", "%20"),
        "workers": args.workers,
        "w1_n": args.w1_n,
        "w1_reps": args.reps,
        "w1_median": statistics.median(rates),
        "w1_min": min(rates),
        "w1_max": max(rates),
        "w2_n": len(samples),
        "w2_p50_us": percentile(samples, 0.5),
        "w2_p99_us": percentile(samples, 0.99),
        "w2_p50_min": min(p50s),
        "w2_p50_max": max(p50s),
        "w2_p99_min": min(p99s),
        "w2_p99_max": max(p99s),
    }
    print("result " + " ".join(f"{key}={value}" for key, value in fields.items()))


if __name__ == "__main__":
    main()
