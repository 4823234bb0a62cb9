"""The processor driven directly over its channel (docs/protocol.md §7.5), as the Go agent does."""

import copy
import hashlib
import operator
import os
import pickle
import socket
import struct
import subprocess
import sys
import time
from typing import Optional

import cloudpickle
import msgpack
import pytest

from _scaler_binary import free_port, scaler_binary
from scaler.client.serializer.default import DefaultSerializer
from scaler.io import ObjectStorageClient
from scaler.protocol import ProcessorCancel, ProcessorResult, TaskResultType, encode, wire
from scaler.protocol.messages import Kind
from scaler.utility.exceptions import ObjectNotFoundError
from scaler.worker import processor as processor_module

_LENGTH = struct.Struct("<I")
SOURCE = b"4242|Client|processor-test"


# Functions the processor can unpickle without this test module: importable by reference.
echo = copy.copy  # returns immutable values themselves
fail = operator.getitem  # fail({}, key) raises KeyError(key)


def test_inline_result_frames_match_codec():
    for result_type in (TaskResultType.Success, TaskResultType.Failed):
        for size in (0, 1, 255, 256, 4096, 65535, 65536, 70000):
            task_id, payload = os.urandom(16), os.urandom(size)
            frame = wire.inline_result(task_id, int(result_type), payload)
            expected = encode(ProcessorResult(task_id=task_id, type=result_type, result_object_id=b"",
                                              result_object_name=b"", inline=payload, message=""))
            assert frame == _LENGTH.pack(len(expected)) + expected


@pytest.fixture(scope="module")
def storage_port():
    binary = scaler_binary()
    if binary is None:
        pytest.skip("no scaler binary (set SCALER_BINARY or put go on PATH)")
    port = free_port()
    proc = subprocess.Popen([binary, "object_storage_server", f"tcp://127.0.0.1:{port}"], stdout=subprocess.DEVNULL)
    time.sleep(0.2)
    yield port
    proc.terminate()
    proc.wait(10)


class Channel:
    """The agent's end of a processor's channel."""

    def __init__(self, storage_port: int, env: Optional[dict] = None):
        self.port = storage_port
        serializer = DefaultSerializer()
        self.serializer = serializer
        owner = hashlib.md5(SOURCE).digest()
        self.serializer_id = owner + hashlib.md5(b"serializer").digest()
        self.functions = {fn: owner + os.urandom(16) for fn in (echo, fail, print, processor_module.current_task,
                                                                time.sleep)}
        with ObjectStorageClient(f"tcp://127.0.0.1:{storage_port}", timeout_s=5) as storage:
            storage.set_object(self.serializer_id, cloudpickle.dumps(serializer))
            for fn, object_id in self.functions.items():
                storage.set_object(object_id, serializer.serialize(fn))
        self.sock, theirs = socket.socketpair()
        env = dict(os.environ, **(env or {}))
        env["PYTHONPATH"] = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
        self.proc = subprocess.Popen([sys.executable, "-m", "scaler.worker.processor", "--fd", str(theirs.fileno())],
                                     pass_fds=[theirs.fileno()], env=env)
        theirs.close()
        self.sock.settimeout(20)
        self.buffer = b""
        assert msgpack.unpackb(self.recv()[1:])["error"] == ""

    def recv(self) -> bytes:
        while True:
            if len(self.buffer) >= 4:
                (length,) = _LENGTH.unpack_from(self.buffer)
                if len(self.buffer) >= 4 + length:
                    frame, self.buffer = self.buffer[4 : 4 + length], self.buffer[4 + length :]
                    return frame
            data = self.sock.recv(1 << 20)
            assert data, "processor closed the channel"
            self.buffer += data

    def task(self, fn, *args, keep_result=False, stream_output=False, arguments=None, extra=None) -> tuple:
        """``arguments``: the wire arguments as given (default: ``args``, inline). ``extra``:
        (position, name, value) of a field inserted into the map, as a later Go might send."""
        task_id = os.urandom(16)
        body = {
            "task_id": task_id, "source": SOURCE, "serializer_id": self.serializer_id,
            "func_object_id": self.functions[fn], "argument_ids": [], "metadata": b"", "priority": 0,
            "stream_output": stream_output, "object_storage": {"host": "127.0.0.1", "port": self.port},
            "arguments": arguments if arguments is not None else [
                {"type": 2, "data": self.serializer.serialize(a)} for a in args
            ],
            "keep_result": keep_result,
        }
        if extra is not None:
            fields = list(body.items())
            fields.insert(extra[0], extra[1:])
            body = dict(fields)
        frame = bytes((65,)) + msgpack.packb(body, use_bin_type=True)
        return task_id, _LENGTH.pack(len(frame)) + frame

    def result(self) -> dict:
        frame = self.recv()
        assert frame[0] == 66
        return msgpack.unpackb(frame[1:])

    def assert_echoes(self, fn, value):
        """Sends one task fn(value), checks its result comes back inline as value and
        returns the task's id."""
        task_id, frame = self.task(fn, value)
        self.sock.sendall(frame)
        result = self.result()
        assert result["task_id"] == task_id and pickle.loads(result["inline"]) == value
        return task_id

    def close(self):
        self.sock.close()
        self.proc.wait(10)


