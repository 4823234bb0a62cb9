"""The processor: runs tasks for one Go worker agent, one at a time.

Started by the agent as ``python -m scaler.worker.processor --fd N``: file
descriptor N is one end of a Unix stream socket pair whose other end the
agent holds. Each message on it is a 4-byte little-endian length followed by
one frame (kind byte + msgpack body, docs/protocol.md §7.5). It runs the
``--preload`` hook, sends ``ProcessorInitialized`` and then serves
``ProcessorTask`` messages, in the order they arrive. The agent may send the
next task while one runs ("sending ahead"); before starting a task the
processor reads what has arrived without waiting, and a ``ProcessorCancel``
for the task found there drops it unrun (answered with ``ProcessorCanceled``).

Small results (up to INLINE_LIMIT bytes) travel inline in the result. They
are stored in object storage only when the task asks for it (``keep_result``,
set by the scheduler on graph nodes that feed other nodes); that write is
acknowledged asynchronously: the result is reported without waiting for the
storage server's reply (a later get of the object waits until it exists).
Larger results are always stored and reported only after the write is
acknowledged.

Suspension (for nested tasks): SIGUSR1 blocks the main thread until SIGUSR2
arrives (other threads, e.g. a nested client's, keep running). The agent may
also SIGSTOP/SIGCONT the whole process. SIGTERM keeps its default action, so
a kill is immediate even while suspended.

Nested clients find the running task with :func:`current_task`.
"""

import argparse
import datetime
import gc
import socket
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
import msgpack
import zmq

from scaler.io.storage import ObjectStorageClient, address_string
from scaler.utility.exceptions import ObjectNotFoundError
from scaler.protocol import wire
from scaler.protocol.messages import (
    LogType,
    ObjectInstructionType,
    ProcessorCanceled,
    ProcessorInitialized,
    ProcessorLog,
    DecodeError,
    decode,
    encode,
)
from scaler.utility.exceptions import ObjectStorageException
from scaler.utility.logging.tags import LEVEL_TAGS
from scaler.worker.preload import execute_preload

__all__ = ["current_task", "main"]

INLINE_LIMIT = 4096  # results up to this size are also sent inline
ARGUMENT_CACHE_SIZE = 256  # deserialized object-id arguments kept per processor
SETTLE_AFTER = 64  # unacknowledged small-result writes before the processor collects acknowledgements
MAX_PENDING_SETS = 256  # unacknowledged small-result writes before the processor waits

_LENGTH = wire.LENGTH
_unpackb = msgpack.unpackb
_READ_BUFFER = 1 << 18  # bytes read from the agent per system call at most (larger frames get their own)
_TEMPLATES = 4  # ProcessorTask templates kept (wire.TaskTemplates): one per client and function in use
_LOOK_AFTER = 0.001  # seconds after a read before a task that waited looks for cancels again (_serve_frames)


def _loader(serializer):
    """The serializer's deserialize for payloads fetched with copy=False (memoryviews): pickle's
    loads (the default serializer's) reads a view as it is; any other gets bytes, as the
    Serializer interface promises."""
    deserialize = serializer.deserialize
    if deserialize is pickle.loads:
        return deserialize
    return lambda payload: deserialize(payload if type(payload) is bytes else bytes(payload))


