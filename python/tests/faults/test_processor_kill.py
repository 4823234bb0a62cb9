"""A processor killed with -9 mid-task: that task fails at once with ProcessorDiedError, the agent
starts a new processor, and the next tasks run on it."""

import os
import signal
import time

import pytest

from scaler.utility.exceptions import ProcessorDiedError

from .harness import is_processor, wait_until


def sleep_in_processor(marker, seconds):
    with open(marker, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(seconds)
    return "finished"


def square(x):
    return x * x


def test_processor_kill9_mid_task(stack, tmp_path):
    stack.start_scheduler()
    cluster = stack.start_cluster(1)
    agent = cluster.agents()[0]
    marker = str(tmp_path / "running")
    with stack.client(timeout_seconds=60) as client:
        future = client.submit(sleep_in_processor, marker, 120)
        wait_until(lambda: os.path.exists(marker) and open(marker).read(), 60, "the task to start")
        victim = int(open(marker).read())
        assert is_processor(victim) and victim in cluster.processors()
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        with pytest.raises(ProcessorDiedError) as failure:
            future.result(timeout=60)
        failed_after = time.monotonic() - killed_at
        wait_until(lambda: [q for q in cluster.processors() if q != victim], 60, "a new processor")
        replaced_after = time.monotonic() - killed_at
        replacement = [q for q in cluster.processors() if q != victim]
        results = client.map(square, [(i,) for i in range(20)])
        print(f"\nprocessor kill -9: pid {victim} killed; ProcessorDiedError after {failed_after:.2f}s "
              f"({failure.value}); new processor {replacement} of agent {agent} seen after "
              f"{replaced_after:.2f}s; next 20 tasks: {'ok' if results == [i * i for i in range(20)] else results}")
        assert results == [i * i for i in range(20)]
        assert cluster.agents() == [agent]  # the agent itself lived on
        assert failed_after < 30
