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
  W3  CPU-bound scaling over the workload shapes of bench/process_pool.cpp, with the same task
      durations (the heavy tail drawn by the same generator; a `w3_shape` line per shape, which
      the harness checks against its own) and a CPU loop calibrated here to the same
      milliseconds: one after the other in this process, then on ProcessPoolExecutor (submit,
      and map), and on multiprocessing.Pool.imap_unordered, each a fresh pool warmed up before
      the clock starts. Speedups, CPUs kept busy, and when the 300 ms tasks started; medians of
      --w3-reps.
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
import resource
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


# ---- W3 -----------------------------------------------------------------------------------------
# The shapes and their durations are bench/process_pool.cpp's (w3_shapes there), down to the
# microsecond: keep the two in step.

MASK = (1 << 64) - 1
W3_SEED = 8  # issue 8
W3_TAIL_MEDIAN_MS = 2.0
W3_TAIL_SIGMA = 1.5
W3_TAIL_CAP_MS = 200.0
W3_LONG_US = 300_000
W3_TINY_US = 10
W3_SHAPES = ("uniform", "short_long", "heavy_tail", "tiny_long")


def splitmix64(state):
    """(the next state, a 64-bit draw), as splitmix64 in bench/process_pool.cpp."""
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def whole_us(ms):
    return math.floor(ms * 1e3 + 0.5)


def heavy_tail_us(count):
    state, durations = W3_SEED, []
    for _ in range(count):
        state, a = splitmix64(state)
        state, b = splitmix64(state)
        u1 = ((a >> 11) + 1) * 2.0 ** -53
        u2 = ((b >> 11) + 1) * 2.0 ** -53
        normal = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
        durations.append(whole_us(min(W3_TAIL_CAP_MS,
                                      W3_TAIL_MEDIAN_MS * math.exp(W3_TAIL_SIGMA * normal))))
    return durations


def w3_shape(shape):
    """The durations of `shape`'s tasks in submission order, in microseconds."""
    if shape == "uniform":
        return [50_000] * 20
    if shape == "short_long":
        return [W3_TINY_US] * 100 + [W3_LONG_US] * 2 + [50_000] * 20
    if shape == "heavy_tail":
        return heavy_tail_us(400)
    if shape == "tiny_long":
        return [W3_TINY_US] * 1000 + [W3_LONG_US]
    sys.exit(f"unknown W3 shape '{shape}' ({', '.join(W3_SHAPES)})")


def fingerprint(shape, durations):
    digest = 0
    for us in durations:
        digest = (digest * 1_000_003 + us) & MASK
    return f"w3_shape name={shape} tasks={len(durations)} total_us={sum(durations)} hash={digest}"


def burn(seed, iterations):
    """The multiply-xorshift chain of bench/process_pool.cpp's burn, in Python's integers."""
    x = seed
    for _ in range(iterations):
        x = (x * 6364136223846793005 + 1442695040888963407) & MASK
        x ^= x >> 29
    return x


def timed_burn(seed, iterations):
    """W3's task: burn, and when it started (time.monotonic_ns: CLOCK_MONOTONIC, one clock for
    every process of the machine)."""
    started = time.monotonic_ns()
    return burn(seed, iterations), started


def burn_per_ms():
    """Iterations of burn a millisecond of CPU here: the fastest of a few trials, timed in CPU
    time (as the C++ harness does), so that a busy machine does not make the tasks shorter."""
    trial, best = 100_000, math.inf
    for k in range(1, 6):
        start = time.thread_time()
        burn(k, trial)
        best = min(best, time.thread_time() - start)
    return trial / (best * 1e3)


def cpu_seconds(who):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def warm_up_executor(pool, workers):
    for future in [pool.submit(add_one, i) for i in range(2 * workers)]:
        future.result()


def w3_collect(results, durations, start_ns):
    """(combined result, ms from the first submit to the start of the last 300 ms task)."""
    combined, long_started = 0, 0
    for k, (value, started) in enumerate(results):
        combined ^= value
        if durations[k] == W3_LONG_US:
            long_started = max(long_started, started)
    return combined, (long_started - start_ns) / 1e6 if long_started else 0.0


def w3_sequential(durations, iterations):
    cpu, start = cpu_seconds(resource.RUSAGE_SELF), time.perf_counter()
    combined = 0
    for k, count in enumerate(iterations):
        combined ^= burn(k + 1, count)
    seconds = time.perf_counter() - start
    return seconds, (cpu_seconds(resource.RUSAGE_SELF) - cpu) / seconds, 0.0, combined


