"""The Python object storage client against the Go object storage server."""

import os
import subprocess
import time

import pytest
import zmq

from _scaler_binary import free_port, scaler_binary
from scaler.io import ObjectStorageClient, new_object_id, serializer_object_id, client_id
from scaler.io import storage as storage_module
from scaler.utility.exceptions import ObjectNotFoundError
from scaler.io.ids import OBJECT_ID_LENGTH


def _storage_server(*options):
    """Run ``scaler object_storage_server`` with options on a free port; yield its address."""
    binary = scaler_binary()
    if binary is None:
        pytest.skip("no scaler binary (set SCALER_BINARY or put go on PATH)")
    address = f"tcp://127.0.0.1:{free_port()}"
    proc = subprocess.Popen([binary, "object_storage_server", address, *options], stdout=subprocess.DEVNULL)
    time.sleep(0.2)
    yield address
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def storage_address():
    yield from _storage_server()


def test_ids():
    cid = client_id()
    assert b"|Client|" in cid
    oid = new_object_id(cid)
    assert len(oid) == OBJECT_ID_LENGTH and oid[:16] == serializer_object_id(cid)[:16]
    assert serializer_object_id(cid) == serializer_object_id(cid)


def test_set_get_delete_duplicate(storage_address):
    cid = client_id()
    with ObjectStorageClient(storage_address, timeout_s=5) as c:
        a, b = new_object_id(cid), new_object_id(cid)
        c.set_object(a, b"hello")
        assert c.get_object(a) == b"hello"
        assert c.get_object(a, max_length=2) == b"he"
        c.duplicate_object(b, a)
        assert c.get_object(b) == b"hello"
        assert c.delete_object(a) is True
        assert c.delete_object(a) is False
        assert c.get_object(b) == b"hello"
        c.set_object(a, b"")
        assert c.get_object(a) == b""
        big = os.urandom(3 << 20)
        c.set_object(a, big)
        assert c.get_object(a) == big
        ids = [new_object_id(cid) for _ in range(50)]
        c.set_many((i, i) for i in ids)
        assert c.get_many(ids) == ids
        assert c.delete_many(ids) == [True] * 50
        assert c.stats().objects >= 1


def test_get_without_copy_is_a_view_of_the_received_frame(storage_address):
    """copy=False hands out the frame libzmq received (a memoryview, no copy); it stays
    valid after the object is overwritten and deleted, and after more traffic. copy=True (the
    default) returns bytes."""
    cid = client_id()
    with ObjectStorageClient(storage_address, timeout_s=5) as c:
        a, b = new_object_id(cid), new_object_id(cid)
        big, other = os.urandom(2 << 20), os.urandom(2 << 20)
        c.set_object(a, big)
        c.set_object(b, b"small")
        view = c.get_object(a, copy=False)
        assert type(view) is memoryview and view == big
        assert type(c.get_object(a)) is bytes
        views = c.get_many([a, b], copy=False)
        assert [type(v) for v in views] == [memoryview, memoryview] and views[1] == b"small"
        c.set_object(a, other)  # the stored object changes and goes: the views do not
        c.delete_object(a)
        for _ in range(3):
            c.set_object(b, other)
            assert c.get_object(b, copy=False) == other
        assert view == big and views[0] == big
        assert c.get_object(b, max_length=3, copy=False) == other[:3]


@pytest.fixture(scope="module")
def short_wait_storage():
    """A server whose parked gets end after 1 s."""
    yield from _storage_server("--wait-timeout-seconds", "1")


def test_missing_object_ends_at_the_server_deadline(short_wait_storage):
    cid = client_id()
    with ObjectStorageClient(short_wait_storage) as c:
        present, missing, copy = new_object_id(cid), new_object_id(cid), new_object_id(cid)
        c.set_object(present, b"here")
        start = time.monotonic()
        with pytest.raises(ObjectNotFoundError, match=f"get: object {missing.hex()} did not appear within 1s"):
            c.get_object(missing)
        waited = time.monotonic() - start
        print(f"notFound after {waited:.2f} s (server deadline 1 s)")
        assert 0.9 <= waited < 10
        with pytest.raises(ObjectNotFoundError, match=f"source object {missing.hex()} did not appear"):
            c.duplicate_object(copy, missing)
        # In a batch the first missing object raises; the replies still owed are dropped, and the
        # connection keeps matching replies to requests.
        with pytest.raises(ObjectNotFoundError, match=missing.hex()):
            c.get_many([present, missing, present])
        assert c.get_object(present) == b"here"
        assert c.stats().waiting_requests == 0


def test_fetch_deadline_without_server_answer(monkeypatch):
    """A server that never answers: the client's own deadline ends the get."""
    monkeypatch.setattr(storage_module, "FETCH_TIMEOUT_SECONDS", 0.5)
    ctx = zmq.Context()
    silent = ctx.socket(zmq.ROUTER)
    silent.setsockopt(zmq.LINGER, 0)
    port = silent.bind_to_random_port("tcp://127.0.0.1")
    try:
        with ObjectStorageClient(f"tcp://127.0.0.1:{port}", context=ctx) as c:
            oid = new_object_id(client_id())
            start = time.monotonic()
            with pytest.raises(ObjectNotFoundError, match=f"object {oid.hex()} not received within 0.5 s"):
                c.get_object(oid)
            assert time.monotonic() - start < 5
    finally:
        silent.close()
        ctx.term()
