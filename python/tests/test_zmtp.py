"""scaler.io.zmtp: the client's own ZMTP DEALER, against libzmq (pyzmq ROUTER sockets) on
127.0.0.1, and its frame parser on streams cut at every possible place."""

import os
import random
import socket
import struct
import threading
import time

import pytest
import zmq

from scaler.io import zmtp
from _scaler_binary import free_port


def encode_frame(body: bytes, flags: int = 0) -> bytes:
    return zmtp.frame_header(len(body), flags) + body


def read_all(reader: zmtp.FrameReader, chunks):
    """Feed ``chunks`` as a socket would deliver them; returns every (flags, body) read."""
    frames = []
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            target = reader.wants_big()
            if target is not None:
                count = min(len(target), len(view))
                target[:count] = view[:count]
                reader.got_big(count)
            else:
                reader.feed(bytes(view))
                count = len(view)
            view = view[count:]
            while True:
                frame = reader.next_frame()
                if frame is None:
                    break
                frames.append((frame[0], bytes(frame[1])))
    return frames


STREAM_FRAMES = [
    (0, b""),
    (0, b"x"),
    (zmtp._MORE, b"a" * 255),
    (0, b"b" * 256),  # the first size that needs a long header
    (zmtp._COMMAND, b"\x04PING\x00\x0aabc"),
    (0, bytes(range(256)) * 300),
    (0, os.urandom(zmtp._BIG + 17)),  # read into a buffer of its own
    (zmtp._MORE, b"c"),
    (0, b"d"),
]


@pytest.mark.parametrize("chunk", [1, 2, 7, 9, 100, 4096, 65536, 1 << 22])
def test_frame_reader_any_cut(chunk):
    stream = b"".join(encode_frame(body, flags) for flags, body in STREAM_FRAMES)
    chunks = [stream[at:at + chunk] for at in range(0, len(stream), chunk)]
    frames = read_all(zmtp.FrameReader(), chunks)
    assert [(flags & ~zmtp._LONG, body) for flags, body in frames] == STREAM_FRAMES


def test_frame_reader_random_cuts():
    rng = random.Random(7)
    stream = b"".join(encode_frame(body, flags) for flags, body in STREAM_FRAMES)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(stream)), 40))
        chunks = [stream[a:b] for a, b in zip([0] + cuts, cuts + [len(stream)])]
        frames = read_all(zmtp.FrameReader(), chunks)
        assert [(flags & ~zmtp._LONG, body) for flags, body in frames] == STREAM_FRAMES


def test_bad_addresses():
    for address in ("http://127.0.0.1:1", "tcp://127.0.0.1", "tcp://:5", "inproc://x", "tcp://h:port"):
        with pytest.raises(ValueError, match="address"):
            zmtp.ZmtpDealer(address, b"me")
    assert zmtp.split_address("tcp://[::1]:5") == (socket.AF_INET6, ("::1", 5))
    assert zmtp.split_address("tcp://localhost:5") == (socket.AF_INET, ("localhost", 5))
    assert zmtp.split_address("ipc:///tmp/x") == (socket.AF_UNIX, "/tmp/x")


class Router:
    """A libzmq ROUTER on 127.0.0.1 (pyzmq), driven from the test thread."""

    def __init__(self, port=None, options=()):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        # A ROUTER silently drops what it cannot queue: at the default send limit (1,000
        # messages) a burst the peer has not read yet loses messages (the old flake of
        # test_round_trips_with_libzmq). No limit, and a send to an unknown peer raises.
        self.socket.setsockopt(zmq.SNDHWM, 0)
        self.socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
        for option, value in options:
            self.socket.setsockopt(option, value)
        self.port = port or free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.socket.bind(self.address)

    def recv(self, timeout_ms=5000):
        assert self.socket.poll(timeout_ms), "nothing reached the ROUTER"
        return self.socket.recv_multipart()

    def close(self):
        self.socket.close(linger=0)
        self.context.term()


