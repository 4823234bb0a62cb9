from typing import Optional, Tuple

from scaler.cluster._process import RoleProcess, address_string, child_environment
from scaler.config import defaults
from scaler.object_storage.object_storage_server import ObjectStorageServer  # importable from here in 1.12.5
from scaler.utility.network_util import wait_until_listening


class ObjectStorageServerProcess(RoleProcess):
    """A standalone object storage server (``scaler object_storage_server``) as a child process.

    1.12.5's parameters; ``storage_address`` is an ``ObjectStorageConfig`` or a ``tcp://IP:PORT``
    string. ``logging_config_file`` is accepted and, as by every role of the binary, not applied.
    """

    def __init__(
        self,
        storage_address,
        logging_paths: Tuple[str, ...] = defaults.DEFAULT_LOGGING_PATHS,
        logging_level: str = defaults.DEFAULT_LOGGING_LEVEL,
        logging_config_file: Optional[str] = None,
    ):
        self._address = storage_address
        self._storage_address = storage_address
        arguments = [address_string(storage_address), "-ll", logging_level]
        if logging_config_file:
            arguments += ["-lc", logging_config_file]
        arguments += ["-lp", *tuple(logging_paths)]
        super().__init__("object_storage_server", arguments, env=child_environment())

    def wait_until_ready(self, timeout_seconds: float = 15.0) -> None:
        """Block until the server accepts connections; raises if it exited or did not listen in time."""
        if self.pid is None:
            raise RuntimeError("ObjectStorageServerProcess.wait_until_ready() before start()")
        address = address_string(self._storage_address)
        host, _, port = address[len("tcp://"):].rpartition(":")
        wait_until_listening(host.strip("[]"), int(port), self.is_alive, timeout_seconds)


__all__ = ["ObjectStorageServerProcess", "ObjectStorageServer"]
