"""Issue 12, point 12: a cluster replaces a worker agent that died.

``kill -9`` of one worker agent of ``scaler cluster -n 1`` and ``-n 2``: the cluster keeps running,
starts a new agent (a new worker id registers with the scheduler) and a map completes. Prints the
restart delay (kill -> new agent process, kill -> new worker registered).

Run: SCALER_BINARY=$PWD/bin/scaler SCALER_PYTHON=$PWD/.venv/bin/python \
     .venv/bin/python -m pytest -s -q python/tests/faults/test_cluster_restart.py
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import cloudpickle
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _scaler_binary import free_port, scaler_binary  # noqa: E402

from scaler import Client  # noqa: E402

# Processors cannot import this test module: its functions travel by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

CONNECTED = re.compile(r"worker connected .*worker=(\S+)")


def add(a, b):
    return a + b


def children(pid):
    """Worker agents of the cluster: direct children running the hidden 'worker' subcommand."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and len(argv) > 1 and argv[1] == b"worker":
            out.append(int(entry))
    return sorted(out)


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not within {timeout} s")


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def stop(proc, timeout=15):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.mark.parametrize("n", [1, 2])
def test_killed_worker_agent_is_replaced(n):
    binary = scaler_binary()
    if binary is None:
        pytest.skip("no scaler binary (set SCALER_BINARY or install go)")
    python = os.environ.get("SCALER_PYTHON", sys.executable)
    address = f"tcp://127.0.0.1:{free_port()}"
    logs = tempfile.mkdtemp(prefix="scaler-fault-cluster-")
    sched_log, cluster_log = os.path.join(logs, "scheduler.log"), os.path.join(logs, "cluster.log")
    # -wt 5: the scheduler re-places the dead worker's tasks soon (noticing that faster is point 11).
    sched = subprocess.Popen([binary, "scheduler", address, "-wt", "5"],
                             stdout=open(sched_log, "w"), stderr=subprocess.STDOUT)
    cluster = subprocess.Popen([binary, "cluster", "-n", str(n), "-hi", "1", "--python", python, address],
                               stdout=open(cluster_log, "w"), stderr=subprocess.STDOUT)
    seen = set()
    try:
        wait_until(lambda: len(CONNECTED.findall(read(sched_log))) >= n, 30, f"{n} workers registered")
        before = children(cluster.pid)
        assert len(before) == n, before
        seen.update(before)
        with Client(address, timeout_seconds=30) as client:
            assert client.map(add, [(i, 1) for i in range(20)]) == [i + 1 for i in range(20)]

        victim = before[0]
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        def new_agent():
            assert cluster.poll() is None, f"cluster exited with {cluster.returncode} after its worker died"
            return [p for p in children(cluster.pid) if p not in before]

        replacement = wait_until(new_agent, 30, "a new worker agent process")
        started = time.monotonic()
        wait_until(lambda: len(CONNECTED.findall(read(sched_log))) >= n + 1, 30, "the new worker registered")
        registered = time.monotonic()
        ids = CONNECTED.findall(read(sched_log))
        assert len(set(ids)) == len(ids), f"a worker id was reused: {ids}"
        assert cluster.poll() is None, f"cluster exited with {cluster.returncode}"

        with Client(address, timeout_seconds=30) as client:
            t0 = time.monotonic()
            assert client.map(add, [(i, 2) for i in range(50)]) == [i + 2 for i in range(50)]
            map_s = time.monotonic() - t0
        assert cluster.poll() is None, f"cluster exited with {cluster.returncode}"
        now = children(cluster.pid)
        assert len(now) == n, now
        seen.update(now)
        restart_lines = [line for line in read(cluster_log).splitlines() if "restarting" in line]
        print(f"\n-n {n}: killed agent pid {victim}; new agent pid {replacement[0]} after "
              f"{started - killed:.2f} s, registered after {registered - killed:.2f} s; "
              f"map of 50 after the restart took {map_s:.2f} s; cluster log: {restart_lines}")
        assert len(restart_lines) == 1, restart_lines
    finally:
        stop(cluster)
        stop(sched)
    orphans = [p for p in seen if os.path.exists(f"/proc/{p}") and open(f"/proc/{p}/stat").read().split()[2] != "Z"]
    assert not orphans, f"worker agents left running after the cluster stopped: {orphans}"