def wait_recv(dealer: zmtp.ZmtpDealer, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = dealer.recv()
        if message is not None:
            return message
        time.sleep(0.001)
    raise AssertionError("nothing reached the DEALER")


@pytest.fixture
def router():
    r = Router()
    yield r
    r.close()


def test_round_trips_with_libzmq(router):
    dealer = zmtp.ZmtpDealer(router.address, b"client-7")
    try:
        dealer.connect(2)
        for size in (0, 1, 255, 256, 65535, 65536, 3 << 20):
            body = os.urandom(size)
            dealer.send(body)
            identity, got = router.recv()
            assert identity == b"client-7" and got == body
            router.socket.send_multipart([identity, body[::-1]])
            assert wait_recv(dealer) == [body[::-1]]
        # A multi-part message comes back as its parts; many small ones in one read all arrive.
        router.socket.send_multipart([b"client-7", b"one", b"two"])
        assert wait_recv(dealer) == [b"one", b"two"]
        for i in range(1000):
            router.socket.send_multipart([b"client-7", b"%d" % i])
        got = [wait_recv(dealer)[0] for _ in range(1000)]
        assert got == [b"%d" % i for i in range(1000)]
        assert dealer.recv() is None and not dealer.has_message()
    finally:
        dealer.close()


def test_a_burst_beyond_the_kernel_buffers_arrives_whole(router):
    """More than the kernel's socket buffers hold while the DEALER does not read: the rest waits
    in the ROUTER's queue, which must not drop (with libzmq's default limit of 1,000 it did)."""
    dealer = zmtp.ZmtpDealer(router.address, b"burst")
    try:
        dealer.connect(2)
        dealer.send(b"hello")
        assert router.recv() == [b"burst", b"hello"]
        payload = b"x" * 8192
        count = 6000  # 48 MiB: more than tcp_rmem's and tcp_wmem's maxima together here
        for i in range(count):
            router.socket.send_multipart([b"burst", b"%d" % i, payload])
        got = [wait_recv(dealer, timeout=30)[0] for _ in range(count)]
        assert got == [b"%d" % i for i in range(count)]
    finally:
        dealer.close()


def test_queued_until_the_router_binds():
    port = free_port()
    dealer = zmtp.ZmtpDealer(f"tcp://127.0.0.1:{port}", b"early")
    fd = dealer.fileno()
    with pytest.raises(ConnectionRefusedError):
        dealer.connect(1)
    dealer.send(b"sent before anyone listened")
    assert dealer.recv() is None
    router = Router(port)
    try:
        dealer.connect(2)
        assert dealer.fileno() == fd
        assert router.recv() == [b"early", b"sent before anyone listened"]
    finally:
        dealer.close()
        router.close()


def test_lost_connection_then_a_new_router(router):
    dealer = zmtp.ZmtpDealer(router.address, b"again")
    fd = dealer.fileno()
    try:
        dealer.connect(2)
        dealer.send(b"hello")
        assert router.recv() == [b"again", b"hello"]
        port = router.port
        router.close()
        with pytest.raises(zmtp.ConnectionLost):
            wait_recv(dealer)
        assert not dealer.connected and dealer.fileno() == fd
        dealer.send(b"while down")  # kept for the next connection
        second = Router(port)
        try:
            dealer.connect(2)
            assert dealer.fileno() == fd
            assert second.recv() == [b"again", b"while down"]
            second.socket.send_multipart([b"again", b"back"])
            assert wait_recv(dealer) == [b"back"]
        finally:
            second.close()
    finally:
        dealer.close()


def test_answers_libzmq_heartbeats():
    # The ROUTER drops a peer that does not answer its PINGs within the timeout.
    router = Router(options=[(zmq.HEARTBEAT_IVL, 50), (zmq.HEARTBEAT_TIMEOUT, 200)])
    dealer = zmtp.ZmtpDealer(router.address, b"alive")
    try:
        dealer.connect(2)
        dealer.send(b"first")
        assert router.recv() == [b"alive", b"first"]
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            assert dealer.recv() is None  # reads (and answers) the PINGs
            time.sleep(0.01)
        router.socket.send_multipart([b"alive", b"still connected"])
        assert wait_recv(dealer) == [b"still connected"]
    finally:
        dealer.close()
        router.close()


def serve_once(reply: bytes):
    """A TCP server that answers any connection with ``reply`` and closes it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def run():
        conn, _ = server.accept()
        conn.sendall(reply)
        conn.recv(1024)
        conn.close()
        server.close()

    threading.Thread(target=run, daemon=True).start()
    return server.getsockname()[1]


def test_refuses_a_peer_that_is_not_zmtp():
    port = serve_once(b"HTTP/1.1 400 Bad Request\r\n\r\n" + bytes(64))
    dealer = zmtp.ZmtpDealer(f"tcp://127.0.0.1:{port}", b"x")
    with pytest.raises(zmtp.ZmtpError, match="does not speak ZMTP"):
        dealer.connect(2)
    assert not dealer.connected
    dealer.close()


def test_refuses_a_secured_peer():
    greeting = b"\xff" + bytes(8) + b"\x7f\x03\x00" + b"CURVE".ljust(20, b"\x00") + bytes(32)
    port = serve_once(greeting)
    dealer = zmtp.ZmtpDealer(f"tcp://127.0.0.1:{port}", b"x")
    with pytest.raises(zmtp.ZmtpError, match="CURVE"):
        dealer.connect(2)
    dealer.close()


def test_ready_properties_parse():
    command = zmtp.ready(b"DEALER", b"me")
    flags, size = command[0], command[1]
    assert flags == zmtp._COMMAND and size == len(command) - 2
    assert command[2:8] == b"\x05READY"
    assert zmtp.parse_properties(command[8:]) == {b"socket-type": b"DEALER", b"identity": b"me"}
    with pytest.raises(zmtp.ZmtpError):
        zmtp.parse_properties(b"\x04Name" + struct.pack(">I", 10) + b"short")


def test_send_to_a_peer_that_stops_reading_times_out():
    """A peer that completes the handshake and then never reads: once the kernel's buffers are
    full, a send gives up after send_timeout instead of blocking for good."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    release = threading.Event()

    def run():
        conn, _ = server.accept()
        conn.sendall(zmtp.greeting() + zmtp.ready(b"ROUTER", b""))
        release.wait(30)  # never reads
        conn.close()
        server.close()

    threading.Thread(target=run, daemon=True).start()
    dealer = zmtp.ZmtpDealer(f"tcp://127.0.0.1:{server.getsockname()[1]}", b"x", send_timeout=0.5)
    try:
        dealer.connect(2)
        start = time.monotonic()
        with pytest.raises(zmtp.ConnectionLost):
            for _ in range(1000):  # 1000 x 1 MiB: far more than the kernel buffers hold
                dealer.send(bytes(1 << 20))
        assert time.monotonic() - start < 10
        assert not dealer.connected
    finally:
        release.set()
        dealer.close()

