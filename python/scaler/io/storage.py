"""A synchronous object storage client (docs/protocol.md §9, core/protocol/storage.go).

A request is a DEALER message ``[ObjectRequest frame]``, plus one payload frame for
set. A reply is ``[ObjectResponse frame]`` plus one payload frame for a getOK whose
``payload_length`` is non-zero. Every request carries a request id that the reply
echoes, so requests can be pipelined: :meth:`ObjectStorageClient.set_many` sends
all requests first and then collects the replies.

A get of an object that does not exist yet waits on the server until some client sets it, at most
the server's wait deadline (60 s by default), then it is answered notFound. The client bounds the
wait too (``FETCH_TIMEOUT_SECONDS``), for a server that never answers. Either way the get raises
:class:`scaler.utility.exceptions.ObjectNotFoundError` naming the object and the deadline.

The client is not thread-safe: use one per thread.
"""

import os
import threading
import time
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import zmq

from scaler.protocol import wire
from scaler.protocol.messages import (
    DecodeError,
    ObjectRequest,
    ObjectRequestType,
    ObjectResponse,
    ObjectResponseType,
)
from scaler.utility.exceptions import ObjectNotFoundError, ObjectStorageException

# How long a get waits for its reply before giving up on its own. Object storage answers a get of
# an object that never appears "not found" at its wait deadline (60 s by default, see
# docs/protocol.md §9.5); this bound is twice that, so it only ends a wait the server never answers.
# Read at each get, so a test (or a program) can lower it.
FETCH_TIMEOUT_SECONDS = 120.0


class ObjectStorageError(ObjectStorageException, RuntimeError):
    """The server answered with an error, or the connection failed.

    An ObjectStorageException (what the client raises for storage failures), so one ``except``
    covers both; still a RuntimeError, as before."""


