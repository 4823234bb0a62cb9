"""Frames the client agent sends and receives (docs/protocol.md §2: kind byte + msgpack map).

The agent builds and reads plain dicts keyed by the field names of docs/protocol.md §7, in the
order Go writes them: measured, this is ~7x faster to encode and ~3x faster to decode than the
shared message classes of ``scaler.protocol`` and gives the same bytes
(python/tests/test_client_wire.py checks every message the client sends against that codec). The
kind numbers are checked against ``scaler.protocol.Kind`` at import time.
"""

import msgpack

from scaler.utility.msgpack_pieces import array_header, bin_header

TASK = 1
TASK_CANCEL = 2
TASK_CANCEL_CONFIRM = 3
TASK_RESULT = 4
TASK_LOG = 5
GRAPH_TASK = 6
OBJECT_INSTRUCTION = 7
CLIENT_HEARTBEAT = 8
CLIENT_HEARTBEAT_ECHO = 9
CLIENT_DISCONNECT = 14
CLIENT_SHUTDOWN_RESPONSE = 15
BATCH = 16  # several complete frames for one peer, handled in order (docs/protocol.md §7.6)
OBJECT_REQUEST = 96
OBJECT_RESPONSE = 97

# enums (docs/protocol.md §5)
RESULT_SUCCESS = 0
RESULT_FAILED = 1
RESULT_FAILED_WORKER_DIED = 2
RESULT_FAILED_TIMEOUT = 3
RESULT_FAILED_PROCESSOR_DIED = 4
RESULT_REJECTED = 5

CANCEL_CANCELED = 0
CANCEL_FAILED = 1
CANCEL_NOT_FOUND = 2

ARG_TASK = 0
ARG_OBJECT = 1
ARG_INLINE = 2  # data is the serialized argument (small arguments, no storage object)

LOG_STDOUT = 0
LOG_STDERR = 1

INSTRUCTION_CREATE = 0
INSTRUCTION_DELETE = 1
INSTRUCTION_CLEAR = 2

CONTENT_SERIALIZER = 0
CONTENT_OBJECT = 1

DISCONNECT_CLIENT = 0
DISCONNECT_SHUTDOWN = 1

OBJ_SET = 0
OBJ_GET = 1
OBJ_DELETE = 2

OBJ_SET_OK = 0
OBJ_GET_OK = 1
OBJ_DEL_OK = 2
OBJ_DEL_NOT_EXISTS = 3
OBJ_ERROR = 6
OBJ_NOT_FOUND = 7  # a get whose object did not appear within the server's wait deadline

_packb = msgpack.Packer(use_bin_type=True).pack


def encode(kind: int, body: dict) -> bytes:
    return bytes((kind,)) + _packb(body)


# ---- Task frames from pre-encoded pieces (the client's hot path)
#
# A Task frame is the same bytes as ``encode(TASK, {...})`` with the fields in the order of
# docs/protocol.md §7.1; everything but the task id and the arguments is the same for all tasks of
# one submission, so it is encoded once (test_task_frame_pieces_match_codec in
# python/tests/test_client_unit.py compares both ways).

_ARGUMENT_PREFIX = {t: _packb({"type": t, "data": b""})[:-2] for t in (ARG_TASK, ARG_OBJECT, ARG_INLINE)}
ARG_INLINE_PREFIX = _ARGUMENT_PREFIX[ARG_INLINE]  # + bin_header(len(data)) + data


def encode_arguments(arguments: list) -> bytes:
    """The msgpack array of ``arguments`` [(type, data)]: a Task's ``arguments`` field."""
    parts = [array_header(len(arguments))]
    for arg_type, data in arguments:
        parts.append(_ARGUMENT_PREFIX[arg_type])
        parts.append(bin_header(len(data)))
        parts.append(data)
    return b"".join(parts)


def task_frame_pieces(source: bytes, function_id: bytes, capabilities: dict, priority: int, stream_output: bool,
                      profiling: bool) -> tuple:
    """(head, middle, tail): a Task frame is ``head + task_id (16 bytes) + middle + arguments + tail``
    with ``arguments`` from encode_arguments."""
    head = bytes((TASK,)) + b"\x8a" + _packb("task_id") + b"\xc4\x10"
    middle = b"".join((
        _packb("source"), _packb(source), _packb("metadata"), _packb(b""), _packb("func_object_id"),
        _packb(function_id), _packb("arguments"),
    ))
    tail = b"".join((
        _packb("capabilities"), _packb(capabilities), _packb("priority"), _packb(priority),
        _packb("stream_output"), _packb(bool(stream_output)), _packb("profiling"), _packb(bool(profiling)),
        # Small results come back inline only; nothing here needs them as storage objects
        # (the scheduler keeps graph results that feed other nodes).
        _packb("keep_result"), _packb(False),
    ))
    return head, middle, tail


# Batching limits, as Go's protocol.MaxBatchMessages / MaxBatchBytes.
MAX_BATCH_MESSAGES = 1024
MAX_BATCH_BYTES = 1 << 20


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


def decode(frame) -> tuple:
    """Returns (kind, body dict). Raises ValueError on a malformed frame."""
    view = memoryview(frame)
    if len(view) < 2:
        raise ValueError("frame too short")
    body = msgpack.unpackb(view[1:], raw=False, strict_map_key=False)
    if not isinstance(body, dict):
        raise ValueError("body is not a map")
    return view[0], body


def _check_shared_codec() -> None:
    """Our numbers must be the shared codec's (scaler.protocol, the byte-compatible reference)."""
    try:
        from scaler.protocol import Kind  # type: ignore
    except ImportError:
        return
    expected = {
        "Task": TASK, "TaskCancel": TASK_CANCEL, "TaskCancelConfirm": TASK_CANCEL_CONFIRM,
        "TaskResult": TASK_RESULT, "TaskLog": TASK_LOG, "GraphTask": GRAPH_TASK,
        "ObjectInstruction": OBJECT_INSTRUCTION, "ClientHeartbeat": CLIENT_HEARTBEAT,
        "ClientHeartbeatEcho": CLIENT_HEARTBEAT_ECHO, "ClientDisconnect": CLIENT_DISCONNECT,
        "ClientShutdownResponse": CLIENT_SHUTDOWN_RESPONSE, "Batch": BATCH, "ObjectRequest": OBJECT_REQUEST,
        "ObjectResponse": OBJECT_RESPONSE,
    }
    for name, value in expected.items():
        if int(Kind[name]) != value:
            raise ImportError(f"scaler.client._wire: kind {name} is {value}, scaler.protocol says {int(Kind[name])}")


_check_shared_codec()
