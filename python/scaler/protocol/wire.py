"""The wire format's fast paths: frames as plain dicts, and frames joined from bytes encoded once.

Where it is declared: the layout (kind numbers, field names, their order, zero values) is written
once, in ``scaler.protocol.messages``, and python/tests/test_protocol_golden.py holds those
declarations to Go's golden frames (testdata/protocol). Everything here that depends on the layout
is derived from them at import; a declaration a fast path cannot follow stops the import
(``ImportError``) instead of misencoding. A reader here that slices a frame by position checks the
bytes it skips against the declarations and refuses (returns None, the caller decodes the frame in
full) a frame laid out otherwise. python/tests/test_protocol_wire.py checks, for every golden
frame, that the fast paths agree with the general codec and refuse what they cannot read.

Why it exists: the client and the processor handle one frame per task each way. Measured, dicts
are ~7x faster to encode and ~3x faster to decode than the message classes, and the pre-encoded
pieces faster still (bench/bench_client.py).

Byte order of the pieces: msgpack maps whose keys come in the order of the declarations, which is
the order Go's msgp writes them, so a frame built here is byte for byte the one Go would send.
"""

import struct
from typing import Any, Dict, List, Optional, Tuple

import msgpack

from scaler.protocol.messages import (
    Argument,
    ArgumentType,
    DisconnectType,
    Kind,
    LogType,
    ObjectContentType,
    ObjectInstructionType,
    ObjectRequestType,
    ObjectResponseType,
    ProcessorResult,
    ProcessorTask,
    Task,
    TaskCancelConfirmType,
    TaskResultType,
    _to_wire,
    _zero,
)

# Kind numbers and enums as plain ints (module globals: the hot paths compare against them).
TASK = int(Kind.Task)
TASK_CANCEL = int(Kind.TaskCancel)
TASK_CANCEL_CONFIRM = int(Kind.TaskCancelConfirm)
TASK_RESULT = int(Kind.TaskResult)
TASK_LOG = int(Kind.TaskLog)
GRAPH_TASK = int(Kind.GraphTask)
OBJECT_INSTRUCTION = int(Kind.ObjectInstruction)
CLIENT_HEARTBEAT = int(Kind.ClientHeartbeat)
CLIENT_HEARTBEAT_ECHO = int(Kind.ClientHeartbeatEcho)
CLIENT_DISCONNECT = int(Kind.ClientDisconnect)
CLIENT_SHUTDOWN_RESPONSE = int(Kind.ClientShutdownResponse)
BATCH = int(Kind.Batch)  # several complete frames for one peer, handled in order (docs/protocol.md §7.6)
PROCESSOR_TASK = int(Kind.ProcessorTask)
PROCESSOR_RESULT = int(Kind.ProcessorResult)
PROCESSOR_CANCEL = int(Kind.ProcessorCancel)
OBJECT_REQUEST = int(Kind.ObjectRequest)
OBJECT_RESPONSE = int(Kind.ObjectResponse)

RESULT_SUCCESS = int(TaskResultType.Success)
RESULT_FAILED = int(TaskResultType.Failed)
RESULT_FAILED_WORKER_DIED = int(TaskResultType.FailedWorkerDied)
RESULT_FAILED_TIMEOUT = int(TaskResultType.FailedTimeout)
RESULT_FAILED_PROCESSOR_DIED = int(TaskResultType.FailedProcessorDied)
RESULT_REJECTED = int(TaskResultType.Rejected)

CANCEL_CANCELED = int(TaskCancelConfirmType.Canceled)
CANCEL_FAILED = int(TaskCancelConfirmType.CancelFailed)
CANCEL_NOT_FOUND = int(TaskCancelConfirmType.CancelNotFound)

ARG_TASK = int(ArgumentType.Task)
ARG_OBJECT = int(ArgumentType.ObjectID)
ARG_INLINE = int(ArgumentType.Inline)  # data is the serialized argument (small arguments, no storage object)

LOG_STDOUT = int(LogType.Stdout)
LOG_STDERR = int(LogType.Stderr)

INSTRUCTION_CREATE = int(ObjectInstructionType.Create)
INSTRUCTION_DELETE = int(ObjectInstructionType.Delete)
INSTRUCTION_CLEAR = int(ObjectInstructionType.Clear)

CONTENT_SERIALIZER = int(ObjectContentType.Serializer)
CONTENT_OBJECT = int(ObjectContentType.Object)

DISCONNECT_CLIENT = int(DisconnectType.Disconnect)
DISCONNECT_SHUTDOWN = int(DisconnectType.Shutdown)

