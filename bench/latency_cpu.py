"""Where a single task's round trip spends CPU: one submit->result at a time, then the CPU time
of every thread of every process involved (client, scheduler, worker agent, processor), per
round trip.

    SCALER_BINARY=bin/scaler .venv/bin/python bench/latency_cpu.py [--trips 3000] [--workers 1]

The figures come from /proc (user + system time, 10 ms ticks), so use enough round trips
(the default 3,000 gives about 3 us resolution per round trip). Thread names are the kernel's:
the client's two "python" threads are the calling thread (the larger) and its background agent,
"ZMQbg/IO/0" is a libzmq I/O thread, "scaler" a Go thread.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import psutil  # noqa: E402

from scaler import Client, SchedulerClusterCombo  # noqa: E402


def trivial(x):
    return x


def role_of(process: psutil.Process) -> str:
    if process.pid == os.getpid():
        return "client"
    args = process.cmdline()
    for role in ("scheduler", "combo", "cluster", "worker"):
        if role in args[1:3]:
            return role
    if "scaler.worker.processor" in args:
        return "processor"
    return args[0] if args else "?"


def thread_times(processes) -> dict:
    times = {}
    for process in processes:
        role = role_of(process)
        for thread in process.threads():
            try:
                with open(f"/proc/{process.pid}/task/{thread.id}/comm") as f:
                    name = f.read().strip()
            except OSError:
                continue
            times[(role, process.pid, thread.id, name)] = (thread.user_time, thread.system_time)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trips", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    combo = SchedulerClusterCombo(n_workers=args.workers, logging_level="WARNING")
    try:
        with Client(combo.get_address()) as client:
            client.map(trivial, [(i,) for i in range(200)])  # workers and processors up
            for i in range(200):
                client.submit(trivial, i).result()
            me = psutil.Process()
            processes = [me] + me.children(recursive=True)
            before = thread_times(processes)
            samples = []
            start = time.perf_counter()
            for i in range(args.trips):
                t = time.perf_counter_ns()
                client.submit(trivial, i).result()
                samples.append(time.perf_counter_ns() - t)
            elapsed = time.perf_counter() - start
            after = thread_times(processes)
    finally:
        combo.shutdown()

    samples.sort()
    print(f"{args.trips} round trips: p50 {samples[len(samples) // 2] / 1e3:.0f} us, "
          f"mean {elapsed / args.trips * 1e6:.0f} us")
    # CPU per round trip by thread: user (the process's own code) and system (the kernel's, for
    # it: system calls, wake-ups, TCP).
    print(f"{'us/trip':>8} {'user':>6} {'system':>6}  {'process':10} {'thread':20}")
    rows, totals = [], [0.0, 0.0]
    for key, (user, system) in after.items():
        user0, system0 = before.get(key, (0.0, 0.0))
        used = ((user - user0) / args.trips * 1e6, (system - system0) / args.trips * 1e6)
        totals[0] += used[0]
        totals[1] += used[1]
        rows.append((used, key))
    for (user, system), key in sorted(rows, key=lambda row: -sum(row[0])):
        if user + system >= 1:
            print(f"{user + system:8.1f} {user:6.1f} {system:6.1f}  {key[0]:10} {key[3]:20}")
    print(f"{sum(totals):8.1f} {totals[0]:6.1f} {totals[1]:6.1f}  total CPU per round trip")


if __name__ == "__main__":
    main()