def address_string(host: str, port: int) -> str:
    """``tcp://host:port``, bracketing IPv6 hosts."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"tcp://{host}:{port}"


class ObjectStorageClient:
    def __init__(self, address: str, context: Optional[zmq.Context] = None, timeout_s: Optional[float] = None):
        """Connect to the object storage server at ``address`` (``tcp://host:port``).

        ``timeout_s`` bounds every wait for a reply (None: no bound but, for gets,
        ``FETCH_TIMEOUT_SECONDS``).
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
        self._early: Dict[int, Tuple[dict, Optional[zmq.Frame]]] = {}  # payload frames not yet copied
        self._abandoned: set = set()  # gets given up on: their late replies are dropped
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

    def get_object(self, object_id: bytes, max_length: int = 0, copy: bool = True):
        """The content of ``object_id``: ``bytes``, or with ``copy=False`` a memoryview of
        the frame it was received in (no copy; the frame lives as long as the view)."""
        rid = self._send(ObjectRequestType.Get, object_id, max_length=max_length)
        return self._wait_get(rid, object_id, self._get_deadline(), copy)

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

    def collect_replies(self) -> None:
        """Read, without blocking, every reply that has arrived (for :meth:`has_reply`)."""
        self._drain()

    def has_reply(self, request_id: int) -> bool:
        """Whether the reply to ``request_id`` was collected and not yet consumed."""
        return request_id in self._early

    def _drain(self) -> None:
        while True:
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            body = _decode_response(frames[0].buffer)
            if body is not None:
                self._keep(body, frames[1] if len(frames) > 1 else None)

    # Pipelined requests.

    def set_many(self, items: Iterable[Tuple[bytes, bytes]]) -> None:
        ids = [self._send(ObjectRequestType.Set, oid, payload=data) for oid, data in items]
        for rid in ids:
            self._wait(rid, ObjectRequestType.Set)

    def get_many(self, object_ids: Sequence[bytes], copy: bool = True) -> list:
        """The contents of ``object_ids``, fetched pipelined; all of them within one deadline. On
        the first failure the other replies still owed are dropped when they come. ``copy`` as
        for :meth:`get_object`."""
        ids = [self._send(ObjectRequestType.Get, oid) for oid in object_ids]
        deadline = self._get_deadline()
        out = []
        try:
            for rid, oid in zip(ids, object_ids):
                out.append(self._wait_get(rid, oid, deadline, copy))
        except BaseException:
            for rid in ids[len(out) + 1:]:
                self._abandon(rid)
            raise
        return out

    def delete_many(self, object_ids: Sequence[bytes]) -> List[bool]:
        ids = [self._send(ObjectRequestType.Delete, oid) for oid in object_ids]
        return [self._wait(rid, ObjectRequestType.Delete) for rid in ids]

    # Internals.

    def _send(self, typ, object_id: bytes, payload=None, source_id: bytes = b"", max_length: int = 0) -> int:
        # The header is packed from a dict (same bytes as scaler.protocol.encode(ObjectRequest(...)),
        # field order as docs/protocol.md §9.3): the message classes cost tens of microseconds.
        with self._lock:
            self._next_id += 1
            rid = self._next_id
        if typ == ObjectRequestType.Set:
            payload = b"" if payload is None else payload
            length = len(payload) if isinstance(payload, bytes) else len(memoryview(payload).cast("B"))
            header = wire.encode(
                wire.OBJECT_REQUEST,
                {"request_id": rid, "type": 0, "object_id": object_id, "source_id": b"", "max_length": 0,
                 "payload_length": length}
            )
            self._socket.send_multipart([header, payload], copy=length < 65536)
        else:
            header = wire.encode(
                wire.OBJECT_REQUEST,
                {"request_id": rid, "type": int(typ), "object_id": object_id, "source_id": source_id,
                 "max_length": max_length, "payload_length": 0}
            )
            self._socket.send(header)
        return rid

    def _get_deadline(self) -> Tuple[float, float]:
        """(monotonic deadline, seconds) for the gets sent now."""
        seconds = FETCH_TIMEOUT_SECONDS
        if self._timeout_ms is not None:
            seconds = min(seconds, self._timeout_ms / 1000)
        return time.monotonic() + seconds, seconds

    def _wait_get(self, rid: int, object_id: bytes, deadline: Tuple[float, float], copy: bool = True):
        try:
            payload = self._wait(rid, ObjectRequestType.Get, deadline[0])
            # The frame as received: bytes copies it (as pyzmq's recv with copy=True would),
            # buffer is a view of libzmq's memory.
            return payload if type(payload) is bytes else payload.bytes if copy else payload.buffer
        except TimeoutError:
            self._abandon(rid)
            raise ObjectNotFoundError(
                f"object storage {self._address}: object {object_id.hex()} not received within {deadline[1]:g} s"
            ) from None

    def _abandon(self, rid: int) -> None:
        if self._early.pop(rid, None) is None:
            self._abandoned.add(rid)

    def _keep(self, body: dict, payload) -> None:
        rid = body.get("request_id", -1)
        if rid in self._abandoned:
            self._abandoned.discard(rid)
            return
        self._early[rid] = (body, payload)

    def _recv(self, rid: int, deadline: Optional[float] = None):
        if rid in self._early:
            return self._early.pop(rid)
        while True:
            if deadline is not None:
                left_ms = max(0, int((deadline - time.monotonic()) * 1000))
                if not self._socket.poll(left_ms):
                    raise TimeoutError
            elif self._timeout_ms is not None and not self._socket.poll(self._timeout_ms):
                raise ObjectStorageError(f"object storage {self._address}: no reply within {self._timeout_ms} ms")
            frames = self._socket.recv_multipart(copy=False)
            body = _decode_response(frames[0].buffer)
            if body is None:
                continue
            payload = frames[1] if len(frames) > 1 else None  # a zmq.Frame, not yet copied
            if body.get("request_id") == rid:
                return body, payload
            self._keep(body, payload)

    def _wait(self, rid: int, typ, deadline: Optional[float] = None):
        resp, payload = self._recv(rid, deadline)
        rtype = resp.get("type")
        if rtype == ObjectResponseType.Error:
            raise ObjectStorageError(f"object storage {typ.name.lower()}: {resp.get('error', '')}")
        if rtype == ObjectResponseType.NotFound and typ in (ObjectRequestType.Get, ObjectRequestType.Duplicate):
            raise ObjectNotFoundError(f"object storage {self._address}: {resp.get('error', '')}")
        if typ == ObjectRequestType.Delete:
            if rtype == ObjectResponseType.DelOK:
                return True
            if rtype == ObjectResponseType.DelNotExists:
                return False
        elif typ == ObjectRequestType.Set and rtype == ObjectResponseType.SetOK:
            return None
        elif typ == ObjectRequestType.Duplicate and rtype == ObjectResponseType.DuplicateOK:
            return None
        elif typ == ObjectRequestType.Stats and rtype == ObjectResponseType.StatsOK:
            try:
                return ObjectResponse.from_dict(resp)
            except DecodeError as exc:
                raise ObjectStorageError(f"object storage stats: malformed reply: {exc}") from None
        elif typ == ObjectRequestType.Get and rtype == ObjectResponseType.GetOK:
            if payload is None:
                if resp.get("payload_length"):
                    raise ObjectStorageError("object storage get: reply without its payload frame")
                return b""
            return payload
        raise ObjectStorageError(f"object storage: unexpected reply type {rtype} to {typ.name.lower()}")


def _decode_response(frame) -> Optional[dict]:
    """The body of an ObjectResponse frame, or None if it is not one (dropped)."""
    try:
        kind, body = wire.decode(frame)
    except Exception:
        return None
    if kind != wire.OBJECT_RESPONSE or not isinstance(body.get("request_id", -1), int):
        return None
    return body
