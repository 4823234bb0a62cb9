"""Message classes, enumerations and the frame codec.

Field types (docs/protocol.md §3):

- ``B`` bytes (msgpack bin), ``S`` str, ``Z`` bool, ``I`` integer (also enums),
  ``F`` float64, ``M`` map ``{str: int}``,
- a message class: a nested map,
- a one-element list ``[T]``: an array of T.

Readers give missing keys their zero value and skip unknown keys.
"""

import enum
from typing import Any, Dict, List, Optional, Tuple, Type

import msgpack

__all__ = [
    "Kind", "TaskState", "TaskResultType", "TaskCancelConfirmType", "ArgumentType", "LogType",
    "ObjectInstructionType", "ObjectContentType", "DisconnectType", "NodeTaskType", "WorkerState",
    "ObjectRequestType", "ObjectResponseType",
    "Message", "Struct", "DecodeError", "encode", "decode", "unbatch", "MESSAGES",
    "Resource", "Address", "ProcessorStatus", "TaskProfile", "Argument", "ObjectMetadata",
    "MessageCount", "BinderStatus", "ClientTaskCount", "TaskStateCount", "WorkerStatus", "WorkerGroup",
    "Task", "TaskCancel", "TaskCancelConfirm", "TaskResult", "TaskLog", "GraphTask", "ObjectInstruction",
    "ClientHeartbeat", "ClientHeartbeatEcho", "WorkerHeartbeat", "WorkerHeartbeatEcho",
    "DisconnectRequest", "DisconnectResponse", "ClientDisconnect", "ClientShutdownResponse", "Batch",
    "Relay",
    "StateScheduler", "StateWorker", "StateTask", "StateGraphTask", "StateBalanceAdvice",
    "ProcessorInitialized", "ProcessorTask", "ProcessorResult", "ProcessorLog", "ProcessorCancel",
    "ProcessorCanceled", "ObjectRequest", "ObjectResponse",
]


class Kind(enum.IntEnum):
    Task = 1
    TaskCancel = 2
    TaskCancelConfirm = 3
    TaskResult = 4
    TaskLog = 5
    GraphTask = 6
    ObjectInstruction = 7
    ClientHeartbeat = 8
    ClientHeartbeatEcho = 9
    WorkerHeartbeat = 10
    WorkerHeartbeatEcho = 11
    DisconnectRequest = 12
    DisconnectResponse = 13
    ClientDisconnect = 14
    ClientShutdownResponse = 15
    Batch = 16
    Relay = 17
    StateScheduler = 32
    StateWorker = 33
    StateTask = 34
    StateGraphTask = 35
    StateBalanceAdvice = 36
    ProcessorInitialized = 64
    ProcessorTask = 65
    ProcessorResult = 66
    ProcessorLog = 67
    ProcessorCancel = 68
    ProcessorCanceled = 69
    ObjectRequest = 96
    ObjectResponse = 97


# The enumerations whose values count from 0 in the order named (docs/protocol.md; the Go
# definitions are core/protocol/enums.go and storage.go).
TaskState = enum.IntEnum(
    "TaskState",
    "Inactive Running Canceling BalanceCanceling Success Failed FailedWorkerDied Canceled CanceledNotFound"
    " BalanceCanceled WorkerDisconnecting FailedTimeout FailedProcessorDied Rejected",
    start=0,
)
TaskResultType = enum.IntEnum(
    "TaskResultType", "Success Failed FailedWorkerDied FailedTimeout FailedProcessorDied Rejected", start=0
)
TaskCancelConfirmType = enum.IntEnum("TaskCancelConfirmType", "Canceled CancelFailed CancelNotFound", start=0)
# ArgumentType.Inline: data is the serialized argument itself (no storage object)
ArgumentType = enum.IntEnum("ArgumentType", "Task ObjectID Inline", start=0)
LogType = enum.IntEnum("LogType", "Stdout Stderr", start=0)
ObjectInstructionType = enum.IntEnum("ObjectInstructionType", "Create Delete Clear", start=0)
ObjectContentType = enum.IntEnum("ObjectContentType", "Serializer Object", start=0)
DisconnectType = enum.IntEnum("DisconnectType", "Disconnect Shutdown", start=0)
NodeTaskType = enum.IntEnum("NodeTaskType", "Normal Target", start=0)
WorkerState = enum.IntEnum("WorkerState", "Connected Disconnected", start=0)
ObjectRequestType = enum.IntEnum("ObjectRequestType", "Set Get Delete Duplicate Stats", start=0)
# ObjectResponseType.NotFound: get/duplicate: the object did not appear within the server's wait deadline
ObjectResponseType = enum.IntEnum(
    "ObjectResponseType", "SetOK GetOK DelOK DelNotExists DuplicateOK StatsOK Error NotFound", start=0
)


