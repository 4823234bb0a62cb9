"""The processor: runs tasks for one Go worker agent, one at a time.

Started by the agent as ``python -m scaler.worker.processor --fd N``: file
descriptor N is one end of a Unix stream socket pair whose other end the
agent holds. Each message on it is a 4-byte little-endian length followed by
one frame (kind byte + msgpack body, docs/protocol.md §7.5). It runs the
``--preload`` hook, sends ``ProcessorInitialized`` and then serves
``ProcessorTask`` messages.

Small results (up to INLINE_LIMIT bytes) travel inline in the result and
their object storage write is acknowledged asynchronously: the result is
reported without waiting for the storage server's reply (a later get of the
object waits until it exists). Larger results are reported only after the
write is acknowledged.

Suspension (for nested tasks): SIGUSR1 blocks the main thread until SIGUSR2
arrives (other threads, e.g. a nested client's, keep running). The agent may
also SIGSTOP/SIGCONT the whole process. SIGTERM keeps its default action, so
a kill is immediate even while suspended.

Nested clients find the running task with :func:`current_task`.
"""

import argparse
import gc
import socket
import struct
import hashlib
import logging
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections import OrderedDict
from typing import Dict, Optional

import cloudpickle
import zmq

from scaler.io.storage import ObjectStorageClient, address_string
from scaler.protocol.messages import (
    LogType,
    ObjectInstruction,
    ObjectInstructionType,
    ProcessorInitialized,
    ProcessorLog,
    ProcessorResult,
    ProcessorTask,
    TaskResultType,
    DecodeError,
    decode,
    encode,
)
from scaler.worker.preload import execute_preload

__all__ = ["current_task", "main"]

INLINE_LIMIT = 4096  # results up to this size are also sent inline
ARGUMENT_CACHE_SIZE = 256
MAX_PENDING_SETS = 256  # unacknowledged small-result writes before the processor waits  # deserialized arguments kept per processor

_current_task: Optional[ProcessorTask] = None
logger = logging.getLogger("scaler.processor")


def current_task() -> Optional[ProcessorTask]:
    """The task this processor is running, or None outside a processor task."""
    return _current_task


def _on_suspend(signum, frame):
    # Block only the main thread, until the agent sends SIGUSR2 (blocked in
    # every thread, so it stays pending until this sigwait takes it).
    signal.sigwait({signal.SIGUSR2})


class _StreamingWriter:
    """Replaces sys.stdout/sys.stderr during a task with stream_output: every
    write is sent to the agent as a ProcessorLog."""

    def __init__(self, processor, task_id: bytes, log_type: LogType, original):
        self._processor = processor
        self._task_id = task_id
        self._type = log_type
        self._original = original

    def write(self, text) -> int:
        if not isinstance(text, str):
            text = str(text)
        if text:
            self._processor.send(ProcessorLog(task_id=self._task_id, type=self._type, content=text))
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False

    @property
    def encoding(self):
        return getattr(self._original, "encoding", "utf-8")

    def fileno(self):
        return self._original.fileno()


_LENGTH = struct.Struct("<I")


