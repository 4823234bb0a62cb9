"""The harness itself: a stack starts, runs a task, shows its process tree, and leaves nothing."""

import os
import random
import signal

import pytest

from scaler import protocol as p

from .harness import (Role, Stack, alive, descendants, is_agent, is_processor, random_message, rss_bytes,
                      start_time, wait_until)


def test_stack_starts_runs_and_leaves_nothing(scaler_bin, tmp_path):
    with Stack(str(tmp_path / "logs"), binary=scaler_bin) as s:
        s.start_scheduler("-wt", "10")
        cluster = s.start_cluster(2)
        agents = cluster.agents()
        procs = cluster.processors()
        assert len(agents) == 2 and all(is_agent(a) for a in agents)
        assert len(procs) >= 2 and all(is_processor(q) for q in procs)
        with s.client(timeout_seconds=30) as client:
            assert client.submit(pow, 2, 10).result(timeout=60) == 1024
        rss = rss_bytes(s.scheduler.pid)
        print(f"scheduler rss {rss / 2**20:.1f} MiB, agents {agents}, processors {procs}")
        assert rss > 1 << 20
        tree = {q: start_time(q) for q in [s.scheduler.pid, cluster.pid] + descendants(cluster.pid)}
        # An idle processor killed with -9 leaves the process tree; the workers still serve. (One
        # that ran a task: a processor killed while it starts stops its agent, see reliability.md.)
        with s.client(timeout_seconds=30) as client:
            victim = client.submit(os.getpid).result(timeout=60)
        assert victim in procs or victim in cluster.processors()
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: victim not in cluster.processors(), 30, "the killed processor to go")
        # Wait for its agent to see it too: a task sent to a processor that died unnoticed fails
        # with ProcessorDiedError, which is not what this test is about.
        wait_until(lambda: cluster.count("idle processor died"), 30, "the agent to notice")
        with s.client(timeout_seconds=30) as client:
            assert client.map(pow, [(2, i) for i in range(8)]) == [2 ** i for i in range(8)]
        assert cluster.count("cluster started 2 workers") == 1
    assert not [q for q, started in tree.items() if alive(q) and start_time(q) == started]  # pids get reused


def test_restart_keeps_the_port(stack):
    sched = stack.start_scheduler()
    port, first = sched.port, sched.pid
    sched.restart()
    assert sched.port == port and sched.pid != first and sched.starts == 2


def test_raw_peer_speaks_the_wire_format(stack):
    stack.start_scheduler()
    peer = stack.raw_peer()
    peer.send(p.ClientHeartbeat(resource=p.Resource(cpu=0, rss=1 << 20)))
    echo = peer.recv(timeout=30)
    assert isinstance(echo, p.ClientHeartbeatEcho)
    assert echo.object_storage.port == stack.scheduler.port + 1
    rng = random.Random(12)
    for _ in range(200):  # random messages are well framed: they decode to what was built
        m = random_message(rng)
        assert p.decode(p.encode(m)) == m


def test_teardown_fails_when_a_process_escapes(stack, tmp_path):
    # A process that leaves its role's process group (setsid) is not killed with the group; the
    # stack must notice it rather than leave it running.
    pidfile = tmp_path / "escapee"
    role = Role(stack, "escapee", ["sh", "-c", f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 120' & wait"], None)
    stack._add(role).start()
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 10, "the escapee")
    escapee = int(pidfile.read_text())
    with pytest.raises(AssertionError, match="survived"):
        stack.close(grace=1)
    assert wait_until(lambda: not alive(escapee), 10, "the escapee to be killed")