def test_processor_frames_split_joined_and_large(storage_port):
    channel = Channel(storage_port)
    try:
        # Several tasks in one write: one result each, in order.
        tasks = [channel.task(echo, i) for i in range(5)]
        channel.sock.sendall(b"".join(frame for _, frame in tasks))
        for i, (task_id, _) in enumerate(tasks):
            result = channel.result()
            assert result["task_id"] == task_id and result["type"] == 0
            assert pickle.loads(result["inline"]) == i and result["result_object_id"] == b""
        # A frame split over writes, byte by byte at the start.
        task_id, frame = channel.task(echo, "split")
        for i in range(6):
            channel.sock.sendall(frame[i : i + 1])
            time.sleep(0.01)
        channel.sock.sendall(frame[6:])
        result = channel.result()
        assert result["task_id"] == task_id and pickle.loads(result["inline"]) == "split"
        # A frame larger than the processor's read buffer (its argument inline), then a small one
        # in the same write; the large result goes through object storage.
        big = os.urandom(processor_module._READ_BUFFER + 12345)
        (big_id, big_frame), (small_id, small_frame) = channel.task(echo, big), channel.task(echo, 7)
        channel.sock.sendall(big_frame + small_frame)
        result = channel.result()
        assert result["task_id"] == big_id and result["type"] == 0 and len(result["result_object_id"]) == 32
        with ObjectStorageClient(f"tcp://127.0.0.1:{storage_port}", timeout_s=5) as storage:
            assert pickle.loads(storage.get_object(result["result_object_id"])) == big
        result = channel.result()
        assert result["task_id"] == small_id and pickle.loads(result["inline"]) == 7
        # The running task is visible to the function (nested clients read its priority), on the
        # template path too (the same frame layout twice).
        for _ in range(2):
            task_id, frame = channel.task(processor_module.current_task)
            channel.sock.sendall(frame)
            result = channel.result()
            assert result["type"] == 0, pickle.loads(result["inline"])
            task = pickle.loads(result["inline"])
            assert task.task_id == task_id and task.priority == 0 and task.source == SOURCE
        # keep_result after tasks of the same layout: stored as well as inline.
        task_id, frame = channel.task(echo, 11, keep_result=True)
        channel.sock.sendall(frame)
        result = channel.result()
        assert result["task_id"] == task_id and len(result["result_object_id"]) == 32
        assert pickle.loads(result["inline"]) == 11
        # With stream_output, what the task prints comes first, as ProcessorLog messages.
        for _ in range(2):
            task_id, frame = channel.task(print, "hello", stream_output=True)
            channel.sock.sendall(frame)
            printed = ""
            while True:
                frame = channel.recv()
                if frame[0] != 67:
                    break
                log = msgpack.unpackb(frame[1:])
                assert log["task_id"] == task_id and log["type"] == 0
                printed += log["content"]
            assert printed == "hello\n"
            result = msgpack.unpackb(frame[1:])
            assert frame[0] == 66 and result["task_id"] == task_id and pickle.loads(result["inline"]) is None
        # A failure travels as the pickled exception.
        task_id, frame = channel.task(fail, {}, "nope")
        channel.sock.sendall(frame)
        result = channel.result()
        assert result["task_id"] == task_id and result["type"] == 1
        error = pickle.loads(result["inline"])
        assert isinstance(error, KeyError) and error.args == ("nope",)
    finally:
        channel.close()
    assert channel.proc.returncode == 0


