"""The DEALER end of one ZMTP 3.0 connection (NULL security) on a plain TCP or Unix socket.

Why not pyzmq: libzmq moves every message through its own I/O thread, so a client's request and
the reply each cost one more thread wake-up in the client process (about 20 us each on a small
VM, a tenth of a single task's round trip). Here the thread that sends writes the socket, and
the thread that waits for a reply reads it.

Only what a DEALER talking to one ROUTER needs is here: the greeting, the READY handshake with
our identity, data frames (short and long, MORE flag), and PONG answers to PING. A lost
connection is reported as ``ConnectionLost``; ``connect()`` makes a new one on the same file
descriptor number, so that pollers registered with ``fileno()`` keep working.

Thread use: the caller serializes ``send``, ``recv`` and ``connect`` (one lock); ``fileno()`` is
stable for the object's life.
"""

import os
import socket
import struct
from typing import List, Optional

_MORE, _LONG, _COMMAND = 0x01, 0x02, 0x04
_GREETING_SIZE = 64
_CHUNK = 65536  # bytes asked from the kernel per read of small messages
_BIG = 1 << 20  # a frame this large is read straight into its own buffer
_unpack_size = struct.Struct(">Q").unpack_from
_pack_size = struct.Struct(">Q").pack


class ZmtpError(Exception):
    """The peer does not speak ZMTP 3 with the NULL mechanism, or broke the protocol."""


class ConnectionLost(Exception):
    """The connection closed or failed; ``connect()`` may make a new one."""


def greeting() -> bytes:
    # signature (0xFF, 8 bytes of padding, 0x7F), version 3.0, mechanism, as-server, filler
    return b"\xff" + bytes(8) + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" + bytes(31)


def command(name: bytes, body: bytes) -> bytes:
    data = bytes((len(name),)) + name + body
    if len(data) > 255:
        return bytes((_COMMAND | _LONG,)) + _pack_size(len(data)) + data
    return bytes((_COMMAND, len(data))) + data


def ready(socket_type: bytes, identity: bytes) -> bytes:
    properties = []
    for name, value in ((b"Socket-Type", socket_type), (b"Identity", identity)):
        properties.append(bytes((len(name),)) + name + struct.pack(">I", len(value)) + value)
    return command(b"READY", b"".join(properties))


def parse_properties(data: bytes) -> dict:
    """The metadata of a READY command, as {name (lower case): value}."""
    properties, at = {}, 0
    while at < len(data):
        size = data[at]
        name = bytes(data[at + 1:at + 1 + size]).lower()
        at += 1 + size
        if at + 4 > len(data):
            raise ZmtpError("truncated READY property")
        (value_size,) = struct.unpack_from(">I", data, at)
        at += 4
        if at + value_size > len(data):
            raise ZmtpError("truncated READY property")
        properties[name] = bytes(data[at:at + value_size])
        at += value_size
    return properties


def frame_header(size: int, flags: int = 0) -> bytes:
    if size > 255:
        return bytes((flags | _LONG,)) + _pack_size(size)
    return bytes((flags, size))


def split_address(address: str):
    """(family, socket address) for a ``tcp://host:port`` or ``ipc://path`` address."""
    if address.startswith("ipc://"):
        return socket.AF_UNIX, address[len("ipc://"):]
    if not address.startswith("tcp://"):
        raise ValueError(f"scheduler address must be tcp://host:port or ipc://path, got {address!r}")
    rest = address[len("tcp://"):]
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"scheduler address must be tcp://host:port, got {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:  # an IPv6 address
        return socket.AF_INET6, (host, int(port))
    return socket.AF_INET, (host, int(port))


