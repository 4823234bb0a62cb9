"""The native worker adapter (``scaler_worker_adapter_native``) and the scheduler's scaling policy, end to end.

- Every row of upstream's HTTP API table (reference/worker.md §6.1) against the real adapter, plus our
  bounds (413, 400 for a body that is not JSON, 404/405) and the lifecycle promises: worker ids equal the
  ids the workers register with, --max-workers counts live workers only, a group shutdown does not block
  the adapter, stopping the adapter stops every worker.
- A scheduler with --adapter-webhook-url and an adapter with --max-workers 4, no cluster: 200 tasks of
  50 ms; four workers at the peak, every result right, every group shut down afterwards; the same with two
  groups killed by kill -9 mid-run.
- The scheduler keeps serving a cluster's workers while its adapter is down, answers 500, or hangs past
  the webhook timeout; each failure is logged once (rate-limited), not once per retry.
"""

import http.server
import os
import re
import signal
import threading
import time

import pytest

from .harness import HOST, free_port, processors_of, wait_until


def slow_double(x):
    time.sleep(0.05)
    return 2 * x


def double(x):
    return 2 * x


WORKER_ID = re.compile(r"^(\d+)\|Worker\|[0-9a-f]{32}\|[0-9a-f]{32}$")


def scheduler_saw(scheduler, worker_id):
    return scheduler.count(worker_id) > 0


# ---------------------------------------------------------------- the HTTP API, row by row

def test_api_rows(stack):
    scheduler = stack.start_scheduler()
    adapter = stack.start_adapter("-mw", "2", "-hi", "1")

    # Upstream's table, row by row.
    assert adapter.post({}) == (400, {"error": "No action specified"})
    assert adapter.post({"worker_group_id": "x"}) == (400, {"error": "No action specified"})
    assert adapter.post({"action": "bogus"}) == (400, {"error": "Unknown action"})
    assert adapter.post({"action": 7}) == (400, {"error": "Unknown action"})

    status, first = adapter.start_group()
    assert status == 200, first
    assert first["status"] == "Worker group started"
    assert re.match(r"^native-[0-9a-f]{32}$", first["worker_group_id"]), first
    assert len(first["worker_ids"]) == 1
    match = WORKER_ID.match(first["worker_ids"][0])
    assert match and int(match.group(1)) == adapter.pid, first  # upstream's shape: the adapter's pid
    # The id returned is the id the worker uses with the scheduler.
    wait_until(lambda: scheduler_saw(scheduler, first["worker_ids"][0]), 30, "the worker to connect with that id")

    status, second = adapter.start_group()
    assert status == 200, second
    assert second["worker_group_id"] != first["worker_group_id"]
    assert second["worker_ids"] != first["worker_ids"]
    wait_until(lambda: len(adapter.agents()) == 2, 30, "two worker agents")

    assert adapter.start_group() == (429, {"error": "Maximum number of workers (2) reached."})

    assert adapter.post({"action": "shutdown_worker_group"}) == (400, {"error": "No worker_group_id specified"})
    assert adapter.shutdown_group("native-nope") == (404, {"error": "Worker group with ID native-nope does not exist."})

    agents_before = adapter.agents()
    assert adapter.shutdown_group(first["worker_group_id"]) == (200, {"status": "Worker group shutdown"})
    wait_until(lambda: len(adapter.agents()) == 1, 30, "the shut-down group's worker to exit")
    # Shut down twice: the group is gone.
    assert adapter.shutdown_group(first["worker_group_id"])[0] == 404

    # --max-workers counts live workers: a killed worker frees its slot, while its group stays listed
    # until shut down (the scheduler reaps it), so its shutdown still answers 200.
    (survivor,) = adapter.agents()
    assert survivor in agents_before
    os.kill(survivor, signal.SIGKILL)
    wait_until(lambda: not adapter.agents(), 30, "the killed agent to be gone")
    wait_until(lambda: adapter.count("ended by itself") >= 1, 30, "the adapter to notice")
    status, third = adapter.start_group()
    assert status == 200, third
    status, fourth = adapter.start_group()
    assert status == 200, fourth
    assert adapter.start_group()[0] == 429
    assert adapter.shutdown_group(second["worker_group_id"]) == (200, {"status": "Worker group shutdown"})

    # Outside the table: other paths, methods, bodies.
    assert adapter.post({"action": "start_worker_group"}, path="/other")[0] == 404
    assert adapter.post(None, method="GET")[0] == 405
    assert adapter.post(None, method="PUT")[0] == 405
    assert adapter.post(b"{not json")[0] == 400
    assert adapter.post(b"[1, 2]")[0] == 400
    status, body = adapter.post(b'{"action": "' + b"x" * (128 << 10) + b'"}')
    assert status == 413, (status, body)

    # Stopping the adapter stops every worker it started, processors included.
    stack.snapshot()
    tree = adapter.descendants()
    assert len([p for p in tree if p in adapter.agents()]) == 2
    assert adapter.stop() == 0
    wait_until(lambda: not any(os.path.exists(f"/proc/{p}") and _alive(p) for p in tree), 30,
               "every worker process to be gone")