class Processor:
    def __init__(self, fd: int, gc_interval: float, trim_threshold: int):
        self._context = zmq.Context(io_threads=1)
        self._socket = socket.socket(fileno=fd)
        self._reader = self._socket.makefile("rb", buffering=1 << 16)
        self._send_lock = threading.Lock()
        self._pending_sets = []  # (request id, storage client, task id) of unacknowledged small results
        self._storage: Dict[str, ObjectStorageClient] = {}
        self._serializers: Dict[bytes, object] = {}  # by client id
        self._functions: Dict[bytes, object] = {}  # by object id
        self._arguments: "OrderedDict[bytes, object]" = OrderedDict()  # LRU by object id
        self._gc_interval = gc_interval
        self._trim_threshold = trim_threshold

    # Messaging.

    def send(self, message) -> None:
        frame = encode(message)
        with self._send_lock:
            self._socket.sendall(_LENGTH.pack(len(frame)) + frame)

    def _recv(self) -> Optional[bytes]:
        header = self._reader.read(4)
        if len(header) < 4:
            return None
        (length,) = _LENGTH.unpack(header)
        frame = self._reader.read(length)
        if len(frame) < length:
            return None
        return frame

    def serve(self, preload: Optional[str]) -> int:
        error = ""
        if preload:
            try:
                execute_preload(preload)
            except BaseException as exc:  # noqa: B902 - any failure must be reported
                error = f"preloading {preload!r}: {type(exc).__name__}: {exc}"
                logger.error("%s\n%s", error, traceback.format_exc())
        self.send(ProcessorInitialized(pid=os.getpid(), error=error))
        if error:
            self._socket.close()
            return 1
        threading.Thread(target=self._housekeeping, name="scaler-processor-gc", daemon=True).start()
        while True:
            frame = self._recv()
            if frame is None:
                return 0  # the agent closed the channel
            try:
                message = decode(frame)
            except DecodeError as exc:
                logger.warning("dropped malformed message from the agent: %s", exc)
                continue
            if isinstance(message, ProcessorTask):
                self._run(message)
            elif isinstance(message, ObjectInstruction):
                if message.type == ObjectInstructionType.Delete:
                    for oid in message.metadata.object_ids:
                        self._functions.pop(oid, None)
                        self._arguments.pop(oid, None)
            else:
                logger.warning("dropped unexpected %s from the agent", type(message).__name__)

    # Tasks.

    def _client(self, task: ProcessorTask) -> ObjectStorageClient:
        address = address_string(task.object_storage.host, task.object_storage.port)
        client = self._storage.get(address)
        if client is None:
            client = ObjectStorageClient(address, context=self._context)
            self._storage[address] = client
        return client

    def _settle_sets(self) -> None:
        """Collect the acknowledgements of earlier small-result writes that have
        arrived; block only when too many are outstanding."""
        block = len(self._pending_sets) > MAX_PENDING_SETS
        still = []
        for request_id, client, task_id in self._pending_sets:
            try:
                if block:
                    client.wait_set(request_id)
                elif not client.set_done(request_id):
                    still.append((request_id, client, task_id))
            except Exception as exc:
                logger.error("storing the result of task %s failed: %s", task_id.hex(), exc)
        self._pending_sets = still

    def _load(self, task: ProcessorTask, storage: ObjectStorageClient):
        """Return (serializer, function, args), fetching what is not cached in one pipelined batch."""
        serializer = self._serializers.get(task.source)
        function = self._functions.get(task.func_object_id)
        missing = []
        if serializer is None:
            missing.append(task.serializer_id)
        if function is None:
            missing.append(task.func_object_id)
        args = [None] * len(task.argument_ids)
        arg_missing = []
        for i, oid in enumerate(task.argument_ids):
            if oid in self._arguments:
                self._arguments.move_to_end(oid)
                args[i] = self._arguments[oid]
            else:
                arg_missing.append(i)
        fetched = storage.get_many(missing + [task.argument_ids[i] for i in arg_missing]) if (
            missing or arg_missing
        ) else []
        pos = 0
        if serializer is None:
            serializer = cloudpickle.loads(fetched[pos])
            pos += 1
            self._serializers[task.source] = serializer
        if function is None:
            function = serializer.deserialize(fetched[pos])
            pos += 1
            self._functions[task.func_object_id] = function
        for i in arg_missing:
            value = serializer.deserialize(fetched[pos])
            pos += 1
            args[i] = value
            self._arguments[task.argument_ids[i]] = value
            if len(self._arguments) > ARGUMENT_CACHE_SIZE:
                self._arguments.popitem(last=False)
        return serializer, function, args

    def _run(self, task: ProcessorTask) -> None:
        global _current_task
        storage = self._client(task)
        self._settle_sets()
        serializer = None
        try:
            serializer, function, args = self._load(task, storage)
            _current_task = task
            if task.stream_output:
                saved = sys.stdout, sys.stderr
                sys.stdout = _StreamingWriter(self, task.task_id, LogType.Stdout, saved[0])
                sys.stderr = _StreamingWriter(self, task.task_id, LogType.Stderr, saved[1])
                try:
                    result = function(*args)
                finally:
                    sys.stdout, sys.stderr = saved
            else:
                result = function(*args)
            _current_task = None
            payload = serializer.serialize(result)
            result_type = TaskResultType.Success
        except Exception as exc:
            _current_task = None
            payload = _pickle_exception(exc)
            result_type = TaskResultType.Failed

        result_id = hashlib.md5(task.source).digest() + os.urandom(16)
        message = ProcessorResult(task_id=task.task_id, type=result_type)
        try:
            if len(payload) <= INLINE_LIMIT:
                request_id = storage.set_object_nowait(result_id, payload)
                self._pending_sets.append((request_id, storage, task.task_id))
                message.inline = bytes(payload)
            else:
                storage.set_object(result_id, payload)
            message.result_object_id = result_id
            message.result_object_name = f"<res {result_id.hex()}>".encode()
        except Exception as exc:  # storing failed: report without a result object
            message.type = TaskResultType.Failed
            message.message = f"storing the result failed: {type(exc).__name__}: {exc}"
        self.send(message)

    # Housekeeping thread: periodic gc.collect() and malloc_trim.

    def _housekeeping(self):
        last_gc = time.monotonic()
        trim = _malloc_trim()
        while True:
            time.sleep(1)
            now = time.monotonic()
            if now - last_gc < self._gc_interval:
                continue
            last_gc = now
            gc.collect()
            if trim is not None and _rss() >= self._trim_threshold:
                trim(0)


def _pickle_exception(exc: BaseException) -> bytes:
    """Pickle exc for the client; its traceback text travels as an attribute."""
    try:
        exc.__dict__.setdefault("remote_traceback", traceback.format_exc())
    except Exception:
        pass
    for dumps in (pickle.dumps, cloudpickle.dumps):
        try:
            return dumps(exc, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            continue
    return pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


def _malloc_trim():
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").malloc_trim
    except Exception:
        return None


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except Exception:
        return 0


def _watch_parent(parent: int):
    """Exit when the agent is gone (belt and braces next to Pdeathsig)."""
    while True:
        time.sleep(1)
        if os.getppid() != parent:
            os._exit(1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scaler.worker.processor")
    parser.add_argument("--fd", type=int, required=True, help="file descriptor of the channel to the agent")
    parser.add_argument("--preload", default=None)
    parser.add_argument("--gc-interval", type=float, default=30.0)
    parser.add_argument("--trim-memory-threshold", type=int, default=1 << 30)
    parser.add_argument("--logging-level", default="INFO")
    args = parser.parse_args(argv)

    # Before any thread exists, so that every thread inherits the mask.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
    signal.signal(signal.SIGUSR1, _on_suspend)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the agent decides when processors stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    level = getattr(logging, str(args.logging_level).upper(), logging.INFO)
    logging.basicConfig(
        level=level, stream=sys.stderr, format=f"[%(levelname)s]%(asctime)s: processor {os.getpid()}: %(message)s"
    )
    threading.Thread(target=_watch_parent, args=(os.getppid(),), name="scaler-parent-watch", daemon=True).start()

    processor = Processor(args.fd, args.gc_interval, args.trim_memory_threshold)
    return processor.serve(args.preload)