class DecodeError(ValueError):
    """A frame that is not a valid message (docs/protocol.md §10)."""


B, S, Z, I, F, M = "bin", "str", "bool", "int", "f64", "map"

_ZERO = {B: bytes, S: str, Z: bool, I: int, F: float, M: dict}


class Struct:
    """A msgpack map with a fixed field list. Subclasses set FIELDS."""

    FIELDS: Tuple[Tuple[str, Any], ...] = ()
    __slots__ = ()

    def __init__(self, **kwargs):
        for name, typ in self.FIELDS:
            if name in kwargs:
                value = kwargs.pop(name)
            else:
                value = _zero(typ)
            object.__setattr__(self, name, value)
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unknown fields {sorted(kwargs)}")

    def to_dict(self) -> Dict[str, Any]:
        return {name: _to_wire(typ, getattr(self, name)) for name, typ in self.FIELDS}

    @classmethod
    def from_dict(cls, data: Any) -> "Struct":
        if not isinstance(data, dict):
            raise DecodeError(f"{cls.__name__}: expected a map, got {type(data).__name__}")
        obj = cls.__new__(cls)
        for name, typ in cls.FIELDS:
            if name in data:
                value = _from_wire(typ, data[name], f"{cls.__name__}.{name}")
            else:
                value = _zero(typ)
            object.__setattr__(obj, name, value)
        return obj

    def __eq__(self, other):
        return type(self) is type(other) and all(getattr(self, n) == getattr(other, n) for n, _ in self.FIELDS)

    def __repr__(self):
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n, _ in self.FIELDS)
        return f"{type(self).__name__}({inner})"


class Message(Struct):
    """A top-level message; KIND is its kind byte."""

    KIND: Kind
    __slots__ = ()

    def encode(self) -> bytes:
        return encode(self)


def _zero(typ):
    if isinstance(typ, list):
        return []
    if isinstance(typ, type) and issubclass(typ, Struct):
        return typ()
    return _ZERO[typ]()


def _to_wire(typ, value):
    if isinstance(typ, list):
        inner = typ[0]
        return [_to_wire(inner, v) for v in value]
    if isinstance(typ, type) and issubclass(typ, Struct):
        return value.to_dict()
    if typ is I:
        return int(value)
    if typ is F:
        return float(value)
    return value


def _from_wire(typ, value, where):
    if isinstance(typ, list):
        if not isinstance(value, list):
            raise DecodeError(f"{where}: expected an array")
        return [_from_wire(typ[0], v, where) for v in value]
    if isinstance(typ, type) and issubclass(typ, Struct):
        return typ.from_dict(value)
    if typ is B:
        if not isinstance(value, bytes):
            raise DecodeError(f"{where}: expected bin")
    elif typ is S:
        if not isinstance(value, str):
            raise DecodeError(f"{where}: expected str")
    elif typ is Z:
        if not isinstance(value, bool):
            raise DecodeError(f"{where}: expected bool")
    elif typ is I:
        if isinstance(value, bool) or not isinstance(value, int):
            raise DecodeError(f"{where}: expected an integer")
    elif typ is F:
        if not isinstance(value, float):
            raise DecodeError(f"{where}: expected float")
    elif typ is M:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in value.items()
        ):
            raise DecodeError(f"{where}: expected a map of str to int")
    return value


def _struct(name, fields, kind: Optional[Kind] = None):
    base = Message if kind is not None else Struct
    attrs = {"FIELDS": tuple(fields), "__slots__": tuple(n for n, _ in fields)}
    if kind is not None:
        attrs["KIND"] = kind
    return type(name, (base,), attrs)


