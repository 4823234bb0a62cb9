"""The cluster's task timeout (--task-timeout-seconds) fails a task that runs too long with a
TimeoutError and frees its processor for the next task."""

import time

import pytest

from .harness import wait_until, sleep_for


def test_task_timeout_fires(stack):
    timeout = 2
    stack.start_scheduler()
    cluster = stack.start_cluster(1, "--task-timeout-seconds", str(timeout))
    with stack.client(timeout_seconds=60) as client:
        assert client.submit(sleep_for, 0.1).result(timeout=60) == 0.1  # a warm processor
        before = set(cluster.processors())
        started = time.monotonic()
        future = client.submit(sleep_for, 120)
        with pytest.raises(TimeoutError) as failure:
            future.result(timeout=60)
        fired_after = time.monotonic() - started
        after = client.submit(sleep_for, 0.1).result(timeout=60)
        wait_until(lambda: cluster.processors(), 30, "a processor")
        print(f"\ntask timeout {timeout}s: the 120s task failed after {fired_after:.2f}s with "
              f"{type(failure.value).__name__}({failure.value}); next task -> {after}; "
              f"processors before {sorted(before)}, after {cluster.processors()}")
        assert fired_after >= timeout
        # It fires on time: well before the task would have ended (loose bound: loaded machine).
        assert fired_after < timeout + 20
        assert after == 0.1
        assert cluster.count("task timed out") == 1  # one WARN line, by the agent