def _alive(pid):
    from .harness import alive

    return alive(pid)


def test_shutdown_does_not_block_the_adapter(stack):
    """A worker that does not react to SIGINT (stopped with SIGSTOP) is shut down in the background:
    the shutdown answers at once, other requests are served meanwhile, its slot stays taken until it is
    gone, and it is killed after the grace period."""
    stack.start_scheduler()
    adapter = stack.start_adapter("-mw", "1", "-hi", "1")
    status, group = adapter.start_group()
    assert status == 200, group
    wait_until(lambda: len(adapter.agents()) == 1, 30, "the worker agent")
    (agent,) = adapter.agents()
    os.kill(agent, signal.SIGSTOP)
    try:
        began = time.monotonic()
        assert adapter.shutdown_group(group["worker_group_id"]) == (200, {"status": "Worker group shutdown"})
        assert adapter.start_group()[0] == 429  # still alive: still counted
        assert adapter.post({}) == (400, {"error": "No action specified"})
        assert time.monotonic() - began < 5, "the adapter blocked on the stopping worker"
        wait_until(lambda: not _alive(agent), 40, "the stopped worker to be killed after the grace period")
    finally:
        try:
            os.kill(agent, signal.SIGCONT)
        except ProcessLookupError:
            pass
    status, again = adapter.start_group()
    assert status == 200, again


# ---------------------------------------------------------------- the policy, end to end

class PeakWatcher:
    """Samples the adapter's live worker agents every 50 ms in a thread."""

    def __init__(self, adapter):
        self.adapter = adapter
        self.peak = 0
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            n = len(self.adapter.agents()) if self.adapter.running() else 0
            self.peak = max(self.peak, n)
            self.samples.append(n)
            self._stop.wait(0.05)

    def stop(self):
        self._stop.set()
        self._thread.join(5)


def start_scaling_stack(stack, max_workers=4, *scheduler_args):
    adapter_port = free_port()
    scheduler = stack.start_scheduler("--adapter-webhook-url", f"http://{HOST}:{adapter_port}/", "-wt", "5",
                                      *scheduler_args)
    adapter = stack.start_adapter("-mw", str(max_workers), "-hi", "1", port=adapter_port)
    return scheduler, adapter


def scaling_counts(scheduler):
    return scheduler.count("scaling: started worker group"), scheduler.count("scaling: shut down worker group")