# Shared structures.
Resource = _struct("Resource", [("cpu", I), ("rss", I)])
Address = _struct("Address", [("host", S), ("port", I)])
ProcessorStatus = _struct(
    "ProcessorStatus",
    [("pid", I), ("initialized", Z), ("has_task", Z), ("suspended", Z), ("resource", Resource)],
)
TaskProfile = _struct("TaskProfile", [("duration_s", F), ("cpu_time_s", F), ("memory_peak", I)])
Argument = _struct("Argument", [("type", I), ("data", B)])
ObjectMetadata = _struct(
    "ObjectMetadata", [("object_ids", [B]), ("content_types", [I]), ("names", [B]), ("contents", [B])]
)
MessageCount = _struct("MessageCount", [("name", S), ("count", I)])
BinderStatus = _struct("BinderStatus", [("received", [MessageCount]), ("sent", [MessageCount])])
ClientTaskCount = _struct("ClientTaskCount", [("client", B), ("tasks", I)])
TaskStateCount = _struct("TaskStateCount", [("state", I), ("count", I)])
WorkerStatus = _struct(
    "WorkerStatus",
    [
        ("worker_id", B), ("agent", Resource), ("rss_free", I), ("free", I), ("sent", I), ("queued", I),
        ("suspended", I), ("lag_us", I), ("last_s", I), ("itl", S), ("processors", [ProcessorStatus]),
    ],
)
WorkerGroup = _struct("WorkerGroup", [("group_id", B), ("worker_ids", [B])])

_TASK_FIELDS = [
    ("task_id", B), ("source", B), ("metadata", B), ("func_object_id", B), ("arguments", [Argument]),
    ("capabilities", M), ("priority", I), ("stream_output", Z), ("profiling", Z),
    ("keep_result", Z),
]

# 7.1 tasks and objects.
Task = _struct("Task", _TASK_FIELDS, Kind.Task)
TaskCancel = _struct("TaskCancel", [("task_id", B), ("force", Z)], Kind.TaskCancel)
TaskCancelConfirm = _struct("TaskCancelConfirm", [("task_id", B), ("type", I)], Kind.TaskCancelConfirm)
TaskResult = _struct(
    "TaskResult",
    [("task_id", B), ("type", I), ("profile", TaskProfile), ("results", [B]), ("inline", B), ("message", S)],
    Kind.TaskResult,
)
TaskLog = _struct("TaskLog", [("task_id", B), ("type", I), ("content", S)], Kind.TaskLog)
GraphTask = _struct(
    "GraphTask", [("task_id", B), ("source", B), ("targets", [B]), ("graph", [Task])], Kind.GraphTask
)
ObjectInstruction = _struct(
    "ObjectInstruction", [("type", I), ("object_user", B), ("metadata", ObjectMetadata)], Kind.ObjectInstruction
)

# 7.2 connection management.
ClientHeartbeat = _struct(
    "ClientHeartbeat", [("resource", Resource), ("latency_us", I), ("nested", Z)], Kind.ClientHeartbeat
)
ClientHeartbeatEcho = _struct(
    "ClientHeartbeatEcho", [("object_storage", Address), ("instance_id", B)], Kind.ClientHeartbeatEcho
)
WorkerHeartbeat = _struct(
    "WorkerHeartbeat",
    [
        ("agent", Resource), ("rss_free", I), ("queued_tasks", I), ("queue_size", I), ("latency_us", I),
        ("task_lock", Z), ("processors", [ProcessorStatus]), ("capabilities", M), ("tasks", [B]), ("echo_seq", I), ("slot", B),
    ],
    Kind.WorkerHeartbeat,
)
WorkerHeartbeatEcho = _struct(
    "WorkerHeartbeatEcho", [("object_storage", Address), ("seq", I), ("instance_id", B)], Kind.WorkerHeartbeatEcho
)
DisconnectRequest = _struct("DisconnectRequest", [("worker", B)], Kind.DisconnectRequest)
DisconnectResponse = _struct("DisconnectResponse", [("worker", B)], Kind.DisconnectResponse)
ClientDisconnect = _struct("ClientDisconnect", [("type", I)], Kind.ClientDisconnect)
ClientShutdownResponse = _struct(
    "ClientShutdownResponse", [("accepted", Z), ("reason", S)], Kind.ClientShutdownResponse
)
# Several complete frames (kind byte + body, never a Batch) for one peer, handled in order as if
# each had arrived alone (docs/protocol.md §7.6). See unbatch().
Batch = _struct("Batch", [("messages", [B])], Kind.Batch)
# One worker's frames over the connection of the process that hosts it (docs/protocol.md §7.7);
# Python speaks it nowhere, but reads every kind Go writes.
Relay = _struct("Relay", [("worker", B), ("messages", [B]), ("closed", Z)], Kind.Relay)

