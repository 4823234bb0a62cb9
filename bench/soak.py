"""Scheduler memory soak: many trivial tasks in maps, the scheduler's RSS sampled as they run and when idle.

    SCALER_BINARY=bin/scaler .venv/bin/python bench/soak.py [--tasks 1000000] [--maps-of 100000]
        [--sample-every 100000] [--idle 120] [--workers 2] [--settle 0]

Starts a scheduler and a cluster of our binary on 127.0.0.1 (free ports), then runs the tasks as
consecutive client.map calls of --maps-of tasks each and prints the scheduler's RSS (from
/proc/PID/status) at the start, after every --sample-every tasks, and after --idle seconds with
nothing to do. With --settle S each sample waits S seconds first (see core/server/memrelease.go).
The last line is machine-readable: SOAK start=... samples=... hot=... idle=... (MiB).
"""

import argparse
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from scaler import Client  # noqa: E402


def _flushing(log):
    def f(*a):
        log(*a)
        sys.stdout.flush()
    return f


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def free_port_base():
    """A port P with P, P+1, P+2 free (scheduler, in-process storage, monitor)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p + 2 >= 65535:
            continue
        ok = True
        for q in (p + 1, p + 2):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", q))
                except OSError:
                    ok = False
        if ok:
            return p
    raise RuntimeError("no three consecutive free ports")


def run_soak(binary, tasks, maps_of, sample_every, idle, workers, log=print, scheduler_args=(), settle=0):
    log = _flushing(log)

    def trivial(x):  # nested: pickled by value, so processors need not import this file
        return x

    """Runs the soak and returns (start, samples, hot, idle_rss) in MiB: samples after every
    sample_every tasks, taken after waiting settle seconds (the scheduler returns free memory
    5 s after its last task; 0: at once), hot the RSS right as each such map ended."""
    port = free_port_base()
    addr = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ)
    sched = subprocess.Popen([binary, "scheduler", *scheduler_args, addr], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cluster = None
    try:
        cluster = subprocess.Popen([binary, "cluster", "-n", str(workers), "--python", sys.executable, addr],
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with Client(address=addr) as client:
            assert client.map(trivial, [(i,) for i in range(100)]) == list(range(100))  # warm-up
            time.sleep(1)
            start = rss_mib(sched.pid)
            log(f"start: {start:.1f} MiB")
            samples, hot = [], []
            paused = 0.0
            done = 0
            t0 = time.monotonic()
            while done < tasks:
                n = min(maps_of, tasks - done)
                results = client.map(trivial, [(i,) for i in range(n)])
                assert len(results) == n and results[-1] == n - 1
                before = done
                done += n
                if done // sample_every > before // sample_every:
                    hot.append(rss_mib(sched.pid))
                    rate = done / (time.monotonic() - t0 - paused)
                    if settle:
                        time.sleep(settle)
                        paused += settle
                    samples.append(rss_mib(sched.pid))
                    log(f"after {done} tasks: {samples[-1]:.1f} MiB (at the map's end {hot[-1]:.1f}; {rate:.0f} tasks/s)")
            time.sleep(idle)
            idle_rss = rss_mib(sched.pid)
            log(f"idle {idle} s: {idle_rss:.1f} MiB")
        return start, samples, hot, idle_rss
    finally:
        for p in (cluster, sched):
            if p is not None and p.poll() is None:
                p.terminate()
        for p in (cluster, sched):
            if p is not None:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--maps-of", type=int, default=100_000)
    parser.add_argument("--sample-every", type=int, default=100_000)
    parser.add_argument("--idle", type=float, default=120)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--settle", type=float, default=0,
                        help="seconds to wait before each sample (the scheduler gives free memory back 5 s after its "
                             "last task); 0 samples as each map ends")
    args = parser.parse_args()
    binary = os.environ.get("SCALER_BINARY", "bin/scaler")
    start, samples, hot, idle_rss = run_soak(binary, args.tasks, args.maps_of, args.sample_every, args.idle,
                                             args.workers, settle=args.settle)
    print(f"SOAK start={start:.1f} samples={','.join(f'{s:.1f}' for s in samples)} "
          f"hot={','.join(f'{s:.1f}' for s in hot)} idle={idle_rss:.1f}")


if __name__ == "__main__":
    main()