class _Task:
    """A ProcessorTask (docs/protocol.md §7.5) read from its msgpack map, decoded with ``raw=True``
    (keys and strings as bytes: decoding them to str cost more than the rest of the map). Only what
    every task needs is read up front; the rest on demand.

    ``arguments`` is a list of ``(inline, data)``: inline bytes, or an object id to fetch. It
    comes from the ``arguments`` field when present, else from ``argument_ids``.
    """

    __slots__ = ("_body", "task_id", "source", "func_object_id", "stream_output", "keep_result")

    def __init__(self, body: dict):
        if type(body) is not dict:
            raise ValueError("body is not a map")
        self._body = body
        get = body.get
        self.task_id = get(b"task_id", b"")
        self.source = get(b"source", b"")
        self.func_object_id = get(b"func_object_id", b"")
        if type(self.task_id) is not bytes or type(self.source) is not bytes or type(self.func_object_id) is not bytes:
            raise ValueError("task_id, source and func_object_id must be bin")
        self.stream_output = bool(get(b"stream_output", False))
        self.keep_result = bool(get(b"keep_result", False))

    @property
    def arguments(self) -> list:
        body = self._body
        arguments = body.get(b"arguments")
        if arguments:
            return [(a[b"type"] == wire.ARG_INLINE, bytes(a[b"data"])) for a in arguments]
        return [(False, bytes(oid)) for oid in body.get(b"argument_ids") or ()]

    @property
    def argument_ids(self) -> list:
        return [data for inline, data in self.arguments if not inline]

    @property
    def serializer_id(self) -> bytes:
        return bytes(self._body.get(b"serializer_id", b""))

    @property
    def metadata(self) -> bytes:
        return bytes(self._body.get(b"metadata", b""))

    @property
    def priority(self) -> int:
        return int(self._body.get(b"priority", 0))

    @property
    def object_storage(self) -> tuple:
        """(host, port) of the object storage to fetch from and store to."""
        storage = self._body.get(b"object_storage") or {}
        host = storage.get(b"host", b"")
        return (host.decode() if isinstance(host, bytes) else str(host), int(storage.get(b"port", 0)))


_serving = False  # this process is a processor (main() runs), not merely a process that imported this module
_current = None  # the running task: a _Task, or its frame when it was read by a template (decoded if asked)
logger = logging.getLogger("scaler.processor")


def in_processor() -> bool:
    """Whether this process is a processor: clients created here belong to nested tasks."""
    return _serving


def current_task() -> Optional["_Task"]:
    """The task this processor is running, or None outside a processor task."""
    current = _current
    return current if current is None or type(current) is _Task else _task_of(current)


def _task_of(frame: bytes) -> "_Task":
    return _Task(_unpackb(memoryview(frame)[1:], raw=True))


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