OBJ_SET = int(ObjectRequestType.Set)
OBJ_GET = int(ObjectRequestType.Get)
OBJ_DELETE = int(ObjectRequestType.Delete)

OBJ_SET_OK = int(ObjectResponseType.SetOK)
OBJ_GET_OK = int(ObjectResponseType.GetOK)
OBJ_DEL_OK = int(ObjectResponseType.DelOK)
OBJ_DEL_NOT_EXISTS = int(ObjectResponseType.DelNotExists)
OBJ_ERROR = int(ObjectResponseType.Error)
OBJ_NOT_FOUND = int(ObjectResponseType.NotFound)  # a get whose object did not appear within the server's wait deadline

# Batching limits, as Go's protocol.MaxBatchMessages / MaxBatchBytes.
MAX_BATCH_MESSAGES = 1024
MAX_BATCH_BYTES = 1 << 20

# The processor channel's framing (docs/protocol.md §7.5): a 4-byte little-endian length, then a frame.
LENGTH = struct.Struct("<I")

_packer = msgpack.Packer(use_bin_type=True)
_packb = _packer.pack
_unpackb = msgpack.unpackb

# ---- frames as plain dicts


def encode(kind: int, body: dict) -> bytes:
    """The frame of ``body`` (keys: the field names of docs/protocol.md §7; Go reads them in any
    order and gives missing ones their zero value)."""
    return bytes((kind,)) + _packb(body)


def decode(frame) -> tuple:
    """Returns (kind, body dict). Raises ValueError on a malformed frame."""
    view = memoryview(frame)
    if len(view) < 2:
        raise ValueError("frame too short")
    body = _unpackb(view[1:], raw=False, strict_map_key=False)
    if not isinstance(body, dict):
        raise ValueError("body is not a map")
    return view[0], body


def batched(frames: list) -> list:
    """The frames to send for ``frames`` (complete frames for one peer, in order): the frames
    themselves when fewer than two, else Batch frames, each of at most MAX_BATCH_MESSAGES
    elements and about MAX_BATCH_BYTES, preserving order."""
    if len(frames) < 2:
        return frames
    out = []
    chunk: list = []
    size = 0
    for frame in frames:
        if chunk and (len(chunk) >= MAX_BATCH_MESSAGES or size + len(frame) > MAX_BATCH_BYTES):
            out.append(chunk[0] if len(chunk) == 1 else encode(BATCH, {"messages": chunk}))
            chunk, size = [], 0
        chunk.append(frame)
        size += len(frame)
    out.append(chunk[0] if len(chunk) == 1 else encode(BATCH, {"messages": chunk}))
    return out


# ---- msgpack headers, exactly as msgpack.Packer(use_bin_type=True) writes them

BIN8 = [b"\xc4" + bytes((n,)) for n in range(256)]  # bin 8 headers, by length
FIXARRAY = [bytes((0x90 | n,)) for n in range(16)]


def _header(n: int, short: list, code16: bytes, code32: bytes) -> bytes:
    if n < len(short):
        return short[n]
    if n < 65536:
        return code16 + n.to_bytes(2, "big")
    return code32 + n.to_bytes(4, "big")


def bin_header(n: int) -> bytes:
    """The msgpack bin header for n bytes."""
    return BIN8[n] if n < 256 else _header(n, BIN8, b"\xc5", b"\xc6")


def array_header(n: int) -> bytes:
    """The msgpack array header for n elements."""
    return _header(n, FIXARRAY, b"\xdc", b"\xdd")


def _read_bin(frame: bytes, position: int) -> Tuple[int, int]:
    """(start, end) of the bin whose header is at ``position``; (-1, -1) if none is there."""
    header = frame[position]
    if header == 0xC4:
        start = position + 2
        return start, start + frame[position + 1]
    if header == 0xC5:
        start = position + 3
        return start, start + int.from_bytes(frame[position + 1 : start], "big")
    if header == 0xC6:
        start = position + 5
        return start, start + int.from_bytes(frame[position + 1 : start], "big")
    return -1, -1


# ---- pieces derived from the declarations


def _names(cls) -> List[str]:
    return [name for name, _ in cls.FIELDS]


def _fields(cls, names, values: Dict[str, Any]) -> bytes:
    """The key/value pairs of ``names`` (in that order), each value from ``values`` or its zero."""
    types = dict(cls.FIELDS)
    return b"".join(
        _packb(name) + _packb(_to_wire(types[name], values[name] if name in values else _zero(types[name])))
        for name in names
    )


