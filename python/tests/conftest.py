"""Fixtures for the client tests.

``fake_scheduler``: an in-process stand-in for the scheduler, object storage and one worker (it
runs tasks itself, in its own thread), speaking docs/protocol.md through ``scaler.protocol``. It
lets the client be tested without the Go servers.

``combo`` / ``scaler_binary``: the real Go binary (``$SCALER_BINARY``, else ``go build`` once per
session). Tests that need it are skipped, with the reason, only when there is neither a binary nor
a Go toolchain to build one; a build that fails fails them.
"""

import os
import pickle
import sys
import threading
import time

import cloudpickle
import pytest
import zmq

from scaler import protocol as p

sys.path.insert(0, os.path.dirname(__file__))
from _scaler_binary import free_port, scaler_binary  # noqa: E402


class FakeScheduler(threading.Thread):
    def __init__(self, protected: bool = True, inline: bool = False, inline_only: bool = False):
        super().__init__(daemon=True)
        self.protected = protected
        self.inline = inline or inline_only
        # As the real scheduler for a task that did not ask to keep its result: inline, no object.
        self.inline_only = inline_only
        self.hold = False
        self.silent = False  # stop answering heartbeats (to test client timeouts)
        # on a shutdown request, close every connection without answering, as a scheduler that
        # exits before its answer leaves the machine
        self.vanish_on_shutdown = False
        self.max_object = None  # refuse sets of larger objects, as object storage over --max-memory does
        self.drop_gets = False  # object storage never answers a get (to test fetch deadlines)
        self.port = free_port()
        self.storage_port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.objects = {}
        self.created = set()
        self.deleted = []
        self.received = []  # (client, message)
        self.raw = []  # frames as received
        self.held = []
        self.waiting = []
        self._halt = threading.Event()
        self._ready = threading.Event()
        self._commands = []

    def run(self):
        ctx = zmq.Context()
        sched = ctx.socket(zmq.ROUTER)
        sched.bind(self.address)
        store = ctx.socket(zmq.ROUTER)
        store.bind(f"tcp://127.0.0.1:{self.storage_port}")
        self._sched = sched
        poller = zmq.Poller()
        poller.register(sched, zmq.POLLIN)
        poller.register(store, zmq.POLLIN)
        self._ready.set()
        while not self._halt.is_set():
            events = dict(poller.poll(20))
            while self._commands:
                self._commands.pop(0)()
            if store in events:
                while True:
                    try:
                        frames = store.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._on_storage(store, frames)
            if self.waiting:
                self._retry_waiting()
            if sched in events:
                while True:
                    try:
                        ident, frame = sched.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    message = p.decode(frame)
                    # A Batch's elements are handled as if each had arrived alone (docs/protocol.md §7.6).
                    for element in message.messages if isinstance(message, p.Batch) else (frame,):
                        self.raw.append(element)
                        self._on_message(ident, message if element is frame else p.decode(element))
        sched.close(0)
        store.close(0)
        ctx.term()

    def start(self):
        super().start()
        self._ready.wait(5)
        return self

    def stop(self):
        self._halt.set()
        self.join(5)

    def call(self, fn):
        self._commands.append(fn)

    def release_held(self):
        self.hold = False

        def go():
            held, self.held = self.held, []
            for ident, task in held:
                self._run_task(ident, task)

        self.call(go)

    # -- storage
    def _on_storage(self, store, frames):
        ident, header = frames[0], p.decode(frames[1])
        if header.type == p.ObjectRequestType.Set:
            if self.max_object is not None and len(frames[2]) > self.max_object:
                error = (f"set refused: storing {len(frames[2])} bytes would exceed the memory limit of "
                         f"{self.max_object} bytes (0 bytes in use)")
                reply = p.ObjectResponse(request_id=header.request_id, type=p.ObjectResponseType.Error,
                                         object_id=header.object_id, error=error)
                store.send_multipart([ident, p.encode(reply)])
                return
            self.objects[header.object_id] = bytes(frames[2])
            reply = p.ObjectResponse(request_id=header.request_id, type=p.ObjectResponseType.SetOK, object_id=header.object_id)
            store.send_multipart([ident, p.encode(reply)])
        elif header.type == p.ObjectRequestType.Get:
            if self.drop_gets:
                return
            data = self.objects.get(header.object_id)
            if data is None:
                reply = p.ObjectResponse(request_id=header.request_id, type=p.ObjectResponseType.Error, error="missing")
                store.send_multipart([ident, p.encode(reply)])
            else:
                reply = p.ObjectResponse(request_id=header.request_id, type=p.ObjectResponseType.GetOK,
                                         object_id=header.object_id, payload_length=len(data))
                store.send_multipart([ident, p.encode(reply), data])

    # -- scheduler
    def send(self, ident, message):
        self._sched.send_multipart([ident, p.encode(message)])

    def _on_message(self, ident, m):
        self.received.append((ident, m))
        if isinstance(m, p.ClientHeartbeat):
            if not self.silent:
                self.send(ident, p.ClientHeartbeatEcho(object_storage=p.Address(host="127.0.0.1", port=self.storage_port)))
        elif isinstance(m, p.ObjectInstruction):
            if m.type == p.ObjectInstructionType.Create:
                self.created.update(m.metadata.object_ids)
            elif m.type == p.ObjectInstructionType.Delete:
                self.deleted.extend(m.metadata.object_ids)
        elif isinstance(m, p.Task):
            if self.hold:
                self.held.append((ident, m))
            else:
                self._run_task(ident, m)
        elif isinstance(m, p.GraphTask):
            self._run_graph(ident, m)
        elif isinstance(m, p.TaskCancel):
            for i, (who, task) in enumerate(self.held):
                if task.task_id == m.task_id:
                    del self.held[i]
                    self.send(ident, p.TaskCancelConfirm(task_id=m.task_id, type=p.TaskCancelConfirmType.Canceled))
                    return
            self.send(ident, p.TaskCancelConfirm(task_id=m.task_id, type=p.TaskCancelConfirmType.CancelNotFound))
        elif isinstance(m, p.ClientDisconnect):
            if m.type == p.DisconnectType.Shutdown:
                if self.vanish_on_shutdown and not self.protected:
                    self._halt.set()
                    return
                self.send(ident, p.ClientShutdownResponse(accepted=not self.protected,
                                                          reason="protected" if self.protected else ""))

    def _serializer(self, client):
        import hashlib

        sid = hashlib.md5(client).digest() + hashlib.md5(b"serializer").digest()
        return cloudpickle.loads(self.objects[sid])

    def _execute(self, source, func_id, arg_ids):
        """arg_ids: object ids, or ("inline", bytes) for inline arguments."""
        ser = self._serializer(source)
        try:
            fn = ser.deserialize(self.objects[func_id])
            args = [ser.deserialize(a[1] if isinstance(a, tuple) else self.objects[a]) for a in arg_ids]
            return p.TaskResultType.Success, ser.serialize(fn(*args))
        except Exception as e:
            return p.TaskResultType.Failed, pickle.dumps(e)

    def _store_result(self, source, payload):
        import hashlib

        oid = hashlib.md5(source).digest() + os.urandom(16)
        self.objects[oid] = payload
        return oid

    def _missing(self, source, ids):
        import hashlib

        sid = hashlib.md5(source).digest() + hashlib.md5(b"serializer").digest()
        return any(i not in self.objects for i in list(ids) + [sid])

    def _retry_waiting(self):
        waiting, self.waiting = self.waiting, []
        for ident, m in waiting:
            if isinstance(m, p.GraphTask):
                self._run_graph(ident, m)
            else:
                self._run_task(ident, m)

    def _run_task(self, ident, task):
        stored = [a.data for a in task.arguments if a.type != p.ArgumentType.Inline]
        if self._missing(task.source, [task.func_object_id] + stored):
            self.waiting.append((ident, task))  # object storage parks gets until objects exist
            return
        args = [("inline", a.data) if a.type == p.ArgumentType.Inline else a.data for a in task.arguments]
        typ, payload = self._execute(task.source, task.func_object_id, args)
        inline = payload if self.inline and len(payload) < 1024 else b""
        if inline and self.inline_only and not task.keep_result:
            results = []
        else:
            results = [self._store_result(task.source, payload)]
        self.send(ident, p.TaskResult(task_id=task.task_id, type=typ, results=results, inline=inline,
                                      profile=p.TaskProfile(duration_s=0.001, cpu_time_s=0.001, memory_peak=1)))

    def _run_graph(self, ident, graph):
        ids = [t.func_object_id for t in graph.graph]
        ids += [a.data for t in graph.graph for a in t.arguments if a.type == p.ArgumentType.ObjectID]
        if self._missing(graph.source, ids):
            self.waiting.append((ident, graph))
            return
        nodes = {t.task_id: t for t in graph.graph}
        results = {}
        failure = None
        remaining = list(nodes)
        while remaining:
            progressed = False
            for tid in list(remaining):
                t = nodes[tid]
                deps = [a.data for a in t.arguments if a.type == p.ArgumentType.Task]
                if any(d not in results for d in deps):
                    continue
                remaining.remove(tid)
                progressed = True
                if failure is not None:
                    results[tid] = failure
                    continue
                arg_ids = [results[a.data][1] if a.type == p.ArgumentType.Task
                           else ("inline", a.data) if a.type == p.ArgumentType.Inline else a.data
                           for a in t.arguments]
                typ, payload = self._execute(graph.source, t.func_object_id, arg_ids)
                oid = self._store_result(graph.source, payload)
                results[tid] = (typ, oid)
                if typ != p.TaskResultType.Success:
                    failure = (typ, oid)
            if not progressed:
                break
        for tid in graph.targets:
            typ, oid = results.get(tid, failure)
            self.send(ident, p.TaskResult(task_id=tid, type=typ, results=[oid]))
        self.send(ident, p.TaskResult(task_id=graph.task_id,
                                      type=failure[0] if failure else p.TaskResultType.Success))


