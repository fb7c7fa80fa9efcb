#!/usr/bin/python3
"""The Python peers of bench/shared_containers.cpp (issue 15): shared state between processes.

Prints `result group=... impl=... median=...` lines (microseconds per operation, median of
--reps repetitions) on stdout, which futura_bench_shared_containers reads with --peer-results:

  get, set     Manager().dict() of 1,000 int keys: d.get(k) and d[k] = v, cycling over keys.
  update_2p    one hot key incremented by 2 processes at once: `with lock: d[k] += 1` on a
               Manager dict and a Manager lock (d[k] += 1 alone is not atomic), and
               `with v.get_lock(): v.value += 1` on a multiprocessing.Value (no server).
  queue        put then get of one int: Manager().Queue() and multiprocessing.Queue().
  lock_1p      acquire + release, uncontended: Manager().Lock() and multiprocessing.Lock().
  lock_2p      acquire + release by 2 processes at once: the same two locks.

The two-process figures are the wall time over all operations of both, divided by their
number; the processes are started (fork) and wait at a barrier before the clock starts.

Runs under /usr/bin/python3. Usage: shared_containers.py [--n N] [--n2p N] [--reps N]
"""

import argparse
import multiprocessing
import statistics
import time

KEYS = 1000


def result_line(group, impl, label, n, values):
    fields = {
        "group": group,
        "impl": impl,
        "label": label.replace(" ", "%20"),
        "n": n,
        "reps": len(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }
    return "result " + " ".join(f"{key}={value}" for key, value in fields.items())


def timed(reps, n, body):
    """Microseconds per operation of body(n), reps times, after a warm-up."""
    body(max(n // 10, 1))
    values = []
    for _ in range(reps):
        start = time.perf_counter()
        body(n)
        values.append((time.perf_counter() - start) * 1e6 / n)
    return values


def hammer_update(d, lock, n, barrier):
    barrier.wait()
    for _ in range(n):
        with lock:
            d[0] += 1


def hammer_value(v, n, barrier):
    barrier.wait()
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def hammer_lock(lock, n, barrier):
    barrier.wait()
    for _ in range(n):
        with lock:
            pass


def two_processes(reps, n, target, args, reset=None):
    """Microseconds per operation over both processes, reps times."""
    values = []
    for _ in range(reps):
        if reset is not None:
            reset()
        barrier = multiprocessing.Barrier(3)
        procs = [multiprocessing.Process(target=target, args=(*args, n, barrier)) for _ in range(2)]
        for p in procs:
            p.start()
        barrier.wait()
        start = time.perf_counter()
        for p in procs:
            p.join()
        values.append((time.perf_counter() - start) * 1e6 / (2 * n))
    return values


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="operations per repetition")
    parser.add_argument("--n2p", type=int, default=2000, help="operations per process")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    n, n2p, reps = args.n, args.n2p, args.reps
    multiprocessing.set_start_method("fork")
    out = []

    with multiprocessing.Manager() as manager:
        d = manager.dict({k: k for k in range(KEYS)})

        def get(count):
            for i in range(count):
                d.get(i % KEYS)

        def put(count):
            for i in range(count):
                d[i % KEYS] = i

        out.append(result_line("get", "python_manager_dict", "Python Manager().dict() get", n,
                               timed(reps, n, get)))
        out.append(result_line("set", "python_manager_dict", "Python Manager().dict() set", n,
                               timed(reps, n, put)))

        mlock = manager.Lock()

        def reset():
            d[0] = 0

        out.append(result_line("update_2p", "python_manager_dict_lock",
                               "Python Manager dict `with lock: d[k] += 1`, 2 processes", n2p,
                               two_processes(reps, n2p, hammer_update, (d, mlock), reset)))
        if d[0] != 2 * n2p:
            raise SystemExit("Manager dict lost increments")
        value = multiprocessing.Value("l", 0)
        out.append(result_line("update_2p", "python_value_lock",
                               "Python multiprocessing.Value `with get_lock(): v.value += 1`, "
                               "2 processes", n2p,
                               two_processes(reps, n2p, hammer_value, (value,))))

        mq = manager.Queue()

        def manager_queue(count):
            for i in range(count):
                mq.put(i)
                mq.get()

        out.append(result_line("queue", "python_manager_queue", "Python Manager().Queue() put + get",
                               n, timed(reps, n, manager_queue)))
        q = multiprocessing.Queue()

        def mp_queue(count):
            for i in range(count):
                q.put(i)
                q.get()

        out.append(result_line("queue", "python_mp_queue", "Python multiprocessing.Queue() put + get",
                               n, timed(reps, n, mp_queue)))

        def acquire_release(lock):
            def body(count):
                for _ in range(count):
                    with lock:
                        pass
            return body

        plock = multiprocessing.Lock()
        out.append(result_line("lock_1p", "python_manager_lock", "Python Manager().Lock()", n,
                               timed(reps, n, acquire_release(mlock))))
        out.append(result_line("lock_1p", "python_mp_lock", "Python multiprocessing.Lock()", n * 20,
                               timed(reps, n * 20, acquire_release(plock))))
        out.append(result_line("lock_2p", "python_manager_lock",
                               "Python Manager().Lock(), 2 processes", n2p,
                               two_processes(reps, n2p, hammer_lock, (mlock,))))
        out.append(result_line("lock_2p", "python_mp_lock",
                               "Python multiprocessing.Lock(), 2 processes", n2p * 20,
                               two_processes(reps, n2p * 20, hammer_lock, (plock,))))

    print("\n".join(out), flush=True)


if __name__ == "__main__":
    main()