def _cancel_frame(task_id: bytes) -> bytes:
    frame = encode(ProcessorCancel(task_id=task_id))
    return _LENGTH.pack(len(frame)) + frame


def test_task_sent_ahead_is_withdrawn_by_a_cancel_that_came_while_the_task_before_it_ran(storage_port):
    """The processor looks for cancels that arrived since its last read before it starts a task
    that waited behind another (sent ahead), whether the two came in one write or two; a task
    that arrives alone starts at once, and a cancel after it finds nothing to withdraw."""
    channel = Channel(storage_port)
    try:
        for together in (False, True):
            (slow_id, slow), (ahead_id, ahead) = channel.task(time.sleep, 0.5), channel.task(echo, "ahead")
            if together:
                channel.sock.sendall(slow + ahead)
            else:
                channel.sock.sendall(slow)
                time.sleep(0.1)  # the slow task is running
                channel.sock.sendall(ahead)
            time.sleep(0.1)
            channel.sock.sendall(_cancel_frame(ahead_id))  # while the slow task still runs
            result = channel.result()
            assert result["task_id"] == slow_id and result["type"] == 0
            frame = channel.recv()
            assert frame[0] == int(Kind.ProcessorCanceled), msgpack.unpackb(frame[1:])
            assert msgpack.unpackb(frame[1:])["task_id"] == ahead_id
        # Alone, a task runs; the cancel that follows it is too late and answered by nothing.
        task_id = channel.assert_echoes(echo, "alone")
        channel.sock.sendall(_cancel_frame(task_id))
        channel.assert_echoes(echo, "next")
    finally:
        channel.close()
    assert channel.proc.returncode == 0


def test_result_over_the_storage_limit_fails_with_object_storage_exception():
    """A result object storage refuses (over --max-memory) fails the task with a pickled
    ObjectStorageException inline, which names the limit, and no result object."""
    from scaler.utility.exceptions import ObjectStorageException

    binary = scaler_binary()
    if binary is None:
        pytest.skip("no scaler binary (set SCALER_BINARY or put go on PATH)")
    port, limit = free_port(), 1024 * 1024
    storage = subprocess.Popen([binary, "object_storage_server", f"tcp://127.0.0.1:{port}", "--max-memory", str(limit)],
                               stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.2)
        channel = Channel(port)
        try:
            task_id, frame = channel.task(echo, os.urandom(2 * limit))
            channel.sock.sendall(frame)
            result = channel.result()
            assert result["task_id"] == task_id and result["type"] == 1 and result["result_object_id"] == b""
            assert "memory limit" in result["message"]
            error = pickle.loads(result["inline"])
            assert isinstance(error, ObjectStorageException), error
            assert f"memory limit of {limit} bytes" in str(error)
        finally:
            channel.close()
    finally:
        storage.terminate()
        storage.wait(10)


