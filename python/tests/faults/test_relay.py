"""A relayed cluster (``scaler_cluster --relay``): its workers reach the scheduler through one
connection of the cluster process (docs/protocol.md §7.7).

Agents killed with -9 mid-map lose nothing and duplicate nothing, and the scheduler learns of each
death from the relay at once: its worker timeout here (120 s) is longer than the test may take, so
a task held by a dead agent can only come back through the relay's report that the agent's link
closed.
"""

import os
import signal
import time

from .harness import ExecutionLog, ResultCounter, wait_until
from .test_worker_kill import record


def test_relayed_agents_killed_mid_map_lose_nothing(stack, tmp_path):
    n_tasks, kills = 2_000, 2
    stack.start_scheduler("-wt", "120")
    cluster = stack.start_cluster(kills + 1, "-hi", "1", "--relay")
    assert cluster.count("relay: the workers here reach the scheduler over one connection") == 1, cluster.tail()
    executions = ExecutionLog(str(tmp_path / "executions"))
    started = time.monotonic()
    with stack.client(timeout_seconds=60) as client:
        counter = ResultCounter(client)
        futures = [client.submit(record, executions.path, i) for i in range(n_tasks)]
        for k in range(kills):
            goal = n_tasks * (k + 1) // (kills + 2)
            wait_until(lambda: sum(f.done() for f in futures) >= goal, 120, f"{goal} results")
            victim = cluster.agents()[0]
            os.kill(victim, signal.SIGKILL)
            wait_until(lambda: victim not in cluster.agents(), 30, f"agent {victim} to die")
        results = [f.result(timeout=60) for f in futures]
    elapsed = time.monotonic() - started
    runs = executions.counts()
    expected = [i * 3 for i in range(n_tasks)]
    print(f"\nrelayed worker kill -9 x{kills}: {n_tasks} tasks; {counter.summary(results, expected)}; "
          f"{sum(runs.values())} executions; {elapsed:.1f}s")
    counter.assert_exactly_once(results, expected)
    assert set(runs) == {str(i) for i in range(n_tasks)}
