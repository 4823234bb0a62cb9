"""The Symphony adapter (``scaler_worker_adapter_symphony``) against a stand-in ``soamapi``.

The stand-in (python/tests/symphony_standin/soamapi.py) runs each pickled call on a thread of the
worker's process, as upstream's example Symphony service would on a compute host. The scheduler
scales through the adapter's webhook: its first start_worker_group starts the one Symphony worker.
This is the only Symphony the adapter has run against; it has not met a real Symphony cluster.
"""

import os
import subprocess
import time

import zmq

from scaler import protocol as p
from scaler.utility.network_util import pending_frames

from .harness import HOST, Adapter, Background, free_port, wait_until

STANDIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "symphony_standin")


def slow_double(x):
    time.sleep(0.02)
    return 2 * x


def nap(seconds, value):
    time.sleep(seconds)
    return value


def fail(message):
    raise ValueError(message)


def parent(address, n):
    # A nested task: the child is submitted from inside this task (priority = this task's + 1), so
    # with --base-concurrency 1 it can only run through the priority bypass.
    from scaler import Client

    with Client(address, timeout_seconds=60) as client:
        return sum(client.submit(slow_double, i).result() for i in range(n))


def start_symphony(stack, tmp_path, concurrency=2, webhook=True):
    port = free_port()
    args = ("--adapter-webhook-url", f"http://{HOST}:{port}/") if webhook else ()
    scheduler = stack.start_scheduler(*args)
    log = str(tmp_path / "soamapi.log")
    stack.env["PYTHONPATH"] = STANDIN + os.pathsep + stack.env["PYTHONPATH"]
    stack.env["SOAMAPI_STANDIN_LOG"] = log
    argv = [stack.binary, "worker_adapter_symphony", f"tcp://{HOST}:{scheduler.port}", "--server-http-host", HOST,
            "-p", str(port), "-sn", "ScalerService", "-n", str(concurrency),
            "-osa", f"tcp://{HOST}:{scheduler.port + 1}", "-hi", "1"]
    adapter = stack._add(Adapter(stack, "symphony", argv, port)).start()
    return scheduler, adapter, log


def standin_lines(log, prefix):
    try:
        with open(log) as f:
            return [line for line in f.read().splitlines() if line.startswith(prefix)]
    except OSError:
        return []


def symphony_workers(adapter):
    """The adapter's Symphony worker processes (python -m scaler.worker_adapter.symphony.worker)."""
    from .harness import cmdline

    return [c for c in adapter.children() if "scaler.worker_adapter.symphony.worker" in cmdline(c)]


def test_symphony_runs_tasks_through_soamapi(stack, tmp_path):
    scheduler, adapter, log = start_symphony(stack, tmp_path)
    with stack.client(timeout_seconds=60) as client:
        # A long task in flight through the assertions: with no task at all (between two of them) the
        # scheduler could shut the idle group down and start it again.
        keeper = client.submit(nap, 600, "kept")
        futures = [client.submit(slow_double, i) for i in range(40)]
        assert [f.result(timeout=60) for f in futures] == [2 * i for i in range(40)]
        # Large results are stored as objects (not inline); exceptions come back as exceptions.
        big = client.submit(nap, 0, b"x" * 100_000)
        assert big.result(timeout=60) == b"x" * 100_000
        error = client.submit(fail, "from Symphony")
        try:
            error.result(timeout=60)
            raise AssertionError("no exception")
        except ValueError as exc:
            assert "from Symphony" in str(exc)
        assert len(standin_lines(log, "start ")) == 43, "not every task went through soamapi"
        assert scheduler.count("scaling: started worker group") == 1
        assert "group=symphony-" in scheduler.log_lines("scaling: started worker group")[0]
        # Only one Symphony worker at a time.
        assert adapter.start_group() == (429, {"error": "Symphony worker already started"})
        assert len(symphony_workers(adapter)) == 1
        assert not keeper.done()
        assert keeper.cancel(timeout=30), "the long task was not cancelled"
    # Stopping the adapter stops its worker.
    (worker,) = symphony_workers(adapter)
    assert adapter.stop() == 0
    from .harness import alive

    wait_until(lambda: not alive(worker), 30, "the Symphony worker to exit")


def test_symphony_nested_tasks_bypass_the_concurrency(stack, tmp_path):
    _scheduler, _adapter, log = start_symphony(stack, tmp_path, concurrency=1)
    with stack.client(timeout_seconds=60) as client:
        # Two parents on one slot: each parent's children can only run above the base concurrency.
        futures = [client.submit(parent, stack.address, 5) for _ in range(2)]
        assert [f.result(timeout=90) for f in futures] == [2 * sum(range(5))] * 2
    assert len(standin_lines(log, "start ")) == 12


class Placements(Background):
    """Reads the scheduler's monitor in a thread: the ids of the tasks it has sent to a worker."""

    def __init__(self, address):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SUBSCRIBE, bytes([p.Kind.StateTask]))
        self.sock.connect(address)
        self.placed = set()
        super().__init__()

    def step(self):
        if not self.sock.poll(100):
            return
        for frame in pending_frames(self.sock):
            m = p.decode(frame)
            if isinstance(m, p.StateTask) and bytes(m.worker):
                self.placed.add(bytes(m.task_id))

    def stop(self):
        super().stop(5)
        self.sock.close()
        self.ctx.term()


def test_symphony_cancels(stack, tmp_path):
    scheduler, _adapter, log = start_symphony(stack, tmp_path, concurrency=1)
    placements = Placements(f"tcp://{HOST}:{scheduler.port + 2}")
    try:
        with stack.client(timeout_seconds=60) as client:
            running = client.submit(nap, 3, "slow")
            wait_until(lambda: standin_lines(log, "start "), 60, "the first task to run on Symphony")
            queued = client.submit(nap, 0, "never")
            # Sent to the worker, where it waits for the slot: the cancel that follows on the same
            # connection is the worker's cancel of a queued task, not the scheduler's.
            wait_until(lambda: queued.task_id in placements.placed, 60, "the queued task to reach the worker")
            assert queued.cancel(timeout=30), "a queued task was not cancelled"
            assert running.cancel(timeout=30), "a running task was not cancelled (force)"
            # The worker goes on: the slot frees when Symphony answers for the dropped task.
            assert client.submit(nap, 0, "after").result(timeout=60) == "after"
    finally:
        placements.stop()
    starts = standin_lines(log, "start ")
    assert len(starts) == 2, f"the cancelled queued task ran on Symphony: {starts}"


def test_symphony_without_soamapi_says_what_to_install(stack):
    scheduler = stack.start_scheduler()
    env = dict(stack.env)
    result = subprocess.run(
        [stack.binary, "worker_adapter_symphony", f"tcp://{HOST}:{scheduler.port}", "-p", str(free_port()), "-sn", "S",
         "-osa", f"tcp://{HOST}:{scheduler.port + 1}"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "soamapi" in lines[0] and "install" in lines[0], lines[0]
