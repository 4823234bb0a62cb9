"""Identifiers, as in docs/protocol.md §4."""

import hashlib
import os
import socket
import uuid
from typing import Optional

TASK_ID_LENGTH = 16
OBJECT_ID_LENGTH = 32

_SERIALIZER_SUFFIX = hashlib.md5(b"serializer").digest()


def client_id(name: Optional[str] = None) -> bytes:
    """``<pid>|Client|<32 hex>`` (or ``<pid>|Client|<name>`` when a name is given)."""
    return f"{os.getpid()}|Client|{name or uuid.uuid4().hex}".encode()


def worker_id(name: Optional[str] = None) -> bytes:
    """``<pid>|Worker|<name>|<32 hex>``; name defaults to the short host name."""
    name = name or socket.gethostname().split(".")[0]
    return f"{os.getpid()}|Worker|{name}|{uuid.uuid4().hex}".encode()


def new_task_id() -> bytes:
    return uuid.uuid4().bytes


def owner_prefix(owner: bytes) -> bytes:
    """The first 16 bytes of every object id owned by ``owner``."""
    return hashlib.md5(owner).digest()


def new_object_id(owner: bytes) -> bytes:
    """A fresh 32-byte object id owned by the client ``owner``."""
    return hashlib.md5(owner).digest() + os.urandom(16)


def serializer_object_id(owner: bytes) -> bytes:
    """The id under which the client ``owner`` stores its cloudpickled serializer."""
    return hashlib.md5(owner).digest() + _SERIALIZER_SUFFIX