def w3_pool(kind, workers, durations, iterations):
    """The shape on a fresh pool of `kind` (submit, map, imap_unordered), warmed up before the
    clock starts: (seconds, CPUs kept busy, start of the last long task, combined result). The
    workers' CPU time counts once they are reaped, at the pool's shutdown."""
    cpu = cpu_seconds(resource.RUSAGE_CHILDREN)
    seeds = range(1, len(iterations) + 1)
    if kind == "imap_unordered":
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            pool.map(add_one, range(2 * workers), chunksize=1)
            start_ns, start = time.monotonic_ns(), time.perf_counter()
            # Unordered: each result carries its seed, to find the long ones again.
            results = dict(pool.imap_unordered(timed_burn_seeded, zip(seeds, iterations)))
            seconds = time.perf_counter() - start
            pool.close()
            pool.join()
        ordered = [results[seed] for seed in seeds]
    else:
        with executor(workers) as pool:
            warm_up_executor(pool, workers)
            start_ns, start = time.monotonic_ns(), time.perf_counter()
            if kind == "submit":
                futures = [pool.submit(timed_burn, seed, count)
                           for seed, count in zip(seeds, iterations)]
                ordered = [future.result() for future in futures]
            else:
                ordered = list(pool.map(timed_burn, seeds, iterations))
            seconds = time.perf_counter() - start
    cpus = (cpu_seconds(resource.RUSAGE_CHILDREN) - cpu) / seconds
    combined, long_start = w3_collect(ordered, durations, start_ns)
    return seconds, cpus, long_start, combined


def timed_burn_seeded(args):
    """(seed, timed_burn(seed, iterations)) for Pool.imap_unordered."""
    seed, iterations = args
    return seed, timed_burn(seed, iterations)


def measure_w3(workers, shapes, reps, python):
    per_ms = burn_per_ms()
    print(f"w3: {per_ms:.0f} iterations of burn a millisecond here", file=sys.stderr)
    ways = [
        ("python_sequential", f"{python}, in-process, one after the other",
         lambda d, it: w3_sequential(d, it)),
        ("python_submit", f"{python} ProcessPoolExecutor.submit (fork)",
         lambda d, it: w3_pool("submit", workers, d, it)),
        ("python_map", f"{python} ProcessPoolExecutor.map, chunksize 1 (fork)",
         lambda d, it: w3_pool("map", workers, d, it)),
        ("python_imap_unordered", f"{python} multiprocessing.Pool.imap_unordered, chunksize 1 "
                                  f"(fork)",
         lambda d, it: w3_pool("imap_unordered", workers, d, it)),
    ]
    lines, plan = [], []
    for shape in shapes:
        durations = w3_shape(shape)
        iterations = [max(1, round(us / 1e3 * per_ms)) for us in durations]
        plan.append((shape, durations, iterations))
        lines.append(fingerprint(shape, durations))
        print(lines[-1], file=sys.stderr)
    runs = {(shape, impl): [] for shape in shapes for impl, _, _ in ways}
    for rep in range(reps):
        for i, (shape, durations, iterations) in enumerate(plan):
            expected = None
            for k in range(len(ways)):
                impl, _, run = ways[(k + i + rep) % len(ways)]
                result = run(durations, iterations)
                if expected is not None and result[3] != expected:
                    sys.exit(f"W3 {shape}: {impl} computed something else")
                expected = result[3]
                runs[(shape, impl)].append(result)
            sequential = runs[(shape, "python_sequential")][-1][0]
            print(f"w3 rep {rep + 1}/{reps}  {shape:10}  sequential {sequential:.3f} s  " +
                  "  ".join(f"{impl[7:]} {runs[(shape, impl)][-1][0]:.3f} s "
                            f"({sequential / runs[(shape, impl)][-1][0]:.2f}x, "
                            f"{runs[(shape, impl)][-1][1]:.2f} CPUs, "
                            f"long at {runs[(shape, impl)][-1][2]:.1f} ms)"
                            for impl, _, _ in ways[1:]), file=sys.stderr)
    for shape, durations, _ in plan:
        n = len(durations)
        sequential = [run[0] for run in runs[(shape, "python_sequential")]]
        for impl, label, _ in ways[1:]:
            these = runs[(shape, impl)]
            lines.append(result_line(f"w3_speedup_{shape}", impl, label, n,
                                     [seq / run[0] for seq, run in zip(sequential, these)]))
            lines.append(result_line(f"w3_cpus_{shape}", impl, label, n,
                                     [run[1] for run in these]))
            if W3_LONG_US in durations:
                lines.append(result_line(f"w3_long_start_{shape}", impl, label, n,
                                         [run[2] for run in these]))
        lines.append(result_line(f"w3_sequential_{shape}", "python_sequential", ways[0][1], n,
                                 sequential))
    return lines


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
    parser.add_argument("--w3-reps", type=int, default=5)
    parser.add_argument("--w3-shapes", default=",".join(W3_SHAPES),
                        help=f"some of {','.join(W3_SHAPES)}")
    parser.add_argument("--workloads", default="W4,W5,W3,W7", help="some of W4,W5,W3,W7")
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

    if "W3" in workloads:
        lines += measure_w3(workers, args.w3_shapes.split(","), args.w3_reps, python)

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
