"""The scheduler killed with -9 (its in-process object storage with it): a waiting client fails with
TimeoutError within its timeout instead of hanging; the workers, whose object storage is gone,
stop, and the cluster exits. A restarted scheduler on the same port serves new clients once a
cluster connects again. (Workers that survive a scheduler restart, with external storage, are
issue 12 point 6.)"""

import time

import pytest

from .harness import alive, wait_until


def sleep_for(seconds):
    time.sleep(seconds)
    return seconds


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
    status = cluster.wait_exit(timeout=60)
    cluster_after = time.monotonic() - killed_at
    wait_until(lambda: not any(alive(a) for a in agents), 30, "the agents to exit")
    stack.scheduler.start()
    cluster.start()
    with stack.client(timeout_seconds=60) as again:
        assert again.submit(sleep_for, 0.1).result(timeout=60) == 0.1
    print(f"\nscheduler kill -9: the client's TimeoutError after {failed_after:.1f}s (timeout {client_timeout}s: "
          f"{failure.value}); the cluster exited with {status} {cluster_after:.1f}s after the kill "
          f"({cluster.count('object storage connection lost')} storage-loss lines); restarted scheduler serves")
    assert failed_after < client_timeout + 15
    assert status != 0
