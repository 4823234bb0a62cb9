"""The Python object storage client against the Go object storage server."""

import os
import subprocess
import time

import pytest

from _scaler_binary import free_port, scaler_binary
from scaler.io import ObjectStorageClient, new_object_id, serializer_object_id, client_id
from scaler.io.ids import OBJECT_ID_LENGTH


@pytest.fixture(scope="module")
def storage_address():
    binary = scaler_binary()
    if binary is None:
        pytest.skip("no scaler binary (set SCALER_BINARY or put go on PATH)")
    address = f"tcp://127.0.0.1:{free_port()}"
    proc = subprocess.Popen([binary, "object_storage_server", address], stdout=subprocess.DEVNULL)
    time.sleep(0.2)
    yield address
    proc.terminate()
    proc.wait(10)


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
