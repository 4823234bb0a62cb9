"""Issue 12, point 6: after a scheduler restart, workers run none of the dead scheduler's tasks.

External object storage, a scheduler and a 2-worker cluster. A client submits 2,000 short tasks
(more than can finish before the kill); each task appends the time it started to a file. The
scheduler is SIGKILLed and started again on the same port. The old workers re-register with the new
scheduler; the number of the dead scheduler's tasks that start after the restart must be 0 (on the
code before the fix: about 1,900, and a new client's map waited ~20 s behind them), and a new
client's map completes. Prints the figures. The long form (SCALER_FAULTS_LONG=1) submits 20,000.
"""

import re
import time

from .harness import long_form, wait_until

CONNECTED = re.compile(r"worker connected .*worker=(\S+)")
TASKS = long_form(2_000, 20_000)


def mark(path, i):
    with open(path, "a") as f:
        f.write(f"{time.time():.6f} {i}\n")
    time.sleep(0.02)
    return i


def starts(path):
    try:
        with open(path) as f:
            return [float(line.split()[0]) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def test_no_stale_work_after_scheduler_restart(stack, tmp_path):
    marks = str(tmp_path / "marks")
    stack.start_storage()
    sched = stack.start_scheduler("-osa", stack.storage_address)
    cluster = stack.start_cluster(2, "-hi", "1")
    wait_until(lambda: len(CONNECTED.findall(sched.log())) >= 2, 30, "2 workers registered")

    # This client's scheduler dies under it; it stays connected (to the new scheduler, which does
    # not know its tasks) until the stack closes it.
    old = stack.client(timeout_seconds=60)
    futures = [old.submit(mark, marks, i) for i in range(TASKS)]
    wait_until(lambda: len(starts(marks)) >= 50, 30, "50 tasks run")

    sched.kill()
    sched.wait_exit(10)
    killed = time.time()
    ran_before = len(starts(marks))
    time.sleep(0.5)  # an operator's restart takes a moment
    restarted = time.time()
    sched.start()
    second = lambda: sched.log().split("==== harness: start #2", 1)[-1]  # noqa: E731
    wait_until(lambda: len(CONNECTED.findall(second())) >= 2, 30, "the old workers re-registered", interval=0.01)
    registered = time.time()

    with stack.client() as client:
        t0 = time.time()
        assert client.map(pow, [(i, 2) for i in range(100)]) == [i * i for i in range(100)]
        map_s = time.time() - t0
    time.sleep(2)  # anything stale still queued on a worker would run now
    all_starts = starts(marks)
    after_kill = sum(1 for t in all_starts if t > killed)
    after_restart = sum(1 for t in all_starts if t > restarted)
    dropped = cluster.log_lines("scheduler restarted: dropped")
    print(f"\n{TASKS} tasks submitted; {ran_before} had started when the scheduler was killed; started after "
          f"the kill: {after_kill}, after the restart: {after_restart}; the workers re-registered "
          f"{registered - restarted:.2f} s after the restart; a new client's map of 100 took {map_s:.2f} s; "
          f"{sum(f.done() for f in futures)} of the old client's futures done")
    outcomes = {}
    for f in futures:
        if f.done():
            e = f.exception()
            outcomes[type(e).__name__ if e else "result"] = outcomes.get(type(e).__name__ if e else "result", 0) + 1
    print(f"  the old client's futures: {outcomes}")
    for line in dropped:
        print("  " + line[:200])
    assert after_restart == 0, f"{after_restart} of the dead scheduler's tasks ran after the restart"
    assert sched.running() and cluster.running()
    assert len(dropped) == 2, dropped
