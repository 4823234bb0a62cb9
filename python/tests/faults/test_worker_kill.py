"""A worker agent killed with -9 mid-map, three times: nothing lost, nothing duplicated.

The scheduler notices each dead agent (its heartbeat timeout, -wt 5 here) and places the tasks it
held on the surviving workers; the client receives exactly one result per task.
"""

import os
import signal
import time

from .harness import ExecutionLog, ResultCounter, long_form, wait_until


def record(path, i):
    # One line per execution, so the test can count re-runs of tasks the dead agents held.
    with open(path, "a") as f:
        f.write(f"{i}\n")
    time.sleep(0.002)
    return i * 3


def test_worker_agent_kill9_mid_map_three_times(stack, tmp_path):
    n_tasks = long_form(2_000, 20_000)
    kills = 3
    stack.start_scheduler("-wt", "5")
    cluster = stack.start_cluster(kills + 1, "-hi", "1")
    executions = ExecutionLog(str(tmp_path / "executions"))
    started = time.monotonic()
    with stack.client(timeout_seconds=60) as client:
        counter = ResultCounter(client)
        futures = [client.submit(record, executions.path, i) for i in range(n_tasks)]
        killed = []
        for k in range(kills):
            # Kill the next agent once a further quarter of the map is done.
            goal = n_tasks * (k + 1) // (kills + 2)
            wait_until(lambda: sum(f.done() for f in futures) >= goal, 120, f"{goal} results")
            victim = cluster.agents()[0]
            os.kill(victim, signal.SIGKILL)
            killed.append((victim, sum(f.done() for f in futures)))
            wait_until(lambda: victim not in cluster.agents(), 30, f"agent {victim} to die")
        results = [f.result(timeout=180) for f in futures]
    elapsed = time.monotonic() - started
    runs = executions.counts()
    reran = sum(n - 1 for n in runs.values())
    expected = [i * 3 for i in range(n_tasks)]
    print(f"\nworker kill -9 x{kills}: {n_tasks} tasks, killed (pid, results done) {killed}; "
          f"{counter.summary(results, expected)}; {sum(runs.values())} executions ({reran} re-runs); "
          f"{elapsed:.1f}s")
    counter.assert_exactly_once(results, expected)
    assert set(runs) == {str(i) for i in range(n_tasks)}  # every task ran at least once
    assert len(cluster.agents()) >= 1
