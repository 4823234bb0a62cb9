"""scaler.worker_adapter.symphony.worker.SymphonyWorker's bounds, without a scheduler or Symphony.

Tasks are handed to the worker as the scheduler's messages would be; Symphony is a stand-in whose
calls never answer until the test lets them, so the tasks stay held (or running) while counted.
"""

import concurrent.futures
import logging

from scaler import protocol as p
from scaler.worker_adapter.symphony import worker as sw

SOURCE = b"client-1"
FUNCTION = b"f" * 32


class Held:
    """Symphony whose calls answer only when release() is called."""

    def __init__(self):
        self.futures = []

    def submit(self, payload):
        future = concurrent.futures.Future()
        self.futures.append(future)
        return future

    def release(self):
        for future in self.futures:
            future.set_result(None)

    def close(self):
        pass


class Plain:
    """A serializer that passes bytes through."""

    def deserialize(self, data):
        return data

    def serialize(self, value):
        return b"" if value is None else value


def make_worker(queue_size, base):
    cfg = {"WorkerID": "w-1", "SchedulerAddress": "tcp://127.0.0.1:1", "QueueSize": queue_size}
    symphony = Held()
    worker = sw.SymphonyWorker(cfg, symphony, base)
    worker.serializers[SOURCE] = Plain()
    worker.functions[FUNCTION] = len
    return worker, symphony


def task(n, priority=0):
    return p.Task(task_id=n.to_bytes(4, "big") * 8, source=SOURCE, func_object_id=FUNCTION, priority=priority,
                  arguments=[p.Argument(type=p.ArgumentType.Inline, data=b"x")])


def sent(worker):
    with worker.lock:
        frames, worker.outbox = worker.outbox, []
    return [p.decode(f) for f in frames]


def running(worker):
    with worker.lock:
        return sum(1 for e in worker.tasks.values() if e.state == "running")


def test_tasks_beyond_the_queue_size_are_refused():
    worker, symphony = make_worker(queue_size=3, base=1)
    try:
        for n in range(5):
            worker._handle(task(n))
        assert len(worker.tasks) == 3 and len(worker.queue) == 2  # one runs, two wait
        refused = [m for m in sent(worker) if isinstance(m, p.TaskResult)]
        assert [bytes(m.task_id) for m in refused] == [task(3).task_id, task(4).task_id]
        for m in refused:
            assert m.type == p.TaskResultType.Failed and "queue size of 3" in m.message, m
    finally:
        symphony.release()


def test_bypass_threads_are_capped():
    # Each task outranks the one holding the single slot: every one would get a thread of its own.
    worker, symphony = make_worker(queue_size=1000, base=1)
    try:
        worker._handle(task(0, priority=0))
        for n in range(1, 200):
            worker._handle(task(n, priority=1))
        assert running(worker) == 1 + sw.MAX_BYPASS
        assert len(worker.queue) == 199 - sw.MAX_BYPASS
    finally:
        symphony.release()


def test_malformed_messages_warn_once_a_minute(caplog):
    worker, _ = make_worker(queue_size=10, base=1)
    with caplog.at_level(logging.DEBUG, logger="scaler.symphony"):
        for _ in range(100):
            assert worker._decode(b"\xc1 not msgpack") == []
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    worker.malformed.logged -= sw.LOG_EVERY  # a minute later
    worker._decode(b"\xc1 not msgpack")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and "99 more" in warnings[1].getMessage(), [r.getMessage() for r in warnings]
