"""A result lost on the way is recovered by reconciliation: the client gets exactly one per task.

The worker here is a test transport: a plain DEALER (harness.RawPeer) that speaks the worker side of
docs/protocol.md, answers every task with an inline result, reports what it holds in its heartbeats
(``tasks``, ``echo_seq``), and loses one task on purpose: no result, and it forgets it. Before
reconciliation that task stayed "running" for good (the worker kept heartbeating, so no timeout
ever fired) and ``result()`` never returned. Now the next heartbeat that reports an echo sent after
the task, without listing it, makes the scheduler place it again.
"""

import os
import threading
import time
import uuid

from scaler import protocol as p
from scaler.client.serializer.default import DefaultSerializer

from .harness import ResultCounter, long_form


class LossyWorker(threading.Thread):
    """Answers tasks with the inline result "ok"; loses the drop-th task it receives."""

    def __init__(self, stack, drop: int, heartbeat: float = 0.2):
        super().__init__(daemon=True)
        self.peer = stack.raw_peer(identity=f"{os.getpid()}|Worker|lossy|{uuid.uuid4().hex}".encode())
        self.drop, self.heartbeat = drop, heartbeat
        self.received = []  # task ids, in order
        self.dropped = None
        self.echo_seq = 0
        self.stop = threading.Event()
        self.ok = DefaultSerializer.serialize("ok")

    def send_heartbeat(self):
        # It answers at once, so it holds nothing when it writes a heartbeat.
        self.peer.send(p.WorkerHeartbeat(queue_size=100, task_lock=True, tasks=[], echo_seq=self.echo_seq))

    def on(self, m):
        if isinstance(m, p.Batch):
            for inner, _ in p.unbatch(m):
                if inner is not None:
                    self.on(inner)
        elif isinstance(m, p.WorkerHeartbeatEcho):
            self.echo_seq = m.seq
        elif isinstance(m, p.Task):
            self.received.append(m.task_id)
            if len(self.received) == self.drop:
                self.dropped = m.task_id
                return
            self.peer.send(p.TaskResult(task_id=m.task_id, type=p.TaskResultType.Success, inline=self.ok))

    def run(self):
        next_hb = 0.0
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= next_hb:
                self.send_heartbeat()
                next_hb = now + self.heartbeat
            m = self.peer.recv(timeout=0.02)
            if m is not None:
                self.on(m)
        self.peer.send(p.DisconnectRequest(worker=self.peer.identity))


def task(i):
    return i


def test_dropped_result_is_recovered_by_reconciliation(stack):
    n_tasks = long_form(50, 2_000)
    stack.start_scheduler()  # default worker timeout: 60 s, which never fires for a live worker
    worker = LossyWorker(stack, drop=7)
    worker.start()
    try:
        started = time.monotonic()
        with stack.client(timeout_seconds=60) as client:
            counter = ResultCounter(client)
            futures = [client.submit(task, i) for i in range(n_tasks)]
            results = [f.result(timeout=20) for f in futures]
            elapsed = time.monotonic() - started
            time.sleep(0.5)  # a duplicate would arrive now
    finally:
        worker.stop.set()
        worker.join(10)
    log = stack.scheduler.log_lines("placing them again")
    sent = worker.received.count(worker.dropped)
    expected = ["ok"] * n_tasks
    print(f"\nresult dropped: {n_tasks} tasks, task #{worker.drop} lost on the worker; all {len(results)} results "
          f"in {elapsed:.2f}s; the lost task was sent {sent} times; {counter.summary(results, expected)}; "
          f"scheduler: {log[0].strip() if log else None!r}")
    assert worker.dropped is not None
    counter.assert_exactly_once(results, expected)
    assert sent == 2
    assert log
