#!/usr/bin/python3
"""The Python peers of bench/shared_memory.cpp (W6): one large int64 array sent to one worker
process, which doubles it, and back.

Runs ONE measurement per process and prints `seconds=S` (the round trip) on stdout:
futura_bench_shared_memory starts this script as a child for each repetition and measures the
peak memory of the whole process tree itself, from /proc, as it does for its own variants.
The array exists before the clock starts (as a numpy array, or already in shared memory), and
the worker pool is started and warmed up with one trivial task first.

  pickle         concurrent.futures.ProcessPoolExecutor: the array is pickled to the worker,
                 which returns `a * 2`, pickled back.
  shared_memory  multiprocessing.shared_memory: the array lives in a SharedMemory segment; the
                 worker attaches by name and doubles it in place.
  joblib         joblib.Parallel (loky) with its automatic memmapping (max_nbytes='1M'): the
                 array is dumped to a memory-mapped file the worker maps read-only; the worker
                 returns `a * 2`, pickled back.
  pool_map_list  W6b, the posts' own case: a Python list of ints, `multiprocessing.Pool(1).map`
                 of a doubling function over it (the list pickled in chunks to the worker and
                 the doubled values pickled back).

Runs under /usr/bin/python3 (Debian's python3-numpy and python3-joblib).

Usage: /usr/bin/python3 bench/peers/shared_memory.py --variant=pickle [--mb=400]
"""

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import shared_memory

import numpy as np


def noop():
    """Starts a worker before the clock does."""
    return None


def doubled(array):
    """The work of the pickling paths: a new, doubled array."""
    return array * 2


def double_in_shared_memory(name, n):
    """The work of the shared-memory path: attach, double in place, detach."""
    segment = shared_memory.SharedMemory(name=name)
    try:
        view = np.ndarray((n,), dtype=np.int64, buffer=segment.buf)
        view *= 2
        del view
    finally:
        segment.close()


def double(x):
    """The work of Pool.map: one element."""
    return 2 * x


def check(array, n):
    """The round trip must have doubled every element."""
    if array.shape != (n,) or not np.array_equal(array, np.arange(n, dtype=np.int64) * 2):
        sys.exit("wrong result")


def run_pickle(n):
    data = np.arange(n, dtype=np.int64)
    with ProcessPoolExecutor(max_workers=1) as pool:
        pool.submit(noop).result()
        start = time.perf_counter()
        result = pool.submit(doubled, data).result()
        seconds = time.perf_counter() - start
    check(result, n)
    return seconds


def run_shared_memory(n):
    segment = shared_memory.SharedMemory(create=True, size=n * 8)
    try:
        data = np.ndarray((n,), dtype=np.int64, buffer=segment.buf)
        data[:] = np.arange(n, dtype=np.int64)
        with ProcessPoolExecutor(max_workers=1) as pool:
            pool.submit(noop).result()
            start = time.perf_counter()
            pool.submit(double_in_shared_memory, segment.name, n).result()
            seconds = time.perf_counter() - start
        check(data, n)
        del data
    finally:
        segment.close()
        segment.unlink()
    return seconds


def run_joblib(n):
    from joblib import Parallel, delayed

    data = np.arange(n, dtype=np.int64)
    with Parallel(n_jobs=2, max_nbytes="1M") as parallel:
        parallel(delayed(noop)() for _ in range(2))
        start = time.perf_counter()
        result = parallel(delayed(doubled)(data) for _ in range(1))[0]
        seconds = time.perf_counter() - start
    check(result, n)
    return seconds


def run_pool_map_list(n):
    from multiprocessing import Pool

    data = list(range(n))
    with Pool(1) as pool:
        pool.apply(noop)
        start = time.perf_counter()
        result = pool.map(double, data)
        seconds = time.perf_counter() - start
    if len(result) != n or result[-1] != 2 * (n - 1) or result[n // 2] != 2 * (n // 2):
        sys.exit("wrong result")
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", required=True, choices=["pickle", "shared_memory", "joblib", "pool_map_list"])
    parser.add_argument("--mb", type=int, default=400, help="array size in MB (10^6 bytes)")
    args = parser.parse_args()
    n = args.mb * 1_000_000 // 8
    run = {"pickle": run_pickle, "shared_memory": run_shared_memory, "joblib": run_joblib,
           "pool_map_list": run_pool_map_list}
    print(f"seconds={run[args.variant](n)}", flush=True)


if __name__ == "__main__":
    main()
