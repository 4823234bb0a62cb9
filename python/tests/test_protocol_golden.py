"""The Python codec reads every Go golden frame and writes it back byte for byte."""

import glob
import os

import msgpack
import pytest

from scaler.protocol import MESSAGES, DecodeError, Kind, decode, encode
from scaler.protocol.messages import Struct

GOLDEN_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "testdata", "protocol")
GOLDENS = sorted(glob.glob(os.path.join(GOLDEN_DIR, "*.msgpack")))


def test_goldens_exist():
    assert GOLDENS, f"no golden files in {GOLDEN_DIR}"
    names = {os.path.basename(p)[: -len(".msgpack")] for p in GOLDENS}
    assert names == {cls.__name__ for cls in MESSAGES.values()}


def _field_names_match(cls, body):
    """The golden map has exactly our fields, in our order, at every depth."""
    assert list(body.keys()) == [n for n, _ in cls.FIELDS], cls.__name__
    for name, typ in cls.FIELDS:
        inner = typ[0] if isinstance(typ, list) else typ
        if isinstance(inner, type) and issubclass(inner, Struct):
            values = body[name] if isinstance(typ, list) else [body[name]]
            for v in values:
                _field_names_match(inner, v)


@pytest.mark.parametrize("path", GOLDENS, ids=lambda p: os.path.basename(p))
def test_golden_round_trip(path):
    with open(path, "rb") as f:
        frame = f.read()
    message = decode(frame)
    assert type(message).__name__ + ".msgpack" == os.path.basename(path)
    assert Kind(frame[0]) == message.KIND
    _field_names_match(type(message), msgpack.unpackb(frame[1:], raw=False))
    assert encode(message) == frame


def test_missing_and_unknown_keys():
    from scaler.protocol import TaskCancel

    body = msgpack.packb({"force": True, "later_field": [1, 2, {"x": b"y"}]}, use_bin_type=True)
    m = decode(bytes([Kind.TaskCancel]) + body)
    assert m == TaskCancel(task_id=b"", force=True)


@pytest.mark.parametrize(
    "frame",
    [b"", b"\x00\x80", b"\x02", b"\x02\x81\xa5force\x01", b"\x02\x80\x80", b"\xff\x80", b"\x02\x81\xa7task_id\xa1x"],
)
def test_malformed(frame):
    with pytest.raises(DecodeError):
        decode(frame)


def test_batch_elements():
    from scaler.protocol import Batch, TaskCancel, unbatch

    good = encode(TaskCancel(task_id=b"\x01" * 16, force=True))
    nested = encode(Batch(messages=[good, good]))
    batch = decode(encode(Batch(messages=[good, nested, b"\xff\x80", good])))
    results = unbatch(batch)
    assert [m for m, _ in results] == [TaskCancel(task_id=b"\x01" * 16, force=True), None, None,
                                       TaskCancel(task_id=b"\x01" * 16, force=True)]
    assert all(isinstance(e, DecodeError) for _, e in results[1:3])
