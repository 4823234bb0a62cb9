"""Issue 12, point 12: a cluster replaces a worker agent that died.

``kill -9`` of one worker agent of ``scaler cluster -n 1`` and ``-n 2``: the cluster keeps running,
starts a new agent after the restart back-off (0.5 s for a first death), the new agent registers
with a new worker id, and a map completes. Prints the restart delays (kill -> new agent process,
kill -> new worker registered). The long form (SCALER_FAULTS_LONG=1) kills the replacement four
times in a row and checks that the back-off doubles (0.5, 1, 2, 4 s). On the code before the fix
the agent is never replaced (-n 2) or the whole cluster exits 1 (-n 1).
"""

import os
import re
import signal
import time

import pytest

from .harness import long_form, wait_until

CONNECTED = re.compile(r"worker connected .*worker=(\S+)")


def add(a, b):
    return a + b


@pytest.mark.parametrize("n", [1, 2])
def test_killed_worker_agent_is_replaced(stack, n):
    kills = long_form(1, 4)
    sched = stack.start_scheduler("-wt", "5")
    cluster = stack.start_cluster(n, "-hi", "1")
    wait_until(lambda: len(CONNECTED.findall(sched.log())) >= n, 30, f"{n} workers registered")
    assert len(cluster.agents()) == n, cluster.agents()
    with stack.client() as client:
        assert client.map(add, [(i, 1) for i in range(20)]) == [i + 1 for i in range(20)]

    delays = []
    victim = cluster.agents()[0]
    for k in range(kills):
        before = cluster.agents()
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)

        def new_agent():
            assert cluster.running(), f"cluster exited with {cluster.proc.returncode} after its worker died"
            return [p for p in cluster.agents() if p not in before]

        victim = wait_until(new_agent, 60, "a new worker agent process", interval=0.01)[0]
        started = time.monotonic() - killed
        wait_until(lambda: len(CONNECTED.findall(sched.log())) >= n + k + 1, 30, "the new worker registered",
                   interval=0.01)
        delays.append((round(started, 2), round(time.monotonic() - killed, 2)))
    ids = CONNECTED.findall(sched.log())
    assert len(set(ids)) == len(ids), f"a worker id was used twice: {ids}"

    with stack.client() as client:
        t0 = time.monotonic()
        assert client.map(add, [(i, 2) for i in range(50)]) == [i + 2 for i in range(50)]
        map_s = time.monotonic() - t0
    assert cluster.running(), f"cluster exited with {cluster.proc.returncode}"
    assert len(cluster.agents()) == n, cluster.agents()
    restarts = cluster.log_lines("restarting it in")
    print(f"\n-n {n}: {kills} kill -9 of an agent; (new agent, registered) seconds after each kill: {delays}; "
          f"a map of 50 then took {map_s:.2f} s")
    for line in restarts:
        print("  " + line[:240])
    assert len(restarts) == kills, restarts
    # Each agent died within a minute of its start, so the back-off doubled from 0.5 s.
    for k, line in enumerate(restarts):
        want = ["500ms", "1s", "2s", "4s"][k]
        assert "killed by signal" in line and f"restarting it in {want} as" in line, line
        assert delays[k][0] >= 0.5 * 2 ** k * 0.9, delays

    # The cluster's own stop restarts nothing and leaves nothing behind (the stack checks survivors).
    assert cluster.stop() == 0
    assert len(cluster.log_lines("restarting it in")) == kills