@pytest.mark.parametrize("kills", [0, 2])
def test_scaling_end_to_end(stack, kills):
    scheduler, adapter = start_scaling_stack(stack)
    n = 200
    began = time.monotonic()
    with stack.client(timeout_seconds=60) as client:
        watcher = PeakWatcher(adapter)
        try:
            futures = [client.submit(slow_double, i) for i in range(n)]
            done_at_kill = None
            if kills:
                # Kill two groups' workers at once (agent and processors: each worker has a process
                # group of its own) while the map runs on at least three.
                wait_until(lambda: len(adapter.agents()) >= 3 and sum(f.done() for f in futures) >= 20, 60,
                           "three workers and 20 results")
                victims = adapter.agents()[:kills]
                done_at_kill = sum(f.done() for f in futures)
                for victim in victims:
                    stack._remember_tree(victim)
                    os.killpg(victim, signal.SIGKILL)
                wait_until(lambda: not set(victims) & set(adapter.agents()), 30, "the killed agents to die")
            results = [f.result(timeout=120) for f in futures]
        finally:
            watcher.stop()
    took = time.monotonic() - began
    assert results == [2 * i for i in range(n)]  # none lost, each once, in order
    # --max-workers 4 is never exceeded; without kills all four run at the peak.
    assert watcher.peak <= 4, f"peak {watcher.peak} workers (samples {watcher.samples[::10]})"
    if kills:
        assert done_at_kill < n, "the kills came after the map had finished"
    else:
        assert watcher.peak == 4, f"peak {watcher.peak} workers (samples {watcher.samples[::10]})"
    # After the load every group is shut down and no worker process is left.
    wait_until(lambda: not adapter.agents(), 60, "every group to be shut down")
    wait_until(lambda: scaling_counts(scheduler)[0] == scaling_counts(scheduler)[1], 30,
               "the scheduler to forget every group")
    starts, stops = scaling_counts(scheduler)
    assert starts >= 4 + kills, scheduler.log_lines("scaling:")
    assert not [line for line in scheduler.log_lines("scaling:") if "ERROR" in line or "EROR" in line]
    # One INFO line per start and stop, with the group and the reason.
    for line in scheduler.log_lines("scaling: started worker group") + scheduler.log_lines("scaling: shut down worker group"):
        assert "group=native-" in line and "reason=" in line, line
    if kills:
        assert scheduler.count("its workers are gone") >= 1 or stops >= starts
    print(f"\nscaling e2e kills={kills}: {n} tasks in {took:.1f}s, peak {watcher.peak} workers, "
          f"{starts} groups started, {stops} shut down, results done at the kills: {done_at_kill}")


# ---------------------------------------------------------------- a failing adapter never hurts the scheduler

class FakeAdapter:
    """An HTTP server on 127.0.0.1 that answers every request with ``status`` after ``delay`` seconds."""

    def __init__(self, status=500, delay=0.0):
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                outer.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if delay:
                    time.sleep(delay)
                body = b'{"error": "adapter on fire"}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("fault", ["down", "500", "429", "hangs"])
def test_scheduler_serves_cluster_while_adapter_fails(stack, fault):
    fake = None
    if fault == "down":
        url = f"http://{HOST}:{free_port()}/"  # nothing listens there
    else:
        fake = FakeAdapter(status={"500": 500, "429": 429, "hangs": 200}[fault], delay=8.0 if fault == "hangs" else 0)
        url = f"http://{HOST}:{fake.port}/"
    try:
        scheduler = stack.start_scheduler("--adapter-webhook-url", url, "--adapter-webhook-timeout-seconds", "2")
        stack.start_cluster(1, "-hi", "1")
        with stack.client(timeout_seconds=60) as client:
            # More tasks than workers: the scheduler keeps asking the adapter for a group while the
            # cluster's worker does the work.
            for _round in range(3):
                futures = [client.submit(slow_double, i) for i in range(60)]
                assert [f.result(timeout=60) for f in futures] == [2 * i for i in range(60)]
            wait_until(lambda: scheduler.count("scaling: adapter") >= 1, 30, "the failure to be logged")
            # Still asking (every 5 s), still logged only once at WARN/ERROR.
            if fake is not None:
                wait_until(lambda: fake.requests >= 2, 30, "a retry")
            loud = [line for line in scheduler.log_lines("scaling: adapter")
                    if not line.startswith("[DEBG]")]
            assert len(loud) == 1, loud
            assert client.map(double, [(i,) for i in range(10)]) == [2 * i for i in range(10)]
        assert scheduler.running()
        if fault == "hangs":
            assert "no answer within 2s" in loud[0], loud
    finally:
        if fake is not None:
            fake.close()


def test_adapter_killed_takes_its_workers(stack):
    """kill -9 of the adapter: its workers (each in a process group of its own, so a signal to the
    adapter's group does not reach them) die with it, processors included."""
    stack.start_scheduler()
    adapter = stack.start_adapter("-mw", "2", "-hi", "1")
    for _ in range(2):
        assert adapter.start_group()[0] == 200
    wait_until(lambda: len(adapter.agents()) == 2 and all(processors_of(a) for a in adapter.agents()), 30,
               "two workers with processors")
    tree = adapter.descendants()
    stack._remember_tree(adapter.pid)
    adapter.kill(signal.SIGKILL)
    adapter.wait_exit(10)
    wait_until(lambda: not any(_alive(p) for p in tree), 30, "the workers and processors of the killed adapter to exit")
