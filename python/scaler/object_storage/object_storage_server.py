import subprocess
import threading
from typing import Optional, Sequence

from scaler.cluster._process import child_environment, find_binary
from scaler.utility.network_util import wait_until_listening


class ObjectStorageServer:
    """1.12.5's ``ObjectStorageServer().run(host, port, ...)``, running the binary's storage role.

    ``run`` blocks until the server exits (as 1.12.5's did); ``wait_until_ready`` (from another
    thread) blocks until it accepts connections. ``log_format`` is accepted and not applied: the
    binary writes its own line format.
    """

    def __init__(self) -> None:
        self._address: Optional[tuple] = None
        self._started = threading.Event()
        self._process: Optional[subprocess.Popen] = None

    def run(
        self,
        host: str,
        port: int,
        identity: str = "ObjectStorageServer",
        log_level: str = "INFO",
        log_format: str = "%(levelname)s: %(message)s",
        log_paths: Sequence[str] = ("/dev/stdout",),
    ) -> None:
        command = [find_binary(), "object_storage_server", f"tcp://{host}:{int(port)}", "-ll", str(log_level)]
        command += ["-lp", *tuple(log_paths)]
        self._address = (host, int(port))
        self._process = subprocess.Popen(command, env=child_environment(), stdin=subprocess.DEVNULL)
        self._started.set()
        try:
            self._process.wait()
        finally:
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait()

    def wait_until_ready(self, timeout_seconds: float = 15.0) -> None:
        if not self._started.wait(timeout_seconds):
            raise TimeoutError("ObjectStorageServer.run() was not called")
        host, port = self._address  # type: ignore[misc]
        wait_until_listening(host, port, lambda: self._process.poll() is None, timeout_seconds)

    def shutdown(self) -> None:
        """Stop a server that ``run`` started (ours; 1.12.5 stopped it with a signal)."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