class Processor:
    def __init__(self, fd: int, gc_interval: float, trim_threshold: int):
        self._context = zmq.Context(io_threads=1)
        self._socket = socket.socket(fileno=fd)
        self._send_lock = threading.Lock()
        self._pending_sets = []  # (request id, storage client, task id) of unacknowledged small results
        self._storage: Dict[str, ObjectStorageClient] = {}
        self._serializers: Dict[bytes, object] = {}  # by client id
        self._functions: Dict[bytes, object] = {}  # by object id
        self._arguments: "OrderedDict[bytes, object]" = OrderedDict()  # LRU by object id
        self._since_settle = 0
        self._owner_prefix: Dict[bytes, bytes] = {}  # client id -> MD5, the first half of its object ids
        self._templates = wire.TaskTemplates(_TEMPLATES)  # values: (serializer, function)
        self._gc_interval = gc_interval
        self._trim_threshold = trim_threshold

    # Messaging.

    def send(self, message) -> None:
        self.send_frame(encode(message))

    def send_frame(self, frame: bytes) -> None:
        with self._send_lock:
            self._socket.sendall(_LENGTH.pack(len(frame)) + frame)

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
        self._serve_frames()
        return 0  # the agent closed the channel

    def _serve_frames(self) -> None:
        """Handle the agent's frames until it closes the channel.

        One system call reads as many frames as have arrived (up to _READ_BUFFER bytes); a frame
        larger than that is read into a buffer of its own.

        Before a task starts, what arrived since the buffer was last filled is taken in (one
        non-blocking read), so that a ProcessorCancel sent while the tasks before it ran is seen.
        A task read by the last read, with no task run since, or less than _LOOK_AFTER after it,
        needs no such look: a cancel that is not here yet could as well arrive a moment after the
        task has started (the agent takes the result as the answer then). That saves a system
        call per task when tasks come one at a time (a single round trip), and when many quick
        ones come at once (a map: the agent sends them ahead several to a write).
        """
        recv_into = self._socket.recv_into
        unpack_length = _LENGTH.unpack_from
        buffer = bytearray(_READ_BUFFER)
        view = memoryview(buffer)
        start = end = 0
        fresh = False  # no task has run since the buffer was last filled
        read_at = 0.0  # when it was
        dontwait = socket.MSG_DONTWAIT
        monotonic = time.monotonic
        while True:
            available = end - start
            if available >= 4:
                (length,) = unpack_length(buffer, start)
                if available - 4 >= length:
                    first = start + 4
                    start = first + length
                    if length == 0 or buffer[first] != wire.PROCESSOR_TASK:
                        self._on_frame(view[first:start])
                        continue
                    frame = bytes(view[first:start])
                    # The agent may have sent this task ahead (docs/protocol.md §7.5): take in what
                    # has arrived since, without waiting, and drop the task if a ProcessorCancel
                    # for it is there.
                    if not fresh and end < _READ_BUFFER and monotonic() - read_at >= _LOOK_AFTER:
                        try:
                            end += recv_into(view[end:], 0, dontwait)  # 0 at end of file: seen below
                        except BlockingIOError:
                            pass
                        read_at = monotonic()
                    if end - start > 4 and self._withdrawn(frame, buffer, start, end):
                        continue
                    self._on_task(frame)
                    fresh = False
                    continue
                if 4 + length > _READ_BUFFER:
                    frame = bytearray(length)
                    frame_view = memoryview(frame)
                    got = available - 4
                    frame_view[:got] = view[start + 4 : end]
                    start = end = 0
                    while got < length:
                        n = recv_into(frame_view[got:])
                        if n == 0:
                            return
                        got += n
                    self._on_frame(frame_view)
                    fresh = False
                    continue
            # Move the partial frame (if any) to the front, then read more.
            if start:
                if available:
                    buffer[:available] = bytes(view[start:end])
                start, end = 0, available
            n = recv_into(view[end:])
            if n == 0:
                return
            end += n
            fresh, read_at = True, monotonic()

    def _withdrawn(self, frame: bytes, buffer: bytearray, start: int, end: int) -> bool:
        """Whether a ProcessorCancel among the whole frames in buffer[start:end] withdraws the task
        in frame; if so it is answered with ProcessorCanceled. A cancel frame is looked at again
        when the loop reaches it, and then does nothing (_on_frame)."""
        task_id = None
        position = start
        while end - position >= 4:
            (length,) = _LENGTH.unpack_from(buffer, position)
            if end - position - 4 < length:
                break
            if length > 1 and buffer[position + 4] == wire.PROCESSOR_CANCEL:
                if task_id is None:
                    task_id = wire.processor_task_id(frame) or _task_of(frame).task_id
                try:
                    cancelled = _unpackb(buffer[position + 5 : position + 4 + length], raw=True).get(b"task_id")
                except Exception:
                    cancelled = None
                if cancelled == task_id:
                    self.send(ProcessorCanceled(task_id=task_id))
                    return True
            position += 4 + length
        return False

    def _on_frame(self, frame: memoryview) -> None:
        kind = frame[0] if len(frame) else 0
        if kind == wire.PROCESSOR_CANCEL:
            return  # its task was withdrawn before it started (_withdrawn), or has already run
        if kind == wire.PROCESSOR_TASK:
            self._on_task(bytes(frame))
            return
        if kind == wire.OBJECT_INSTRUCTION:
            # Forwarded deletes (one per batch of released results): read directly too.
            try:
                body = _unpackb(frame[1:], raw=True)
                if body.get(b"type") == ObjectInstructionType.Delete:
                    functions, arguments = self._functions, self._arguments
                    self._templates.clear()
                    for oid in (body.get(b"metadata") or {}).get(b"object_ids") or ():
                        functions.pop(oid, None)
                        arguments.pop(oid, None)
            except Exception as exc:
                logger.warning("dropped malformed ObjectInstruction from the agent: %s", exc)
            return
        try:
            message = decode(bytes(frame))
        except DecodeError as exc:
            logger.warning("dropped malformed message from the agent: %s", exc)
            return
        logger.warning("dropped unexpected %s from the agent", type(message).__name__)

    # Tasks.

    def _client(self, task: "_Task") -> ObjectStorageClient:
        key = task.object_storage
        client = self._storage.get(key)
        if client is None:
            client = ObjectStorageClient(address_string(key[0], key[1]), context=self._context)
            self._storage[key] = client
        return client

    def _settle_sets(self) -> None:
        """Collect the acknowledgements of earlier small-result writes that have
        arrived; block only when too many are outstanding. Runs every SETTLE_AFTER
        tasks: acknowledgements wait in the socket meanwhile, and collecting them
        per task (one failing non-blocking recv each) costs more than the task."""
        self._since_settle += 1
        if self._since_settle < SETTLE_AFTER:
            return
        self._since_settle = 0
        block = len(self._pending_sets) > MAX_PENDING_SETS
        for client in {entry[1] for entry in self._pending_sets}:
            client.collect_replies()
        still = []
        for request_id, client, task_id in self._pending_sets:
            try:
                if block or client.has_reply(request_id):
                    client.wait_set(request_id)
                else:
                    still.append((request_id, client, task_id))
            except Exception as exc:
                logger.error("storing the result of task %s failed: %s", task_id.hex(), exc)
        self._pending_sets = still

    def _load(self, task: "_Task"):
        """Return (serializer, function, args), fetching what is not cached in one pipelined batch.

        Inline arguments (docs/protocol.md §7.1) are deserialized from the task itself."""
        serializer = self._serializers.get(task.source)
        function = self._functions.get(task.func_object_id)
        if serializer is not None and function is not None:
            deserialize = serializer.deserialize
            args = []
            for argument in task._body.get(b"arguments") or ():
                if argument[b"type"] != wire.ARG_INLINE:
                    break
                args.append(deserialize(argument[b"data"]))
            else:
                if args or not task._body.get(b"argument_ids"):
                    return serializer, function, args
        missing = []
        if serializer is None:
            missing.append(task.serializer_id)
        if function is None:
            missing.append(task.func_object_id)
        arguments = task.arguments  # [(inline?, data)]
        args = [None] * len(arguments)
        arg_missing = []
        inline_at = []
        cache = self._arguments
        for i, (inline, data) in enumerate(arguments):
            if inline:
                inline_at.append(i)
            elif data in cache:
                cache.move_to_end(data)
                args[i] = cache[data]
            else:
                arg_missing.append(i)
        wanted = missing + [arguments[i][1] for i in arg_missing]
        try:
            # As received (copy=False): memoryviews of the frames, no copy; _loader gives them
            # to the serializer as bytes unless it is pickle's loads, which reads views.
            fetched = self._client(task).get_many(wanted, copy=False) if wanted else []
        except ObjectNotFoundError as exc:
            # Bounded wait (docs/protocol.md §9.5): the task fails, naming what is missing, and
            # the processor is free for the next one.
            roles = (["serializer"] if serializer is None else []) + (["function"] if function is None else [])
            roles += [f"argument {i}" for i in arg_missing]
            what = next((f"{role} object {oid.hex()}" for role, oid in zip(roles, wanted) if oid.hex() in str(exc)),
                        "an object")
            raise ObjectNotFoundError(f"task {task.task_id.hex()}: {what} is missing in object storage ({exc})") from None
        pos = 0
        if serializer is None:
            serializer = cloudpickle.loads(fetched[pos])
            pos += 1
            self._serializers[task.source] = serializer
        load = _loader(serializer)
        if function is None:
            function = load(fetched[pos])
            pos += 1
            self._functions[task.func_object_id] = function
        for i in arg_missing:
            value = load(fetched[pos])
            pos += 1
            args[i] = value
            cache[arguments[i][1]] = value
            if len(cache) > ARGUMENT_CACHE_SIZE:
                cache.popitem(last=False)
        deserialize = serializer.deserialize
        for i in inline_at:
            args[i] = deserialize(arguments[i][1])
        return serializer, function, args

    def _on_task(self, frame: bytes) -> None:
        """Run the ProcessorTask in ``frame``.

        The common task (serializer and function cached, arguments inline, no output streaming,
        small result not to be kept) is read by a template (wire.TaskTemplates: no map, no _Task);
        any other is decoded, and teaches a template when it is a common one."""
        quick = self._templates.match(frame)
        if quick is not None:
            task_id, data, (serializer, function) = quick
            self._run(frame, task_id, serializer, function, data, None)
            return
        try:
            # The map read directly, raw (the generic codec costs ~50 us a frame).
            body = _unpackb(memoryview(frame)[1:], raw=True)
            task = _Task(body)
        except Exception as exc:
            logger.warning("dropped malformed ProcessorTask from the agent: %s", exc)
            return
        serializer = self._serializers.get(task.source)
        function = self._functions.get(task.func_object_id)
        if (
            serializer is not None and function is not None and len(task.task_id) == 16 and not task.stream_output
            and not task.keep_result and not body.get(b"argument_ids")
        ):
            self._templates.learn(frame, body, (serializer, function))
        self._run(task, task.task_id, None, None, None, task)

    def _run(self, current, task_id: bytes, serializer, function, inline: Optional[list],
             task: Optional["_Task"]) -> None:
        """Run one task and report its outcome: the one place that calls task functions.

        Read by a template (``task`` None): ``serializer`` and ``function`` are the cached ones and
        ``inline`` holds the serialized arguments. Decoded: ``_load`` gets what it needs.
        ``current`` is what current_task() reads while the function runs."""
        global _current
        if self._pending_sets:
            self._settle_sets()
        try:
            if task is None:
                deserialize = serializer.deserialize
                args = (deserialize(inline[0]),) if len(inline) == 1 else [deserialize(item) for item in inline]
            else:
                serializer, function, args = self._load(task)
            _current = current
            if task is not None and task.stream_output:
                saved = sys.stdout, sys.stderr
                sys.stdout = _StreamingWriter(self, task_id, LogType.Stdout, saved[0])
                sys.stderr = _StreamingWriter(self, task_id, LogType.Stderr, saved[1])
                try:
                    result = function(*args)
                finally:
                    sys.stdout, sys.stderr = saved
            else:
                result = function(*args)
            _current = None
            payload = serializer.serialize(result)
            result_type = wire.RESULT_SUCCESS
        except Exception as exc:
            _current = None
            payload = _pickle_exception(exc)
            result_type = wire.RESULT_FAILED
        if type(payload) is not bytes:
            payload = bytes(payload)
        if len(payload) <= INLINE_LIMIT and (task is None or not task.keep_result):
            # Inline only: no object, nothing for anybody to release (docs/protocol.md §7.5).
            data = wire.inline_result(task_id, result_type, payload)
            with self._send_lock:
                self._socket.sendall(data)
            return
        self._store_result(task if task is not None else _task_of(current), payload, result_type)

    def _store_result(self, task: "_Task", payload: bytes, result_type: int) -> None:
        """Store the outcome of ``task`` as an object, then send its ProcessorResult."""
        storage = self._client(task)
        prefix = self._owner_prefix.get(task.source)
        if prefix is None:
            prefix = self._owner_prefix[task.source] = hashlib.md5(task.source).digest()
        result_id = prefix + os.urandom(16)
        inline = b""
        message = ""
        result_object_id = b""
        result_name = b""
        try:
            if len(payload) <= INLINE_LIMIT:
                inline = payload
                request_id = storage.set_object_nowait(result_id, inline)
                self._pending_sets.append((request_id, storage, task.task_id))
            else:
                storage.set_object(result_id, payload)
            result_object_id = result_id
            result_name = b"<res " + result_id.hex().encode() + b">"
        except Exception as exc:  # storing failed: report without a result object
            result_type = wire.RESULT_FAILED
            message = f"storing the result failed: {type(exc).__name__}: {exc}"
            # The failure itself travels inline, as a task's exception does, so that the client
            # raises ObjectStorageException (naming the storage's refusal, e.g. its memory limit).
            inline = _pickle_exception(ObjectStorageException(message))
        data = wire.processor_result(task.task_id, result_type, result_object_id, result_name, inline, message)
        with self._send_lock:
            self._socket.sendall(data)

    # Housekeeping thread: periodic gc.collect() and malloc_trim.

    def _housekeeping(self):
        last_gc = time.monotonic()
        trim = _malloc_trim()
        # The worker starts processors with glibc keeping freed memory in the heap (worker/
        # processor.go: processorMallocTunables), so that one large object after another reuses
        # it instead of page-faulting fresh memory in. Once the main thread has been idle for a
        # second after running, that memory goes back to the system: kept while busy only.
        main_cpu, trimmed = _thread_cpu(), True
        while True:
            time.sleep(1)
            cpu = _thread_cpu()
            if cpu != main_cpu:
                main_cpu, trimmed = cpu, False
            elif not trimmed and trim is not None:
                trimmed = True
                trim(0)
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


