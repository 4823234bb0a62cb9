"""The fast paths of scaler.protocol.wire agree with the general codec on every Go golden frame,
and refuse (return None: the caller decodes in full) any frame laid out otherwise, such as one
with a field Go added, instead of misreading it."""

import glob
import os

import msgpack
import pytest

from scaler.protocol import (
    Argument,
    Kind,
    MESSAGES,
    ProcessorResult,
    ProcessorTask,
    Task,
    decode,
    encode,
    wire,
)

GOLDEN_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "testdata", "protocol")
GOLDENS = sorted(glob.glob(os.path.join(GOLDEN_DIR, "*.msgpack")))
_pack = msgpack.Packer(use_bin_type=True).pack


def _golden(name: str) -> bytes:
    with open(os.path.join(GOLDEN_DIR, name + ".msgpack"), "rb") as f:
        return f.read()


def _raw(frame: bytes) -> dict:
    return msgpack.unpackb(frame[1:], raw=True)


def _read(frame: bytes):
    """What the general decoder says the template reader must give: (task id, inline argument bytes)."""
    task = decode(frame)
    return task.task_id, [a.data for a in task.arguments]


def _fast_task(**changes) -> ProcessorTask:
    """The golden ProcessorTask made one the processor reads by template (inline arguments, no
    argument ids, no streaming, result not kept)."""
    task = decode(_golden("ProcessorTask"))
    task.argument_ids = []
    task.stream_output = False
    task.keep_result = False
    task.arguments = [Argument(type=wire.ARG_INLINE, data=b"\x80\x05K\x03.")]
    for name, value in changes.items():
        setattr(task, name, value)
    return task


def _body_with(task: ProcessorTask, insert_at: int = None, extra=None, order=None) -> bytes:
    """The frame of ``task`` with its fields in ``order`` and ``extra`` (name, value) inserted at
    position ``insert_at``: how Go would write it after a change of its message."""
    fields = list(task.to_dict().items())
    if order is not None:
        fields = [fields[i] for i in order]
    if extra is not None:
        fields.insert(insert_at, extra)
    return bytes((Kind.ProcessorTask,)) + _pack(dict(fields))


@pytest.mark.parametrize("path", GOLDENS, ids=lambda p: os.path.basename(p))
def test_dict_decode_equals_general_decode(path):
    with open(path, "rb") as f:
        frame = f.read()
    kind, body = wire.decode(frame)
    message = decode(frame)
    assert kind == message.KIND
    assert body == message.to_dict()
    assert wire.encode(kind, body) == frame  # the dict codec writes Go's bytes back


@pytest.mark.parametrize("path", GOLDENS, ids=lambda p: os.path.basename(p))
def test_template_reader_on_every_golden(path):
    """Only a ProcessorTask has a task id where the reader looks; the golden one (object
    arguments, streaming, keep_result) teaches no template and is not read by slicing."""
    with open(path, "rb") as f:
        frame = f.read()
    message = decode(frame)
    templates = wire.TaskTemplates()
    if message.KIND == Kind.ProcessorTask:
        assert wire.processor_task_id(frame) == message.task_id
        assert not templates.learn(frame, _raw(frame), "value")
    else:
        assert wire.processor_task_id(frame) is None
        assert not templates.learn(frame, _raw(frame), "value")
    assert templates.match(frame) is None


def test_template_reads_what_decode_reads():
    templates = wire.TaskTemplates()
    taught = encode(_fast_task())
    assert templates.learn(taught, _raw(taught), "value")
    for arguments in ([], [b""], [b"x" * 255], [b"y" * 256, b"z" * 70000], [bytes([i]) for i in range(15)]):
        task_id = os.urandom(16)
        frame = encode(_fast_task(task_id=task_id, arguments=[Argument(type=wire.ARG_INLINE, data=d) for d in arguments]))
        assert templates.match(frame) == (task_id, arguments, "value")
        assert templates.match(frame)[:2] == _read(frame)


@pytest.mark.parametrize(
    "changes",
    [
        {"keep_result": True},
        {"stream_output": True},
        {"source": b"another client"},
        {"func_object_id": b"\x01" * 32},
        {"priority": 4},
        {"argument_ids": [b"\x02" * 32]},
        {"arguments": [Argument(type=wire.ARG_OBJECT, data=b"\x03" * 32)]},
        {"arguments": [Argument(type=wire.ARG_INLINE, data=b"a")] * 16},  # array 16, not a fixarray
        {"task_id": b"short"},
    ],
    ids=lambda c: ",".join(c),
)
def test_template_refuses_other_values(changes):
    templates = wire.TaskTemplates()
    taught = encode(_fast_task())
    assert templates.learn(taught, _raw(taught), "value")
    assert templates.match(encode(_fast_task(**changes))) is None


