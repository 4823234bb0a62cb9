"""A client killed with -9 with 100 tasks queued: within the client timeout the scheduler drops it,
its queued tasks are cancelled (they never run) and its objects are freed; a new client is served
at once. (Its *running* task is issue 12 point 5.)"""

import os
import signal
import time

from .harness import ExecutionLog, wait_until

CLIENT = r"""
import sys, time
from scaler import Client

def nap(path, i):
    with open(path, "a") as f:
        f.write(f"{i}\n")
    time.sleep(0.25)
    return i

client = Client(sys.argv[1], timeout_seconds=60)
ref = client.send_object(b"x" * 100_000)
futures = [client.submit(nap, sys.argv[2], i) for i in range(100)]
print("submitted", flush=True)
time.sleep(600)
"""


def test_killed_client_queued_tasks_and_objects_dropped(stack, tmp_path):
    client_timeout = 5
    stack.start_scheduler("-ct", str(client_timeout), "-ot", "1")
    stack.start_cluster(1)
    executions = ExecutionLog(str(tmp_path / "executions"))
    before = stack.storage_stats().objects
    victim = stack.start_python("client", CLIENT, stack.address, executions.path, wait_for_line="submitted")
    wait_until(lambda: executions.counts(), 60, "the first task to run")
    held = stack.storage_stats().objects
    victim.kill(signal.SIGKILL)
    killed_at = time.monotonic()
    ran_before = sum(executions.counts().values())
    # The scheduler drops the client when its connection closes (at once) or, for a client that went
    # silent with its connection open, at the client timeout: a SIGKILL closes the connection.
    wait_until(lambda: stack.scheduler.count("client connection closed") or stack.scheduler.count("client timed out"),
               client_timeout + 30, "the scheduler to drop the client")
    noticed = time.monotonic() - killed_at
    ran_at_timeout = sum(executions.counts().values())
    left = wait_until(lambda: [stack.storage_stats().objects] if stack.storage_stats().objects <= before else None,
                      30, "the client's objects to be freed")[0]
    freed = time.monotonic() - killed_at
    with stack.client(timeout_seconds=60) as client:
        started = time.monotonic()
        assert client.submit(os.getpid).result(timeout=60) > 0
        served = time.monotonic() - started
    time.sleep(2)  # 8 more of the dead client's 0.25 s tasks would run now if they were still queued
    ran = sum(executions.counts().values())
    print(f"\nclient kill -9 (-ct {client_timeout}, -ot 1): dropped {noticed:.1f}s after the kill, objects "
          f"{held} -> {left} (baseline {before}) {freed:.1f}s after; {ran} of 100 queued tasks ran "
          f"({ran - ran_before} after the kill, {ran - ran_at_timeout} after the timeout); "
          f"a new client's task took {served:.2f}s")
    assert noticed < client_timeout + 15
    # After the timeout at most the task that was running then (and one the agent had started)
    # completes; none of the ~80 still queued runs.
    assert ran - ran_at_timeout <= 2, (ran_at_timeout, ran)
    assert served < 10
