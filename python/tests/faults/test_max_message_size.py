"""A peer that sends a frame over the configured max_message_size is disconnected (ZMQ_MAXMSGSIZE),
on the scheduler's socket and on the object storage server's; everybody else is served on.

The peer here speaks ZMTP on a plain socket (scaler.io.zmtp), so the oversized frame is announced
for real: libzmq reads its length and closes the connection before reading the payload.
"""

import struct
import time

from scaler import protocol as p
from scaler.io.storage import ObjectStorageClient
from scaler.io.zmtp import ConnectionLost, ZmtpDealer

from .harness import wait_until

MB = 1 << 20


def trivial(x):
    return x


def closed_after_oversized(address, identity, first=None, reply_expected=False):
    """Connect, optionally send ``first`` (and wait for a reply), then announce a 2 MiB frame:
    returns the seconds until the peer closed the connection."""
    peer = ZmtpDealer(address, identity)
    peer.connect(10)
    try:
        if first is not None:
            peer.send(first)
            if reply_expected:
                wait_until(peer.recv, 10, "a reply before the oversized frame")
        t0 = time.monotonic()
        peer._sock.sendall(b"\x02" + struct.pack(">Q", 2 * MB) + b"x" * 4096)  # LONG frame, 2 MiB announced

        def gone():
            try:
                while peer.recv() is not None:
                    pass
            except ConnectionLost:
                return True
            return False

        wait_until(gone, 10, "the connection to be closed", interval=0.1)
        return time.monotonic() - t0
    finally:
        peer.close()


def test_scheduler_disconnects_oversized_sender(stack):
    sched = stack.start_scheduler("--max-message-size", "1M")
    stack.start_cluster(1)
    took = closed_after_oversized(stack.address, b"1|Client|oversized", p.encode(p.ClientHeartbeat()), True)
    with stack.client(timeout_seconds=60) as client:
        assert client.map(trivial, [(i,) for i in range(100)]) == list(range(100))
    print(f"\nscheduler --max-message-size 1M: a 2 MiB frame closed the connection in {took:.2f}s; "
          f"other clients served")
    assert sched.running()


def test_storage_disconnects_oversized_sender(stack):
    storage = stack.start_storage("--max-message-size", "1M")
    took = closed_after_oversized(stack.storage_address, b"storage-client|oversized")
    client = ObjectStorageClient(stack.storage_address, timeout_s=10)
    try:
        client.set_object(b"o" * 32, b"v" * (MB // 2))  # under the limit: stored
        assert client.get_object(b"o" * 32) == b"v" * (MB // 2)
    finally:
        client.close()
    print(f"\nobject_storage_server --max-message-size 1M: a 2 MiB frame closed the connection in {took:.2f}s; "
          f"a 512 KiB object is stored")
    assert storage.running()


def inc(x):
    return x + 1


def test_client_whose_graph_is_over_the_bound_is_told_why(stack):
    """A client that sends a message over the scheduler's bound loses its connection (libzmq closes
    it, with no answer): the error it raises names the message's size and the bound to raise."""
    stack.start_scheduler("--max-message-size", "1M")
    stack.start_cluster(1)
    graph = {"n0": 0}
    for i in range(1, 10000):  # one GraphTask frame of about 2.3 MiB
        graph[f"n{i}"] = (inc, f"n{i - 1}")
    with stack.client(timeout_seconds=60) as client:
        assert client.map(trivial, [(i,) for i in range(10)]) == list(range(10))  # small messages pass
        try:
            client.get(graph, keys=["n9999"])
        except Exception as error:  # noqa: BLE001 - the type and the text are both checked
            text = str(error)
            assert type(error).__name__ == "SchedulerLostError", repr(error)
        else:
            raise AssertionError("a graph over --max-message-size 1M completed")
    assert "lost the connection to the scheduler" in text, text
    assert "MiB" in text and "max_message_size" in text and "--max-message-size" in text, text
    print(f"\n{text}")
