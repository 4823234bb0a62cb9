"""The scheduler killed with -9 (its in-process object storage with it): a waiting client fails with
TimeoutError within its timeout instead of hanging; the workers, whose object storage is gone,
stop, and the cluster starts new ones in their place (issue 12 point 12). A scheduler restarted on
the same port serves new clients with the same cluster. (Workers that survive a scheduler restart,
with external storage, drop the dead scheduler's work: test_scheduler_restart.py.)"""

import time

import pytest

from .harness import alive, wait_until, sleep_for


def test_scheduler_kill9(stack):
    client_timeout = 5
    stack.start_scheduler()
    cluster = stack.start_cluster(1)
    agents = cluster.agents()
    client = stack.client(timeout_seconds=client_timeout)
    future = client.submit(sleep_for, 60)
    time.sleep(0.5)
    stack.scheduler.kill()
    killed_at = time.monotonic()
    with pytest.raises(TimeoutError) as failure:
        future.result(timeout=120)
    failed_after = time.monotonic() - killed_at
    wait_until(lambda: not any(alive(a) for a in agents), 30, "the agents to exit")
    stopped_after = time.monotonic() - killed_at
    wait_until(lambda: cluster.agents() and not set(cluster.agents()) & set(agents), 30, "a new agent")
    stack.scheduler.start()
    restarted_at = time.monotonic()
    with stack.client(timeout_seconds=60) as again:
        assert again.submit(sleep_for, 0.1).result(timeout=60) == 0.1
    served_after = time.monotonic() - restarted_at
    print(f"\nscheduler kill -9: the client's TimeoutError after {failed_after:.1f}s (timeout {client_timeout}s: "
          f"{failure.value}); the agent stopped {stopped_after:.1f}s after the kill "
          f"({cluster.count('object storage connection lost')} storage-loss lines, "
          f"{cluster.count('restarting it in')} restart lines); the restarted scheduler served the same cluster "
          f"{served_after:.2f}s after its start")
    assert failed_after < client_timeout + 15
    assert cluster.running()
    assert cluster.count("restarting it in") >= 1
