"""Issue 12, point 6: after a scheduler restart, workers run none of the dead scheduler's tasks.

External object storage, a scheduler and a 2-worker cluster. A client submits 2,000 short tasks
(more than can finish before the kill); each task appends the time it started to a file. The
scheduler is SIGKILLed and started again on the same port. The old workers re-register with the new
scheduler; the number of the dead scheduler's tasks that start after the restart must be 0, and a
new client's map completes. Prints the figures.

Run: SCALER_BINARY=$PWD/bin/scaler SCALER_PYTHON=$PWD/.venv/bin/python \
     .venv/bin/python -m pytest -s -q python/tests/faults/test_scheduler_restart.py
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _scaler_binary import free_port, scaler_binary  # noqa: E402

from scaler import Client  # noqa: E402

CONNECTED = re.compile(r"worker connected .*worker=(\S+)")
TASKS = 2000

# The first client runs in its own process: its scheduler dies under it, and it is killed after.
SUBMITTER = textwrap.dedent("""
    import sys, time
    from scaler import Client

    def mark(path, i):
        import time
        with open(path, "a") as f:
            f.write(f"{time.time():.6f} {i}\\n")
        time.sleep(0.02)
        return i

    address, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    client = Client(address, timeout_seconds=60)
    futures = [client.submit(mark, path, i) for i in range(n)]
    print("submitted", flush=True)
    time.sleep(600)
""")


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"{what} not within {timeout} s")


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def starts(path):
    return [float(line.split()[0]) for line in read(path).splitlines() if line.strip()]


def stop(proc, timeout=15):
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_no_stale_work_after_scheduler_restart():
    binary = scaler_binary()
    if binary is None:
        pytest.skip("no scaler binary (set SCALER_BINARY or install go)")
    python = os.environ.get("SCALER_PYTHON", sys.executable)
    address = f"tcp://127.0.0.1:{free_port()}"
    storage = f"tcp://127.0.0.1:{free_port()}"
    work = tempfile.mkdtemp(prefix="scaler-fault-restart-")
    marks = os.path.join(work, "marks")
    log = lambda name: open(os.path.join(work, name), "w")  # noqa: E731
    procs = []

    def start(argv, name):
        p = subprocess.Popen(argv, stdout=log(name), stderr=subprocess.STDOUT)
        procs.append(p)
        return p

    try:
        start([binary, "object_storage_server", storage], "storage.log")
        sched = start([binary, "scheduler", address, "-osa", storage], "scheduler-1.log")
        cluster = start([binary, "cluster", "-n", "2", "-hi", "1", "--python", python, address], "cluster.log")
        wait_until(lambda: len(CONNECTED.findall(read(os.path.join(work, "scheduler-1.log")))) >= 2, 30,
                   "2 workers registered")
        submitter = start([python, "-c", SUBMITTER, address, marks, str(TASKS)], "submitter.log")
        wait_until(lambda: "submitted" in read(os.path.join(work, "submitter.log")), 60, "2,000 tasks submitted")
        wait_until(lambda: len(starts(marks)) >= 50, 30, "50 tasks run")

        sched.kill()
        sched.wait(10)
        killed = time.time()
        ran_before = len(starts(marks))
        time.sleep(0.5)  # an operator's restart takes a moment; the port must be reusable at once
        restarted = time.time()
        sched2 = start([binary, "scheduler", address, "-osa", storage], "scheduler-2.log")
        wait_until(lambda: len(CONNECTED.findall(read(os.path.join(work, "scheduler-2.log")))) >= 2, 30,
                   "the old workers re-registered")
        registered = time.time()

        with Client(address, timeout_seconds=30) as client:
            t0 = time.time()
            assert client.map(pow, [(i, 2) for i in range(100)]) == [i * i for i in range(100)]
            map_s = time.time() - t0
        time.sleep(2)  # anything stale still queued on a worker would run now
        all_starts = starts(marks)
        after_kill = sum(1 for t in all_starts if t > killed)
        after_restart = sum(1 for t in all_starts if t > restarted)
        dropped = [line for line in read(os.path.join(work, "cluster.log")).splitlines() if "dropped" in line]
        print(f"\n{TASKS} tasks submitted; {ran_before} had started when the scheduler was killed; "
              f"started after the kill: {after_kill}, after the restart: {after_restart}; "
              f"workers re-registered {registered - restarted:.2f} s after the restart; "
              f"a new client's map of 100 took {map_s:.2f} s")
        for line in dropped:
            print("  " + line)
        assert after_restart == 0, f"{after_restart} of the dead scheduler's tasks ran after the restart"
        assert sched2.poll() is None and cluster.poll() is None
        assert len(dropped) == 2, dropped
    finally:
        for p in reversed(procs):
            stop(p)
