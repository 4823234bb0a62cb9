"""External object storage killed with -9: every worker stops (one error line each) and the cluster
exits 1 instead of running tasks whose objects are gone; the scheduler keeps the tasks they held,
and a task submitted meanwhile is not failed by anyone (it waits for a worker). Objects live in
the storage's memory only: a restarted storage is empty."""

import time

from .harness import alive, wait_until


def sleep_for(seconds):
    time.sleep(seconds)
    return seconds


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
        status = cluster.wait_exit(timeout=60)
        exited_after = time.monotonic() - killed_at
        wait_until(lambda: not any(alive(a) for a in agents), 30, "the agents to exit")
        lines = cluster.count("object storage connection lost")
        storage.start()
        time.sleep(2)
        waiting = not running.done()
        print(f"\nstorage kill -9: cluster exited with {status} {exited_after:.1f}s after the kill, "
              f"{lines} storage-loss lines for {len(agents)} workers; the running task still waits "
              f"in the scheduler: {waiting}; restarted storage holds {stack.storage_stats().objects} objects")
        assert status == 1
        assert lines == len(agents)
        assert waiting
        assert stack.storage_stats().objects == 0