def test_missing_argument_object_fails_the_task():
    """Object storage answers the get of an argument that never appears "not found" at its deadline:
    the task fails naming the object, and the processor runs the next task."""
    binary = scaler_binary()
    if binary is None:
        pytest.skip("no scaler binary (set SCALER_BINARY or put go on PATH)")
    port = free_port()
    proc = subprocess.Popen([binary, "object_storage_server", f"tcp://127.0.0.1:{port}", "--wait-timeout-seconds", "1"],
                            stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.2)
        channel = Channel(port)
        try:
            missing = hashlib.md5(SOURCE).digest() + os.urandom(16)
            task_id, frame = channel.task(echo, arguments=[{"type": 1, "data": missing}])
            start = time.monotonic()
            channel.sock.sendall(frame)
            result = channel.result()
            waited = time.monotonic() - start
            assert result["task_id"] == task_id and result["type"] == 1
            error = pickle.loads(result["inline"])
            assert isinstance(error, ObjectNotFoundError), repr(error)
            assert f"task {task_id.hex()}: argument 0 object {missing.hex()} is missing" in str(error), str(error)
            assert "did not appear within 1s" in str(error)
            assert 0.9 <= waited < 10
            channel.assert_echoes(echo, "next")
        finally:
            channel.close()
    finally:
        proc.terminate()
        proc.wait(10)


def test_processor_reads_other_layouts_in_full(storage_port):
    """Tasks laid out as a later Go might write them (a new field anywhere, here with a value the
    template of the current layout would misread as an argument or the task id) run as decoded,
    between tasks read by the template."""
    channel = Channel(storage_port)
    try:
        for position in range(12):
            for value, extra in ((position, None), (-position, (position, "later", 7)), ("again", None)):
                task_id, frame = channel.task(echo, value, extra=extra)
                channel.sock.sendall(frame)
                result = channel.result()
                assert result["task_id"] == task_id and result["type"] == 0, pickle.loads(result["inline"])
                assert pickle.loads(result["inline"]) == value
        task_id, frame = channel.task(echo, 5, extra=(11, "later", {"type": 2, "data": b"not an argument"}))
        channel.sock.sendall(frame)
        result = channel.result()
        assert result["task_id"] == task_id and pickle.loads(result["inline"]) == 5
    finally:
        channel.close()
    assert channel.proc.returncode == 0


# What the worker puts in a processor's GLIBC_TUNABLES (worker/processor.go, processorMallocTunables).
WORKER_MALLOC_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.arena_max=1:glibc.malloc.trim_threshold=268435456"


def _rss_mib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmRSS:"))


def test_idle_processor_gives_large_objects_memory_back(storage_port):
    """With the worker's malloc settings glibc keeps the memory of freed large objects for the next
    one; once the processor is idle it gives that memory back (housekeeping: malloc_trim a second
    after the main thread stopped running)."""
    if "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        pytest.skip("GLIBC_TUNABLES sets malloc already")
    channel = Channel(storage_port, env={"GLIBC_TUNABLES": WORKER_MALLOC_TUNABLES})
    try:
        base = _rss_mib(channel.proc.pid)
        big = os.urandom(64 << 20)
        for _ in range(2):  # a 64 MiB argument in, a 64 MiB result out through storage
            task_id, frame = channel.task(echo, big)
            channel.sock.sendall(frame)
            result = channel.result()
            assert result["task_id"] == task_id and result["type"] == 0 and len(result["result_object_id"]) == 32
        # The read loop keeps its last large frame (the 64 MiB task) referenced until the next one;
        # everything else freed goes back (without the trim: ~350 MiB stay resident).
        bound = base + 64 + 48
        deadline, rss = time.monotonic() + 20, _rss_mib(channel.proc.pid)
        while rss > bound and time.monotonic() < deadline:
            time.sleep(0.1)
            rss = _rss_mib(channel.proc.pid)
        assert rss <= bound, f"processor RSS {rss} MiB idle after the tasks, {base} MiB before them"
    finally:
        channel.close()
