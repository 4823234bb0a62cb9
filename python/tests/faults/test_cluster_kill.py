"""A whole cluster killed with -9 mid-map: its agents notice (parent-death signal), leave the
scheduler and stop their processors; their tasks finish on the other cluster; nothing lost,
nothing duplicated, no orphan left."""

import time

from .harness import ResultCounter, alive, long_form, wait_until


def double(i):
    time.sleep(0.002)
    return 2 * i


def test_cluster_kill9_mid_map(stack):
    n_tasks = long_form(2_000, 20_000)
    stack.start_scheduler()
    doomed = stack.start_cluster(2, name="doomed")
    stack.start_cluster(1, name="survivor")
    with stack.client(timeout_seconds=60) as client:
        counter = ResultCounter(client)
        futures = [client.submit(double, i) for i in range(n_tasks)]
        wait_until(lambda: sum(f.done() for f in futures) >= n_tasks // 4, 120, "a quarter of the results")
        orphans = doomed.descendants()
        done_at_kill = sum(f.done() for f in futures)
        doomed.kill()  # SIGKILL to the cluster process only
        killed_at = time.monotonic()
        wait_until(lambda: not any(alive(q) for q in orphans), 30, "the dead cluster's agents and processors to exit")
        gone_after = time.monotonic() - killed_at
        results = [f.result(timeout=180) for f in futures]
    expected = [2 * i for i in range(n_tasks)]
    left = stack.scheduler.count("worker disconnected") + stack.scheduler.count("worker timed out")
    print(f"\ncluster kill -9: {n_tasks} tasks, {done_at_kill} done at the kill; its {len(orphans)} agents and "
          f"processors gone {gone_after:.1f}s later; {counter.summary(results, expected)}; scheduler lines on "
          f"workers leaving: {left}")
    counter.assert_exactly_once(results, expected)
    assert left == 2  # both workers of the dead cluster left the scheduler