class FrameReader:
    """Splits a byte stream into ZMTP frames. Keeps the unread bytes; large frames are read
    into a buffer of their own size (no copying as they grow)."""

    __slots__ = ("_buf", "_pos", "_big", "_big_have", "_big_flags")

    def __init__(self):
        self._buf = b""
        self._pos = 0
        self._big: Optional[bytearray] = None  # a large frame being read: its body so far
        self._big_have = 0
        self._big_flags = 0

    def feed(self, data: bytes) -> None:
        if self._pos >= len(self._buf):
            self._buf, self._pos = data, 0
        else:
            self._buf = self._buf[self._pos:] + data
            self._pos = 0

    def wants_big(self) -> Optional[memoryview]:
        """Where the next bytes of a large frame go, if one is being read."""
        if self._big is None:
            return None
        return memoryview(self._big)[self._big_have:]

    def got_big(self, count: int) -> None:
        self._big_have += count

    def has_bytes(self) -> bool:
        return self._pos < len(self._buf) or self._big is not None

    def next_frame(self):
        """(flags, body) of the next whole frame, or None."""
        big = self._big
        if big is not None:
            if self._big_have < len(big):
                return None
            self._big = None
            return self._big_flags, big
        buf, pos = self._buf, self._pos
        available = len(buf) - pos
        if available < 2:
            return None
        flags = buf[pos]
        if flags & _LONG:
            if available < 9:
                return None
            (size,) = _unpack_size(buf, pos + 1)
            start = pos + 9
        else:
            size = buf[pos + 1]
            start = pos + 2
        end = start + size
        if end <= len(buf):
            self._pos = end
            return flags, buf[start:end]
        if size >= _BIG:
            # Read the rest of this frame straight into a buffer of its size.
            have = len(buf) - start
            self._big = bytearray(size)
            self._big[:have] = buf[start:]
            self._big_have = have
            self._big_flags = flags
            self._buf, self._pos = b"", 0
        return None


