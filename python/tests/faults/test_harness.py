"""The harness itself: a stack starts, runs a task, shows its process tree, and leaves nothing."""

import os
import signal

from .harness import Stack, alive, descendants, is_agent, is_processor, rss_bytes, wait_until


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
        tree = [s.scheduler.pid, cluster.pid] + descendants(cluster.pid)
        # A processor killed with -9 is replaced by its agent.
        victim = procs[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: victim not in cluster.processors() and len(cluster.processors()) >= 2, 30,
                   "the killed processor to be replaced")
        assert cluster.count("cluster started 2 workers") == 1
    assert not [pid for pid in tree if alive(pid)]


def test_restart_keeps_the_port(stack):
    sched = stack.start_scheduler()
    port, first = sched.port, sched.pid
    sched.restart()
    assert sched.port == port and sched.pid != first and sched.starts == 2