def _layout(cls, variable: str) -> Tuple[bytes, List[str], List[str]]:
    """(head, names between the task id and ``variable``, names after ``variable``) for frames of
    ``cls`` joined as ``head + task id (16 bytes) + middle + variable's value + tail``.

    The task id must be the first field: the fast paths find it right after the head."""
    names = _names(cls)
    if names[0] != "task_id" or variable not in names:
        raise ImportError(f"scaler.protocol.wire: {cls.__name__} fields {names} do not fit the fast path")
    at = names.index(variable)
    head = bytes((cls.KIND,)) + _packer.pack_map_header(len(names)) + _packb("task_id") + bin_header(16)
    return head, names[1:at], names[at + 1:]


def _argument_prefix(arg_type: int) -> bytes:
    """An Argument map of ``arg_type`` up to its data's bin header (data must be its last field)."""
    names = _names(Argument)
    if names[-1] != "data":
        raise ImportError(f"scaler.protocol.wire: Argument fields {names} do not fit the fast path")
    encoded = _packer.pack_map_header(len(names)) + _fields(Argument, names, {"type": arg_type})
    return encoded[: -len(_packb(b""))]


_ARGUMENT_PREFIX = {t: _argument_prefix(t) for t in (ARG_TASK, ARG_OBJECT, ARG_INLINE)}
ARG_INLINE_PREFIX = _ARGUMENT_PREFIX[ARG_INLINE]  # + bin_header(len(data)) + data
ONE_INLINE_ARGUMENT_PREFIX = FIXARRAY[1] + ARG_INLINE_PREFIX  # a Task's arguments: one inline argument


def encode_arguments(arguments: list) -> bytes:
    """The msgpack array of ``arguments`` [(type, data)]: a Task's ``arguments`` field."""
    parts = [array_header(len(arguments))]
    for arg_type, data in arguments:
        parts.append(_ARGUMENT_PREFIX[arg_type])
        parts.append(bin_header(len(data)))
        parts.append(data)
    return b"".join(parts)


# Task frames (client -> scheduler, docs/protocol.md §7.1): everything but the task id and the
# arguments is the same for all tasks of one submission, so it is encoded once.
_TASK_HEAD, _TASK_MIDDLE, _TASK_TAIL = _layout(Task, "arguments")


def task_frame_pieces(source: bytes, function_id: bytes, capabilities: dict, priority: int, stream_output: bool,
                      profiling: bool) -> tuple:
    """(head, middle, tail): a Task frame is ``head + task_id (16 bytes) + middle + arguments + tail``
    with ``arguments`` from encode_arguments."""
    values = {
        "source": source, "metadata": b"", "func_object_id": function_id, "capabilities": dict(capabilities),
        "priority": priority, "stream_output": bool(stream_output), "profiling": bool(profiling),
        # Small results come back inline only; nothing here needs them as storage objects
        # (the scheduler keeps graph results that feed other nodes).
        "keep_result": False,
    }
    middle = _fields(Task, _TASK_MIDDLE, values) + _packb("arguments")
    return _TASK_HEAD, middle, _fields(Task, _TASK_TAIL, values)


# ProcessorResult frames of an inline-only outcome (processor -> agent, docs/protocol.md §7.5):
#   head + task id (16 bytes) + middle[type] + bin header + inline + tail
_RESULT_HEAD, _RESULT_MIDDLE, _RESULT_TAIL = _layout(ProcessorResult, "inline")
_RESULT_MIDDLE_BY_TYPE = {
    t: _fields(ProcessorResult, _RESULT_MIDDLE, {"type": t}) + _packb("inline") for t in (RESULT_SUCCESS, RESULT_FAILED)
}
_RESULT_TAIL_BYTES = _fields(ProcessorResult, _RESULT_TAIL, {})
_RESULT_FIXED = len(_RESULT_HEAD) + 16 + len(_RESULT_MIDDLE_BY_TYPE[RESULT_SUCCESS]) + len(_RESULT_TAIL_BYTES)


def inline_result(task_id: bytes, result_type: int, payload: bytes) -> bytes:
    """The length-prefixed ProcessorResult of an inline-only outcome (success or failed): no
    result object, no message."""
    middle = _RESULT_MIDDLE_BY_TYPE.get(result_type) if len(task_id) == 16 else None
    if middle is None:
        return processor_result(task_id, result_type, b"", b"", payload, "")
    size = len(payload)
    header = BIN8[size] if size < 256 else bin_header(size)
    return b"".join((
        LENGTH.pack(_RESULT_FIXED + len(header) + size), _RESULT_HEAD, task_id, middle, header, payload,
        _RESULT_TAIL_BYTES,
    ))


