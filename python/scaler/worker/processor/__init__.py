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
import struct
import hashlib
import logging
import os
import pickle
import select
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
from scaler.protocol.messages import (
    LogType,
    ObjectInstruction,
    ObjectInstructionType,
    ProcessorCanceled,
    ProcessorInitialized,
    ProcessorLog,
    ProcessorResult,
    ProcessorTask,
    TaskResultType,
    DecodeError,
    decode,
    encode,
)
from scaler.utility.exceptions import ObjectStorageException
from scaler.utility.msgpack_pieces import BIN8, bin_header
from scaler.worker.preload import execute_preload

__all__ = ["current_task", "main"]

INLINE_LIMIT = 4096  # results up to this size are also sent inline
ARGUMENT_CACHE_SIZE = 256  # deserialized object-id arguments kept per processor
SETTLE_AFTER = 64  # unacknowledged small-result writes before the processor collects acknowledgements
MAX_PENDING_SETS = 256  # unacknowledged small-result writes before the processor waits

_KIND_PROCESSOR_TASK = 65
_KIND_PROCESSOR_CANCEL = 68
_KIND_OBJECT_INSTRUCTION = 7
_KIND_RESULT = bytes((66,))
_ARGUMENT_INLINE = 2
_LENGTH = struct.Struct("<I")
_pack = msgpack.Packer(use_bin_type=True).pack
_unpackb = msgpack.unpackb
_READ_BUFFER = 1 << 18  # bytes read from the agent per system call at most (larger frames get their own)

# A ProcessorResult with no result object is the same bytes as _pack of its map (fields in the
# order of docs/protocol.md §7.5) but joined from pieces encoded once:
#   _RESULT_HEAD + task id (16 bytes) + _RESULT_INLINE_ONLY[type] + bin header + inline + _RESULT_NO_MESSAGE
_RESULT_HEAD = bytes((66,)) + b"\x86" + _pack("task_id") + b"\xc4\x10"
_RESULT_INLINE_ONLY = {
    t: _pack("type") + _pack(t) + _pack("result_object_id") + _pack(b"") + _pack("result_object_name") + _pack(b"")
    + _pack("inline")
    for t in (0, 1)  # TaskResultType success, failed
}
_RESULT_NO_MESSAGE = _pack("message") + _pack("")
# ProcessorTask templates (see Processor._match_template), as the Go agent writes the fields.
_TASK_HEAD = bytes((65,)) + b"\x8b" + _pack("task_id") + b"\xc4\x10"  # then the 16-byte task id, at 12
_ARGUMENTS_KEY = _pack("arguments")
_INLINE_ARGUMENT = _pack({"type": 2, "data": b""})[:-2]  # then a bin header and the bytes
_KEEP_RESULT_FALSE = _pack("keep_result") + _pack(False)
_TEMPLATE_KEYS = [b"source", b"serializer_id", b"func_object_id", b"argument_ids", b"metadata", b"priority",
                  b"stream_output", b"object_storage"]
_TEMPLATES = 4
_RESULT_FIXED = len(_RESULT_HEAD) + 16 + len(_RESULT_INLINE_ONLY[0]) + len(_RESULT_NO_MESSAGE)


def _inline_result_frame(task_id: bytes, result_type: int, payload: bytes) -> bytes:
    """The length-prefixed ProcessorResult of an inline-only outcome."""
    if len(task_id) != 16:
        frame = _KIND_RESULT + _pack({"task_id": task_id, "type": result_type, "result_object_id": b"",
                                      "result_object_name": b"", "inline": payload, "message": ""})
        return _LENGTH.pack(len(frame)) + frame
    header = bin_header(len(payload))
    return b"".join((
        _LENGTH.pack(_RESULT_FIXED + len(header) + len(payload)), _RESULT_HEAD, task_id,
        _RESULT_INLINE_ONLY[result_type], header, payload, _RESULT_NO_MESSAGE,
    ))


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
            return [(a[b"type"] == _ARGUMENT_INLINE, bytes(a[b"data"])) for a in arguments]
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


_current_task: Optional["_Task"] = None
_serving = False  # this process is a processor (main() runs), not merely a process that imported this module
_current_body = None  # the running task's map (or its frame), when it runs on the fast path
logger = logging.getLogger("scaler.processor")


def in_processor() -> bool:
    """Whether this process is a processor: clients created here belong to nested tasks."""
    return _serving