def _layouts():
    """Frames of a fast task laid out otherwise: every field Go might add, at every position,
    and fields reordered."""
    task = _fast_task()
    n = len(ProcessorTask.FIELDS)
    for at in range(n + 1):
        for extra in (("later", 0), ("later", b"\x00" * 16), ("later", False)):
            yield f"{extra[0]}={extra[1]!r}@{at}", _body_with(task, at, extra)
    for i in range(n - 1):
        order = list(range(n))
        order[i], order[i + 1] = order[i + 1], order[i]
        yield f"swap{i}", _body_with(task, order=order)
    yield "arguments key inside the source", encode(_fast_task(source=b"x" + _pack("arguments") + b"\x91"))
    taught = encode(task)
    yield "trailing byte", taught + b"\xc0"
    yield "truncated", taught[:-1]
    arguments = taught.index(_pack("arguments"))
    yield "argument keys swapped", taught.replace(
        _pack({"type": wire.ARG_INLINE, "data": b"\x80\x05K\x03."}), _pack({"data": b"\x80\x05K\x03.", "type": wire.ARG_INLINE}))
    yield "argument as str", taught[:arguments] + taught[arguments:].replace(b"\xc4\x05\x80\x05K\x03.", b"\xa5\x80\x05K\x03.")


@pytest.mark.parametrize("name,frame", list(_layouts()), ids=[name for name, _ in _layouts()])
def test_template_never_misreads_another_layout(name, frame):
    """A frame laid out otherwise is refused by the template of the declared layout, and teaches
    no template that would read it differently from the general decoder."""
    templates = wire.TaskTemplates()
    taught = encode(_fast_task())
    assert templates.learn(taught, _raw(taught), "value")
    assert templates.match(frame) is None
    try:
        body = _raw(frame)
    except Exception:
        return  # malformed: the processor drops it
    fresh = wire.TaskTemplates()
    if fresh.learn(frame, body, "value"):
        assert fresh.match(frame)[:2] == (body[b"task_id"], [a[b"data"] for a in body[b"arguments"]])


def test_task_frame_pieces_are_the_declared_layout():
    """The client's Task frames from pieces are what the general encoder writes for the golden
    Task's values, with the fields in Go's order (the golden's)."""
    golden = decode(_golden("Task"))
    head, middle, tail = wire.task_frame_pieces(golden.source, golden.func_object_id, golden.capabilities,
                                                golden.priority, golden.stream_output, golden.profiling)
    arguments = [(a.type, a.data) for a in golden.arguments]
    frame = head + golden.task_id + middle + wire.encode_arguments(arguments) + tail
    golden.metadata, golden.keep_result = b"", False  # what the client always sends
    assert frame == encode(golden)
    assert list(msgpack.unpackb(frame[1:])) == list(msgpack.unpackb(_golden("Task")[1:]))


def test_inline_results_are_the_declared_layout():
    golden = decode(_golden("ProcessorResult"))
    for result_type in (wire.RESULT_SUCCESS, wire.RESULT_FAILED):
        for size in (0, 1, 255, 256, 65535, 65536, 70000):
            payload = os.urandom(size)
            expected = encode(ProcessorResult(task_id=golden.task_id, type=result_type, inline=payload))
            assert wire.inline_result(golden.task_id, result_type, payload) == wire.LENGTH.pack(len(expected)) + expected
    frame = wire.processor_result(golden.task_id, golden.type, golden.result_object_id, golden.result_object_name,
                                  golden.inline, golden.message)
    assert frame == wire.LENGTH.pack(len(_golden("ProcessorResult"))) + _golden("ProcessorResult")
    assert wire.inline_result(b"short", 0, b"x")[4:] == encode(ProcessorResult(task_id=b"short", inline=b"x"))


def test_argument_pieces_are_the_declared_layout():
    for arg_type in (wire.ARG_TASK, wire.ARG_OBJECT, wire.ARG_INLINE):
        for data in (b"", b"d" * 300):
            assert wire.encode_arguments([(arg_type, data)]) == _pack([Argument(type=arg_type, data=data).to_dict()])


def test_kind_numbers_are_the_declared_ones():
    assert {wire.TASK, wire.TASK_RESULT, wire.PROCESSOR_TASK, wire.PROCESSOR_RESULT, wire.BATCH} <= set(MESSAGES)
    assert MESSAGES[wire.PROCESSOR_TASK] is ProcessorTask and MESSAGES[wire.TASK] is Task