class ZmtpDealer:
    def __init__(self, address: str, identity: bytes, send_timeout: Optional[float] = None):
        """``send_timeout``: a send that cannot go on for this many seconds (a peer that stopped
        reading, or vanished without closing the connection) drops the connection, instead of
        blocking its thread, and whoever waits on the lock it holds, for good."""
        self.address = address
        self.identity = identity
        self._send_timeout = send_timeout
        self._family, self._target = split_address(address)
        # A socket that is never connected holds the descriptor number until the first connect.
        self._sock = socket.socket(self._family, socket.SOCK_STREAM)
        self._fd = self._sock.fileno()
        self.connected = False
        self._reader = FrameReader()
        self._frames: List = []  # frames of a multi-part message being read
        self._maybe_more = False  # bytes already read may hold a whole message
        self._queued: List[bytes] = []  # messages sent while not connected

    def fileno(self) -> int:
        return self._fd

    def connect(self, timeout: float) -> None:
        """Make a new connection and handshake, within ``timeout`` seconds; then send what was
        queued meanwhile. Raises OSError or ZmtpError when that fails."""
        fresh = socket.socket(self._family, socket.SOCK_STREAM)
        try:
            fresh.settimeout(timeout)
            fresh.connect(self._target)
            if self._family != socket.AF_UNIX:
                fresh.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            fresh.sendall(greeting() + ready(b"DEALER", self.identity))
            reader = FrameReader()
            peer = _recv_exactly(fresh, _GREETING_SIZE)
            if peer[0] != 0xFF or not peer[9] & 1:
                raise ZmtpError(f"{self.address} does not speak ZMTP")
            if peer[10] < 3 or peer[12:32].rstrip(b"\x00") != b"NULL":
                raise ZmtpError(f"{self.address} wants ZMTP {peer[10]} with mechanism "
                                f"{peer[12:32].rstrip(bytes(1))!r}; only ZMTP 3 with NULL is supported")
            while True:
                frame = reader.next_frame()
                if frame is not None:
                    break
                data = fresh.recv(_CHUNK)
                if not data:
                    raise ConnectionLost(f"{self.address} closed the connection during the handshake")
                reader.feed(data)
            flags, body = frame
            if not flags & _COMMAND or body[:6] != b"\x05READY":
                raise ZmtpError(f"{self.address} did not send READY")
            peer_type = parse_properties(body[6:]).get(b"socket-type", b"")
            if peer_type not in (b"ROUTER", b"DEALER"):
                raise ZmtpError(f"{self.address} is a {peer_type.decode(errors='replace')} socket, not a ROUTER")
            fresh.settimeout(None)
            if self._send_timeout is not None:
                seconds = max(self._send_timeout, 0.001)
                fresh.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                                 struct.pack("ll", int(seconds), int(seconds % 1 * 1e6)))
            # Same descriptor number, new connection: pollers registered with fileno() carry on.
            os.dup2(fresh.fileno(), self._fd, inheritable=False)
        finally:
            fresh.close()
        self._reader = reader
        self._frames = []
        self._maybe_more = reader.has_bytes()
        self.connected = True
        queued, self._queued = self._queued, []
        for frame in queued:
            self.send(frame)

    def send(self, frame) -> None:
        """Send one single-part message. While not connected it is queued for the next
        connection; a failed send drops the connection (ConnectionLost) and keeps the message."""
        if not self.connected:
            self._queued.append(frame)
            return
        size = len(frame)
        try:
            if size <= 255:
                self._sock.sendall(bytes((0, size)) + frame)
            elif size < 65536:
                self._sock.sendall(b"\x02" + _pack_size(size) + frame)
            else:
                self._send_parts([b"\x02" + _pack_size(size), memoryview(frame)])
        except OSError as error:
            self._lost()
            self._queued.append(frame)
            raise ConnectionLost(f"sending to {self.address} failed: {error}") from None

    def _send_parts(self, parts) -> None:
        parts = [memoryview(part).cast("B") for part in parts]
        while parts:
            sent = self._sock.sendmsg(parts)
            while parts and sent >= len(parts[0]):
                sent -= len(parts[0])
                parts.pop(0)
            if parts and sent:
                parts[0] = parts[0][sent:]

    def recv(self):
        """The next whole message (its list of frames) if one has arrived, else None. Never
        blocks. Raises ConnectionLost when the peer is gone."""
        if not self.connected:
            return None
        reader = self._reader
        while True:
            frame = reader.next_frame()
            if frame is None:
                if not self._fill():
                    self._maybe_more = False
                    return None
                continue
            flags, body = frame
            if flags & _COMMAND:
                self._on_command(body)
                continue
            self._frames.append(body)
            if not flags & _MORE:
                frames, self._frames = self._frames, []
                self._maybe_more = reader.has_bytes()
                return frames

    def has_message(self) -> bool:
        """Whether bytes already read may hold a whole message: then call recv() before
        polling the descriptor, which only says the kernel has more."""
        return self.connected and self._maybe_more

    def _fill(self) -> bool:
        """Read what the kernel has; False when it has nothing."""
        reader = self._reader
        try:
            target = reader.wants_big()
            if target is not None:
                count = self._sock.recv_into(target, len(target), socket.MSG_DONTWAIT)
                if count:
                    reader.got_big(count)
                    return True
            else:
                data = self._sock.recv(_CHUNK, socket.MSG_DONTWAIT)
                if data:
                    reader.feed(data)
                    return True
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as error:
            self._lost()
            raise ConnectionLost(f"connection to {self.address} failed: {error}") from None
        self._lost()
        raise ConnectionLost(f"{self.address} closed the connection")

    def _on_command(self, body) -> None:
        if body[:5] == b"\x04PING" and len(body) >= 7:
            try:
                self._sock.sendall(command(b"PONG", bytes(body[7:])))
            except OSError:
                pass  # the next read reports the lost connection

    def _lost(self) -> None:
        """Forget the connection, keeping the descriptor number on a fresh, unconnected socket."""
        self.connected = False
        placeholder = socket.socket(self._family, socket.SOCK_STREAM)
        try:
            os.dup2(placeholder.fileno(), self._fd, inheritable=False)
        finally:
            placeholder.close()
        self._reader = FrameReader()
        self._frames = []
        self._maybe_more = False

    def close(self) -> None:
        self.connected = False
        self._sock.close()


def _recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        more = sock.recv(count - len(data))
        if not more:
            raise ConnectionLost("the peer closed the connection during the handshake")
        data += more
    return data
