"""A synchronous object storage client (docs/protocol.md §9, core/protocol/storage.go).

A request is a DEALER message ``[ObjectRequest frame]``, plus one payload frame for
set. A reply is ``[ObjectResponse frame]`` plus one payload frame for a getOK whose
``payload_length`` is non-zero. Every request carries a request id that the reply
echoes, so requests can be pipelined: :meth:`ObjectStorageClient.set_many` sends
all requests first and then collects the replies.

The client is not thread-safe: use one per thread.
"""

import os
import threading
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import zmq

from scaler.protocol.messages import (
    DecodeError,
    ObjectRequest,
    ObjectRequestType,
    ObjectResponse,
    ObjectResponseType,
    decode,
    encode,
)


class ObjectStorageError(RuntimeError):
    """The server answered with an error, or the connection failed."""


def address_string(host: str, port: int) -> str:
    """``tcp://host:port``, bracketing IPv6 hosts."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"tcp://{host}:{port}"


class ObjectStorageClient:
    def __init__(self, address: str, context: Optional[zmq.Context] = None, timeout_s: Optional[float] = None):
        """Connect to the object storage server at ``address`` (``tcp://host:port``).

        ``timeout_s`` bounds every wait for a reply (None: wait forever, as a get of
        an object that does not exist yet must).
        """
        self._address = address
        self._own_context = context is None
        self._context = context or zmq.Context()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.IDENTITY, f"storage-client|{os.getpid()}|{os.urandom(8).hex()}".encode())
        self._socket.setsockopt(zmq.SNDHWM, 0)
        self._socket.setsockopt(zmq.RCVHWM, 0)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.connect(address)
        self._timeout_ms = None if timeout_s is None else int(timeout_s * 1000)
        self._next_id = 0
        self._early: Dict[int, Tuple[ObjectResponse, Optional[bytes]]] = {}
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return self._address

    def close(self) -> None:
        self._socket.close(linger=0)
        if self._own_context:
            self._context.term()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # Single requests.

    def set_object(self, object_id: bytes, payload) -> None:
        self._wait(self._send(ObjectRequestType.Set, object_id, payload=payload), ObjectRequestType.Set)

    def get_object(self, object_id: bytes, max_length: int = 0) -> bytes:
        rid = self._send(ObjectRequestType.Get, object_id, max_length=max_length)
        return self._wait(rid, ObjectRequestType.Get)

    def delete_object(self, object_id: bytes) -> bool:
        """Delete ``object_id``; returns whether it existed."""
        return self._wait(self._send(ObjectRequestType.Delete, object_id), ObjectRequestType.Delete)

    def duplicate_object(self, new_id: bytes, source_id: bytes) -> None:
        rid = self._send(ObjectRequestType.Duplicate, new_id, source_id=source_id)
        self._wait(rid, ObjectRequestType.Duplicate)

    def stats(self) -> ObjectResponse:
        return self._wait(self._send(ObjectRequestType.Stats, b""), ObjectRequestType.Stats)

    def set_object_nowait(self, object_id: bytes, payload) -> int:
        """Send a set without waiting for its reply; returns the request id for :meth:`wait_set`."""
        return self._send(ObjectRequestType.Set, object_id, payload=payload)

    def wait_set(self, request_id: int) -> None:
        self._wait(request_id, ObjectRequestType.Set)

    def set_done(self, request_id: int) -> bool:
        """Without blocking: True if the reply to set ``request_id`` has arrived (raising
        ObjectStorageError if it was an error), False if it is still outstanding."""
        if request_id not in self._early:
            self._drain()
            if request_id not in self._early:
                return False
        self._wait(request_id, ObjectRequestType.Set)
        return True

    def _drain(self) -> None:
        while True:
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            try:
                resp = decode(frames[0].bytes)
            except DecodeError:
                continue
            if isinstance(resp, ObjectResponse):
                self._early[resp.request_id] = (resp, frames[1].bytes if len(frames) > 1 else None)

    # Pipelined requests.

    def set_many(self, items: Iterable[Tuple[bytes, bytes]]) -> None:
        ids = [self._send(ObjectRequestType.Set, oid, payload=data) for oid, data in items]
        for rid in ids:
            self._wait(rid, ObjectRequestType.Set)

    def get_many(self, object_ids: Sequence[bytes]) -> List[bytes]:
        ids = [self._send(ObjectRequestType.Get, oid) for oid in object_ids]
        return [self._wait(rid, ObjectRequestType.Get) for rid in ids]

    def delete_many(self, object_ids: Sequence[bytes]) -> List[bool]:
        ids = [self._send(ObjectRequestType.Delete, oid) for oid in object_ids]
        return [self._wait(rid, ObjectRequestType.Delete) for rid in ids]

    # Internals.

    def _send(self, typ, object_id: bytes, payload=None, source_id: bytes = b"", max_length: int = 0) -> int:
        with self._lock:
            self._next_id += 1
            rid = self._next_id
        if typ == ObjectRequestType.Set:
            payload = b"" if payload is None else payload
            req = ObjectRequest(
                request_id=rid, type=typ, object_id=object_id, payload_length=len(memoryview(payload).cast("B"))
            )
            self._socket.send_multipart([encode(req), payload], copy=len(payload) < 65536)
        else:
            req = ObjectRequest(request_id=rid, type=typ, object_id=object_id, source_id=source_id, max_length=max_length)
            self._socket.send(encode(req))
        return rid

    def _recv(self, rid: int):
        if rid in self._early:
            return self._early.pop(rid)
        while True:
            if self._timeout_ms is not None and not self._socket.poll(self._timeout_ms):
                raise ObjectStorageError(f"object storage {self._address}: no reply within {self._timeout_ms} ms")
            frames = self._socket.recv_multipart(copy=False)
            try:
                resp = decode(frames[0].bytes)
            except DecodeError:
                continue
            if not isinstance(resp, ObjectResponse):
                continue
            payload = frames[1].bytes if len(frames) > 1 else None
            if resp.request_id == rid:
                return resp, payload
            self._early[resp.request_id] = (resp, payload)

    def _wait(self, rid: int, typ):
        resp, payload = self._recv(rid)
        if resp.type == ObjectResponseType.Error:
            raise ObjectStorageError(f"object storage {typ.name.lower()}: {resp.error}")
        if typ == ObjectRequestType.Delete:
            if resp.type == ObjectResponseType.DelOK:
                return True
            if resp.type == ObjectResponseType.DelNotExists:
                return False
        elif typ == ObjectRequestType.Set and resp.type == ObjectResponseType.SetOK:
            return None
        elif typ == ObjectRequestType.Duplicate and resp.type == ObjectResponseType.DuplicateOK:
            return None
        elif typ == ObjectRequestType.Stats and resp.type == ObjectResponseType.StatsOK:
            return resp
        elif typ == ObjectRequestType.Get and resp.type == ObjectResponseType.GetOK:
            if payload is None:
                if resp.payload_length:
                    raise ObjectStorageError("object storage get: reply without its payload frame")
                return b""
            return payload
        raise ObjectStorageError(f"object storage: unexpected reply type {resp.type} to {typ.name.lower()}")
