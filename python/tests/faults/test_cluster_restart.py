"""Issue 12, point 12: a cluster replaces a worker agent that died.

``kill -9`` of one worker agent of ``scaler cluster -n 1`` and ``-n 2``: the cluster keeps running,
starts a new agent within the restart back-off (0.5 s for a first death), the new agent registers
with a new worker id, and a map completes. Prints the restart delay (kill -> new agent process,
kill -> new worker registered). On the code before the fix the agent is never replaced (-n 2) or
the whole cluster exits 1 (-n 1).
"""

import os
import re
import signal
import time

import pytest

from .harness import wait_until

CONNECTED = re.compile(r"worker connected .*worker=(\S+)")


def add(a, b):
    return a + b


@pytest.mark.parametrize("n", [1, 2])
def test_killed_worker_agent_is_replaced(stack, n):
    sched = stack.start_scheduler("-wt", "5")
    cluster = stack.start_cluster(n, "-hi", "1")
    wait_until(lambda: len(CONNECTED.findall(sched.log())) >= n, 30, f"{n} workers registered")
    before = cluster.agents()
    assert len(before) == n, before
    with stack.client() as client:
        assert client.map(add, [(i, 1) for i in range(20)]) == [i + 1 for i in range(20)]

    victim = before[0]
    killed = time.monotonic()
    os.kill(victim, signal.SIGKILL)

    def new_agent():
        assert cluster.running(), f"cluster exited with {cluster.proc.returncode} after its worker died"
        return [p for p in cluster.agents() if p not in before]

    replacement = wait_until(new_agent, 30, "a new worker agent process", interval=0.01)
    started = time.monotonic()
    wait_until(lambda: len(CONNECTED.findall(sched.log())) >= n + 1, 30, "the new worker registered", interval=0.01)
    registered = time.monotonic()
    ids = CONNECTED.findall(sched.log())
    assert len(set(ids)) == len(ids), f"a worker id was used twice: {ids}"

    with stack.client() as client:
        t0 = time.monotonic()
        assert client.map(add, [(i, 2) for i in range(50)]) == [i + 2 for i in range(50)]
        map_s = time.monotonic() - t0
    assert cluster.running(), f"cluster exited with {cluster.proc.returncode}"
    assert len(cluster.agents()) == n, cluster.agents()
    restarts = cluster.log_lines("restarting it in")
    print(f"\n-n {n}: killed agent {victim}; new agent {replacement[0]} {started - killed:.2f} s after the kill, "
          f"registered {registered - killed:.2f} s after it; a map of 50 then took {map_s:.2f} s")
    for line in restarts:
        print("  " + line[:240])
    assert len(restarts) == 1, restarts
    assert "killed by signal" in restarts[0] and "500ms" in restarts[0], restarts[0]

    # The cluster's own stop restarts nothing and leaves nothing behind (the stack checks survivors).
    assert cluster.stop() == 0
    assert len(cluster.log_lines("restarting it in")) == 1
