"""External object storage killed with -9: every worker stops (one error line each) instead of
running tasks whose objects are gone, and the cluster starts new workers in their place (issue 12
point 12), which serve again once a storage is back. Objects live in the storage's memory only: a
restarted storage is empty, and a task whose objects were lost never succeeds."""

import time

from .harness import alive, wait_until, sleep_for


def test_storage_kill9_stops_the_workers(stack):
    storage = stack.start_storage()
    stack.start_scheduler("-osa", stack.storage_address)
    cluster = stack.start_cluster(2)
    agents = cluster.agents()
    with stack.client(timeout_seconds=60) as client:
        assert client.submit(sleep_for, 0.1).result(timeout=60) == 0.1
        running = client.submit(sleep_for, 5)
        time.sleep(0.5)
        storage.kill()
        killed_at = time.monotonic()
        wait_until(lambda: not any(alive(a) for a in agents), 30, "the agents to exit")
        exited_after = time.monotonic() - killed_at
        lines = cluster.count("object storage connection lost")
        wait_until(lambda: len(cluster.agents()) == len(agents) and not set(cluster.agents()) & set(agents), 30,
                   "new agents in place of the stopped ones")
        replaced_after = time.monotonic() - killed_at
        storage.start()
        assert stack.storage_stats().objects == 0
        with stack.client(timeout_seconds=60) as again:
            t0 = time.monotonic()
            assert again.submit(sleep_for, 0.1).result(timeout=60) == 0.1
            served_after = time.monotonic() - t0
        time.sleep(1)
        old = "waiting" if not running.done() else type(running.exception()).__name__ if running.exception() else "ran"
        print(f"\nstorage kill -9: the {len(agents)} agents stopped {exited_after:.1f}s after the kill "
              f"({lines} storage-loss lines), new agents {replaced_after:.1f}s after it "
              f"({cluster.count('restarting it in')} restart lines); with the storage restarted (empty) a new "
              f"client's task took {served_after:.2f}s; the task whose objects were lost: {old}")
        assert lines == len(agents)
        assert cluster.running() and cluster.count("restarting it in") == len(agents)
        assert old != "ran"
