import socket
import time
from typing import Iterator

import zmq


def get_available_tcp_port(hostname: str = "127.0.0.1", consecutive: int = 1) -> int:
    """A TCP port that was free a moment ago on ``hostname``.

    With ``consecutive`` > 1 the ports after it were free too: a scheduler on port P also binds
    its object storage on P+1 and its monitor on P+2.
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((hostname, 0))
            port = sock.getsockname()[1]
        if port + consecutive - 1 <= 65535 and all(_is_free(hostname, port + i) for i in range(1, consecutive)):
            return port
    raise RuntimeError(f"no run of {consecutive} free TCP ports found on {hostname}")


def _is_free(hostname: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((hostname, port))
        except OSError:
            return False
    return True


def wait_until_listening(host: str, port: int, is_alive, timeout_seconds: float = 15.0) -> None:
    """Wait until something accepts TCP connections on host:port.

    ``is_alive()`` is checked on every try so that a server process that died at start-up (a port
    already in use, a bad option) is reported at once instead of after a client time-out.
    """
    deadline = time.monotonic() + timeout_seconds
    while True:
        if not is_alive():
            raise RuntimeError(f"the server meant to listen on {host}:{port} exited during start-up; see its log")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_seconds} seconds")
        time.sleep(0.01)


def ip_address_of(hostname: str) -> str:
    return socket.gethostbyname(hostname)


# Schedulers started by this process (SchedulerClusterCombo) that also listen on a Unix socket:
# their TCP address -> that ipc:// address. A client in the same process connects there instead,
# which costs less per message than TCP loopback (docs/performance.md).
_local_endpoints: dict = {}


def register_local_endpoint(address: str, local_address: str) -> None:
    _local_endpoints[address] = local_address


def unregister_local_endpoint(address: str) -> None:
    _local_endpoints.pop(address, None)


def local_endpoint(address: str) -> str:
    """Where a client of this process should connect to reach the scheduler at ``address``."""
    return _local_endpoints.get(address, address)


def pending_frames(sock: zmq.Socket) -> Iterator[bytes]:
    """The frames already queued on ``sock``, received without blocking until none is left."""
    while True:
        try:
            yield sock.recv(zmq.NOBLOCK)
        except zmq.Again:
            return