def current_task() -> Optional["_Task"]:
    """The task this processor is running, or None outside a processor task."""
    task = _current_task
    if task is None:
        body = _current_body
        if body is not None:
            task = _Task(body if type(body) is dict else _unpackb(body[1:], raw=True))
    return task


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
        self._templates: list = []  # (bytes after the task id up to the arguments, serializer, function)
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
        larger than that is read into a buffer of its own. The common task (serializer and
        function cached, arguments inline, no output streaming, small result not to be kept) runs
        right here, without building a _Task; anything else goes through _on_frame and _run.
        """
        global _current_body
        recv_into = self._socket.recv_into
        sendall = self._socket.sendall
        send_lock = self._send_lock
        unpack_length = _LENGTH.unpack_from
        serializers, functions = self._serializers, self._functions
        join = b"".join
        buffer = bytearray(_READ_BUFFER)
        view = memoryview(buffer)
        start = end = 0
        poller = select.poll()
        poller.register(self._socket.fileno(), select.POLLIN)
        poll = poller.poll
        while True:
            available = end - start
            if available >= 4:
                (length,) = unpack_length(buffer, start)
                if available - 4 >= length:
                    first = start + 4
                    start = first + length
                    if length == 0 or buffer[first] != _KIND_PROCESSOR_TASK:
                        self._on_frame(view[first:start])
                        continue
                    frame = bytes(view[first:start])
                    # The agent may have sent this task ahead (docs/protocol.md §7.5): take in what
                    # has arrived since, without waiting, and drop the task if a ProcessorCancel
                    # for it is there.
                    if end < _READ_BUFFER and poll(0):
                        try:
                            end += recv_into(view[end:], 0, socket.MSG_DONTWAIT)
                        except BlockingIOError:
                            pass
                    if end - start > 4 and self._withdrawn(frame, buffer, start, end):
                        continue
                    quick = self._match_template(frame) if frame.startswith(_TASK_HEAD) else None
                    if quick is not None:
                        task_id, data, serializer, function = quick
                        body = frame  # current_task() decodes it if asked
                    else:
                        try:
                            body = _unpackb(memoryview(frame)[1:], raw=True)
                            get = body.get
                            task_id = get(b"task_id")
                            serializer = serializers.get(get(b"source"))
                            function = functions.get(get(b"func_object_id"))
                            fast = (
                                serializer is not None and function is not None and type(task_id) is bytes
                                and len(task_id) == 16 and not get(b"stream_output") and not get(b"keep_result")
                                and not get(b"argument_ids") and not self._pending_sets
                            )
                            if fast:
                                data = []
                                for argument in get(b"arguments") or ():
                                    if argument[b"type"] != _ARGUMENT_INLINE:
                                        fast = False
                                        break
                                    data.append(argument[b"data"])
                                if fast:
                                    self._learn_template(frame, body, serializer, function)
                        except Exception:
                            fast = False  # malformed: _on_frame reports it
                        if not fast:
                            self._on_frame(view[first:start])
                            continue
                    _current_body = body
                    try:
                        deserialize = serializer.deserialize
                        if len(data) == 1:
                            result = function(deserialize(data[0]))
                        else:
                            result = function(*[deserialize(item) for item in data])
                        _current_body = None
                        payload = serializer.serialize(result)
                        result_type = 0  # TaskResultType.Success
                    except Exception as exc:
                        _current_body = None
                        payload = _pickle_exception(exc)
                        result_type = 1  # TaskResultType.Failed
                    if type(payload) is not bytes:
                        payload = bytes(payload)
                    size = len(payload)
                    if size > INLINE_LIMIT:
                        self._report(_Task(body if type(body) is dict else _unpackb(body[1:], raw=True)), payload,
                                     result_type)
                        continue
                    header = BIN8[size] if size < 256 else bin_header(size)
                    frame = join((
                        _LENGTH.pack(_RESULT_FIXED + len(header) + size), _RESULT_HEAD, task_id,
                        _RESULT_INLINE_ONLY[result_type], header, payload, _RESULT_NO_MESSAGE,
                    ))
                    with send_lock:
                        sendall(frame)
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

    # ProcessorTask templates. For one client and function, ProcessorTask frames differ only in the
    # task id and the arguments: the bytes between them (source, serializer, function, metadata,
    # priority, flags, object storage) repeat. A template is those bytes, checked once against
    # the decoded map; a frame that starts with the fixed head, has a template's bytes right
    # after its task id and ends in inline arguments and keep_result false is read by slicing
    # (no map, no objects besides the task id and argument bytes). Anything else is decoded.

    def _match_template(self, frame: bytes):
        """(task id, [argument bytes], serializer, function) for a frame matching a template."""
        for middle, serializer, function in self._templates:
            if frame.startswith(middle, 28):
                break
        else:
            return None
        position = 28 + len(middle)
        count = frame[position] - 0x90  # fixarray
        if not 0 <= count < 16 or self._pending_sets:
            return None
        position += 1
        data = []
        for _ in range(count):
            if not frame.startswith(_INLINE_ARGUMENT, position):
                return None
            position += len(_INLINE_ARGUMENT)
            header = frame[position]
            if header == 0xC4:
                size = frame[position + 1]
                position += 2
            elif header == 0xC5:
                size = int.from_bytes(frame[position + 1 : position + 3], "big")
                position += 3
            elif header == 0xC6:
                size = int.from_bytes(frame[position + 1 : position + 5], "big")
                position += 5
            else:
                return None
            data.append(frame[position : position + size])
            position += size
        if len(frame) - position != len(_KEEP_RESULT_FALSE) or not frame.startswith(_KEEP_RESULT_FALSE, position):
            return None
        return frame[12:28], data, serializer, function

    def _learn_template(self, frame: bytes, body: dict, serializer, function) -> None:
        """Remember the bytes after this (fast-path) task's id as a template, once checked."""
        position = frame.find(_ARGUMENTS_KEY, 28)
        if not frame.startswith(_TASK_HEAD) or position < 0:
            return
        middle = frame[28:position] + _ARGUMENTS_KEY
        try:
            fields = _unpackb(b"\x88" + middle[: -len(_ARGUMENTS_KEY)], raw=True)
        except Exception:
            return  # the guess at where the arguments start was wrong
        if (
            list(fields) != _TEMPLATE_KEYS or fields[b"source"] != body.get(b"source")
            or fields[b"func_object_id"] != body.get(b"func_object_id") or fields[b"stream_output"] is not False
            or fields[b"argument_ids"] != []
        ):
            return
        templates = self._templates
        templates[:] = [t for t in templates if t[0] != middle][: _TEMPLATES - 1]
        templates.insert(0, (middle, serializer, function))

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
            if length > 1 and buffer[position + 4] == _KIND_PROCESSOR_CANCEL:
                if task_id is None:
                    task_id = frame[12:28] if frame.startswith(_TASK_HEAD) else _Task(_unpackb(frame[1:], raw=True)).task_id
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
        if kind == _KIND_PROCESSOR_CANCEL:
            return  # its task was withdrawn before it started (_withdrawn), or has already run
        if kind == _KIND_PROCESSOR_TASK:
            # The hot path reads the map directly (the generic codec costs ~50 us a frame).
            try:
                task = _Task(_unpackb(frame[1:], raw=True))
            except Exception as exc:
                logger.warning("dropped malformed ProcessorTask from the agent: %s", exc)
                return
            self._run(task)
            return
        if kind == _KIND_OBJECT_INSTRUCTION:
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
                if argument[b"type"] != _ARGUMENT_INLINE:
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
            fetched = self._client(task).get_many(wanted) if wanted else []
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
        if function is None:
            function = serializer.deserialize(fetched[pos])
            pos += 1
            self._functions[task.func_object_id] = function
        for i in arg_missing:
            value = serializer.deserialize(fetched[pos])
            pos += 1
            args[i] = value
            cache[arguments[i][1]] = value
            if len(cache) > ARGUMENT_CACHE_SIZE:
                cache.popitem(last=False)
        deserialize = serializer.deserialize
        for i in inline_at:
            args[i] = deserialize(arguments[i][1])
        return serializer, function, args

    def _run(self, task: "_Task") -> None:
        global _current_task
        if self._pending_sets:
            self._settle_sets()
        serializer = None
        try:
            serializer, function, args = self._load(task)
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
            result_type = 0  # TaskResultType.Success
        except Exception as exc:
            _current_task = None
            payload = _pickle_exception(exc)
            result_type = 1  # TaskResultType.Failed
        if type(payload) is not bytes:
            payload = bytes(payload)
        self._report(task, payload, result_type)

    def _report(self, task: "_Task", payload: bytes, result_type: int) -> None:
        """Send the ProcessorResult of ``task``, storing the outcome first when needed."""
        if len(payload) <= INLINE_LIMIT and not task.keep_result:
            # Inline only: no object, nothing for anybody to release (docs/protocol.md §7.5).
            data = _inline_result_frame(task.task_id, result_type, payload)
            with self._send_lock:
                self._socket.sendall(data)
            return
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
            result_type = 1
            message = f"storing the result failed: {type(exc).__name__}: {exc}"
            # The failure itself travels inline, as a task's exception does, so that the client
            # raises ObjectStorageException (naming the storage's refusal, e.g. its memory limit).
            inline = _pickle_exception(ObjectStorageException(message))
        # ProcessorResult, packed directly in the order of docs/protocol.md §7.5.
        self.send_frame(
            _KIND_RESULT
            + _pack(
                {"task_id": task.task_id, "type": result_type, "result_object_id": result_object_id,
                 "result_object_name": result_name, "inline": inline, "message": message}
            )
        )

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


_LEVEL_TAGS = {
    logging.DEBUG: "DEBG",
    logging.INFO: "INFO",
    logging.WARNING: "WARN",
    logging.ERROR: "EROR",
    logging.CRITICAL: "CTIC",
}


class _LineFormatter(logging.Formatter):
    """The Go side's line: ``[INFO]2026-01-02 13:13:15+0000: processor: message``."""

    def format(self, record: logging.LogRecord) -> str:
        tag = _LEVEL_TAGS.get(record.levelno)
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