@pytest.fixture
def fake_scheduler():
    fake = FakeScheduler().start()
    yield fake
    fake.stop()


@pytest.fixture
def breakable():
    """``(fake, client)``: a client (30 s timeout, 1 s heartbeats) of an inline-only fake
    scheduler that the test may stop to break the connection; both end after the test."""
    from scaler import Client

    fake = FakeScheduler(inline_only=True).start()
    client = Client(fake.address, timeout_seconds=30, heartbeat_interval_seconds=1)
    yield fake, client
    client.disconnect()
    fake.stop()


# ---------------------------------------------------------------- the real binary

@pytest.fixture(scope="session")
def scaler_bin():
    try:
        binary = scaler_binary()
    except Exception as e:  # go build failed: a broken build must not pass as skipped tests
        pytest.fail(f"cannot build the scaler binary: {e}")
    if binary is None:
        pytest.skip("no scaler binary: set SCALER_BINARY or install go")
    os.environ["SCALER_BINARY"] = binary
    return binary


def make_combo(scaler_bin, n_workers=2, **kwargs):
    from scaler import SchedulerClusterCombo

    kwargs.setdefault("logging_level", "WARNING")
    return SchedulerClusterCombo(n_workers=n_workers, **kwargs)


@pytest.fixture(scope="module")
def combo(scaler_bin):
    c = make_combo(scaler_bin, n_workers=2)
    yield c
    c.shutdown()


@pytest.fixture
def client(combo):
    from scaler import Client

    c = Client(combo.get_address(), timeout_seconds=30)
    yield c
    c.disconnect()


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False