# 7.4 monitor messages.
StateScheduler = _struct(
    "StateScheduler",
    [
        ("binder", BinderStatus), ("scheduler", Resource), ("rss_free", I), ("clients", [ClientTaskCount]),
        ("object_count", I), ("task_states", [TaskStateCount]), ("workers", [WorkerStatus]),
        ("worker_groups", [WorkerGroup]), ("monitor_dropped", I),
        ("monitor_sent", I), ("instance_id", B),
    ],
    Kind.StateScheduler,
)
StateWorker = _struct("StateWorker", [("worker_id", B), ("state", I), ("capabilities", M)], Kind.StateWorker)
StateTask = _struct(
    "StateTask",
    [("task_id", B), ("function_name", B), ("state", I), ("worker", B), ("profile", TaskProfile)],
    Kind.StateTask,
)
StateGraphTask = _struct(
    "StateGraphTask",
    [("graph_task_id", B), ("task_id", B), ("node_type", I), ("parent_task_ids", [B])],
    Kind.StateGraphTask,
)
StateBalanceAdvice = _struct("StateBalanceAdvice", [("worker_id", B), ("task_ids", [B])], Kind.StateBalanceAdvice)

# 7.5 agent <-> processor.
ProcessorInitialized = _struct("ProcessorInitialized", [("pid", I), ("error", S)], Kind.ProcessorInitialized)
ProcessorTask = _struct(
    "ProcessorTask",
    [
        ("task_id", B), ("source", B), ("serializer_id", B), ("func_object_id", B), ("argument_ids", [B]),
        ("metadata", B), ("priority", I), ("stream_output", Z), ("object_storage", Address),
        ("arguments", [Argument]), ("keep_result", Z),
    ],
    Kind.ProcessorTask,
)
ProcessorResult = _struct(
    "ProcessorResult",
    [
        ("task_id", B), ("type", I), ("result_object_id", B), ("result_object_name", B), ("inline", B),
        ("message", S),
    ],
    Kind.ProcessorResult,
)
ProcessorLog = _struct("ProcessorLog", [("task_id", B), ("type", I), ("content", S)], Kind.ProcessorLog)
ProcessorCancel = _struct("ProcessorCancel", [("task_id", B)], Kind.ProcessorCancel)
ProcessorCanceled = _struct("ProcessorCanceled", [("task_id", B)], Kind.ProcessorCanceled)

# Object storage (docs/protocol.md §9).
ObjectRequest = _struct(
    "ObjectRequest",
    [
        ("request_id", I), ("type", I), ("object_id", B), ("source_id", B), ("max_length", I),
        ("payload_length", I),
    ],
    Kind.ObjectRequest,
)
ObjectResponse = _struct(
    "ObjectResponse",
    [
        ("request_id", I), ("type", I), ("object_id", B), ("payload_length", I), ("error", S),
        ("objects", I), ("bytes", I), ("unique_contents", I), ("waiting_requests", I), ("max_memory", I),
    ],
    Kind.ObjectResponse,
)

MESSAGES: Dict[int, Type[Message]] = {
    cls.KIND: cls
    for cls in list(globals().values())
    if isinstance(cls, type) and issubclass(cls, Message) and cls is not Message
}

_packer = msgpack.Packer(use_bin_type=True)


def encode(message: Message) -> bytes:
    """Return the frame for message: its kind byte followed by its msgpack map."""
    return bytes((message.KIND,)) + _packer.pack(message.to_dict())


def decode(frame: bytes) -> Message:
    """Parse one frame. Raises DecodeError for anything malformed."""
    if not frame:
        raise DecodeError("empty frame")
    cls = MESSAGES.get(frame[0])
    if cls is None:
        raise DecodeError(f"unknown message kind {frame[0]}")
    try:
        body = msgpack.unpackb(memoryview(frame)[1:], raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several types (ExtraData, ValueError, ...)
        raise DecodeError(f"kind {frame[0]}: {exc}") from None
    return cls.from_dict(body)


def unbatch(batch: Message) -> List[Tuple[Optional[Message], Optional[DecodeError]]]:
    """Decode the elements of a Batch in order: (message, None) or (None, error) for a malformed
    element (a nested Batch is malformed); a bad element does not affect the others."""
    out: List[Tuple[Optional[Message], Optional[DecodeError]]] = []
    for frame in batch.messages:
        if frame and frame[0] == Kind.Batch:
            out.append((None, DecodeError("nested Batch")))
            continue
        try:
            out.append((decode(frame), None))
        except DecodeError as error:
            out.append((None, error))
    return out