def processor_result(task_id: bytes, result_type: int, result_object_id: bytes, result_object_name: bytes,
                     inline: bytes, message: str) -> bytes:
    """The length-prefixed ProcessorResult of any outcome."""
    frame = bytes((PROCESSOR_RESULT,)) + _packb(ProcessorResult(
        task_id=task_id, type=result_type, result_object_id=result_object_id, result_object_name=result_object_name,
        inline=inline, message=message,
    ).to_dict())
    return LENGTH.pack(len(frame)) + frame


# ---- ProcessorTask frames read by slicing (agent -> processor, docs/protocol.md §7.5)
#
# For one client and function, ProcessorTask frames differ only in the task id and the arguments:
# the bytes between them (source, serializer, function, metadata, priority, flags, object storage)
# repeat. A template is those bytes, checked once against the decoded map. A frame that starts
# with the head, has a template's bytes right after its task id, then inline arguments and then
# the declared fields after the arguments at their zero values is read by slicing: no map, no
# objects besides the task id and the argument bytes. Anything else is refused.

_PTASK_HEAD, _PTASK_MIDDLE, _PTASK_TAIL = _layout(ProcessorTask, "arguments")
_PTASK_ID_END = len(_PTASK_HEAD) + 16
_PTASK_MIDDLE_KEYS = [name.encode() for name in _PTASK_MIDDLE]
_PTASK_TAIL_BYTES = _fields(ProcessorTask, _PTASK_TAIL, {})  # the rest at zero (keep_result false)
_ARGUMENTS_KEY = _packb("arguments")
_ARGUMENT_TYPE_INLINE = ARG_INLINE


def processor_task_id(frame: bytes) -> Optional[bytes]:
    """The task id of a ProcessorTask frame laid out as declared, else None (decode it)."""
    if frame.startswith(_PTASK_HEAD) and len(frame) >= _PTASK_ID_END:
        return frame[len(_PTASK_HEAD) : _PTASK_ID_END]
    return None


class TaskTemplates:
    """The last few ProcessorTask templates, each with a value of the caller's (the processor
    keeps the serializer and function there)."""

    def __init__(self, size: int = 4):
        self._size = size
        self._templates: List[Tuple[bytes, Any]] = []  # (bytes after the task id up to the arguments, value)

    def clear(self) -> None:
        self._templates.clear()

    def match(self, frame: bytes) -> Optional[tuple]:
        """(task id, [inline argument bytes], value) of a frame read by a template, or None."""
        if not frame.startswith(_PTASK_HEAD):
            return None
        for middle, value in self._templates:
            if frame.startswith(middle, _PTASK_ID_END):
                break
        else:
            return None
        position = _PTASK_ID_END + len(middle)
        count = frame[position] - 0x90  # fixarray
        if not 0 <= count < 16:
            return None
        position += 1
        prefix = ARG_INLINE_PREFIX
        skip = len(prefix)
        data = []
        for _ in range(count):
            if not frame.startswith(prefix, position):
                return None
            start, position = _read_bin(frame, position + skip)
            if start < 0:
                return None
            data.append(frame[start:position])
        if len(frame) - position != len(_PTASK_TAIL_BYTES) or not frame.startswith(_PTASK_TAIL_BYTES, position):
            return None
        return frame[len(_PTASK_HEAD) : _PTASK_ID_END], data, value

    def learn(self, frame: bytes, body: dict, value: Any) -> bool:
        """Remember the bytes after this frame's task id as a template, if they read back as
        ``body`` (the frame decoded with ``raw=True``) and the whole frame then reads by slicing
        exactly as decoded. Returns whether it did."""
        position = frame.find(_ARGUMENTS_KEY, _PTASK_ID_END)
        if not frame.startswith(_PTASK_HEAD) or position < 0:
            return False
        middle = frame[_PTASK_ID_END:position] + _ARGUMENTS_KEY
        try:
            fields = _unpackb(_packer.pack_map_header(len(_PTASK_MIDDLE_KEYS)) + middle[: -len(_ARGUMENTS_KEY)],
                              raw=True)
        except Exception:
            return False  # the guess at where the arguments start was wrong
        if list(fields) != _PTASK_MIDDLE_KEYS or any(fields[key] != body.get(key) for key in _PTASK_MIDDLE_KEYS):
            return False
        templates = [t for t in self._templates if t[0] != middle][: self._size - 1]
        templates.insert(0, (middle, value))
        previous, self._templates = self._templates, templates
        read = self.match(frame)
        arguments = body.get(b"arguments") or []
        if (
            read is None or read[0] != body.get(b"task_id")
            or [a.get(b"type") for a in arguments] != [_ARGUMENT_TYPE_INLINE] * len(read[1])
            or read[1] != [a.get(b"data") for a in arguments]
        ):
            self._templates = previous
            return False
        return True
