"""mpi4py.futures.MPIPoolExecutor, the peer of futura_bench_mpi (bench/mpi.cpp).

Run with pre-started workers, as the C++ side is:

    mpiexec -n W+1 /usr/bin/python3 -m mpi4py.futures bench/peers/mpi.py [options]

Prints `result` lines in bench/harness.hpp's format: submit throughput (N trivial tasks, all
submitted, then all awaited), map over N inputs at each chunk size tried (and the best of them),
and the submit->result round trip (p50, p99).
"""

from __future__ import annotations

import argparse
import math
import time

from mpi4py.futures import MPIPoolExecutor


def trivial(x):
    return x + 1


def square(x):
    return x * x


def percentile(samples, p):
    """Nearest rank, as bench/harness.hpp computes it."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), math.ceil(p * len(ordered))))
    return ordered[rank - 1]


def median(values):
    return percentile(values, 0.5)


def result(group, impl, label, n, values):
    label = label.replace(" ", "%20")
    print(f"result group={group} impl={impl} label={label} n={n} reps={len(values)} "
          f"median={median(values)} min={min(values)} max={max(values)}", flush=True)


def submit_rate(pool, n):
    start = time.perf_counter()
    futures = [pool.submit(trivial, k) for k in range(n)]
    total = sum(f.result() for f in futures)
    assert total > 0
    return n / (time.perf_counter() - start)


def map_rate(pool, n, chunksize):
    start = time.perf_counter()
    total = sum(pool.map(square, range(n), chunksize=chunksize))
    assert total > 0
    return n / (time.perf_counter() - start)


def round_trip(pool, n):
    for k in range(100):
        pool.submit(trivial, k).result()
    us = []
    for k in range(n):
        start = time.perf_counter()
        pool.submit(trivial, k).result()
        us.append((time.perf_counter() - start) * 1e6)
    return percentile(us, 0.5), percentile(us, 0.99)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--submit-n", type=int, default=20_000)
    parser.add_argument("--map-n", type=int, default=1_000_000)
    parser.add_argument("--rt-n", type=int, default=2_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--chunksizes", default="100,1000,10000")
    args = parser.parse_args()

    with MPIPoolExecutor() as pool:
        pool.submit(trivial, 0).result()  # the workers are up
        result("submit_rate", "python_mpi4py", "Python mpi4py.futures MPIPoolExecutor",
               args.submit_n, [submit_rate(pool, args.submit_n) for _ in range(args.reps)])
        best = None
        for chunksize in (int(c) for c in args.chunksizes.split(",")):
            rates = [map_rate(pool, args.map_n, chunksize) for _ in range(args.reps)]
            if best is None or median(rates) > median(best[1]):
                best = (chunksize, rates)
        result("map_rate", "python_mpi4py_map",
               f"Python mpi4py.futures map, best chunksize ({best[0]} of {args.chunksizes})",
               args.map_n, best[1])
        p50s, p99s = [], []
        for _ in range(args.reps):
            p50, p99 = round_trip(pool, args.rt_n)
            p50s.append(p50)
            p99s.append(p99)
        label = "Python mpi4py.futures MPIPoolExecutor"
        result("rt_p50", "python_mpi4py", label, args.rt_n, p50s)
        result("rt_p99", "python_mpi4py", label, args.rt_n, p99s)


if __name__ == "__main__":
    main()