def _thread_cpu() -> int:
    """CPU time of the main thread so far, in clock ticks (0 if unknown)."""
    try:
        with open(f"/proc/self/task/{os.getpid()}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return int(fields[11]) + int(fields[12])
    except Exception:
        return 0


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except Exception:
        return 0


class _LineFormatter(logging.Formatter):
    """The Go side's line: ``[INFO]2026-01-02 13:13:15+0000: processor: message``."""

    def format(self, record: logging.LogRecord) -> str:
        tag = LEVEL_TAGS.get(record.levelno)
        if tag is None:
            tag = "DEBG" if record.levelno < logging.INFO else "INFO" if record.levelno < logging.WARNING else "EROR"
        stamp = datetime.datetime.fromtimestamp(record.created).astimezone().strftime("%Y-%m-%d %H:%M:%S%z")
        line = f"[{tag}]{stamp}: processor: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def setup_logging(paths, level_name: str) -> None:
    """Log at level_name to the console if /dev/stdout (or -) is among paths
    and to ``<path>-<pid>`` for every other path; with no paths, only errors
    go to stderr."""
    level = getattr(logging, str(level_name or "INFO").upper(), logging.INFO)
    if not isinstance(level, int):
        level = logging.INFO
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(level)
    formatter = _LineFormatter()
    handlers = []
    console = False
    for path in paths or []:
        if path in ("/dev/stdout", "-"):
            if not console:
                handlers.append(logging.StreamHandler(sys.stdout))
                console = True
            continue
        path = os.path.expanduser(os.path.expandvars(path))
        target = f"{path}-{os.getpid()}"
        try:
            parent = os.path.dirname(target)
            if parent:
                os.makedirs(parent, exist_ok=True)
            handlers.append(logging.FileHandler(target, mode="a", encoding="utf-8"))
        except OSError as exc:
            print(f"processor {os.getpid()}: cannot log to {target}: {exc}", file=sys.stderr)
    if not handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(max(level, logging.ERROR))
        handlers.append(handler)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)


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
    parser.add_argument(
        "--logging-paths", nargs="*", default=[], help="log to <path>-<pid> per path; /dev/stdout or - is the console"
    )
    args = parser.parse_args(argv)

    # Before any thread exists, so that every thread inherits the mask.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
    signal.signal(signal.SIGUSR1, _on_suspend)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the agent decides when processors stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    setup_logging(args.logging_paths, args.logging_level)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), name="scaler-parent-watch", daemon=True).start()

    global _serving
    _serving = True
    processor = Processor(args.fd, args.gc_interval, args.trim_memory_threshold)
    return processor.serve(args.preload)
