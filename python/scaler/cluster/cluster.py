import socket
from typing import Dict, List, Optional, Tuple

from scaler.cluster._process import RoleProcess, address_string, child_environment


def _capabilities_text(capabilities: Optional[Dict[str, int]]) -> str:
    parts = []
    for name, value in (capabilities or {}).items():
        parts.append(name if value is None or int(value) < 0 else f"{name}={int(value)}")
    return ",".join(parts)


class Cluster(RoleProcess):
    """N workers (``scaler cluster``) connected to a scheduler, as a child process.

    Takes upstream's keyword arguments; ``len(worker_names)`` workers are started. Processors get
    the caller's ``sys.path`` and working directory, so functions pickled by reference import.
    """

    def __init__(
        self,
        address,
        storage_address=None,
        preload: Optional[str] = None,
        worker_io_threads: int = 1,
        worker_names: Optional[List[str]] = None,
        per_worker_capabilities: Optional[Dict[str, int]] = None,
        per_worker_task_queue_size: int = 1000,
        heartbeat_interval_seconds: int = 2,
        task_timeout_seconds: int = 0,
        death_timeout_seconds: int = 300,
        garbage_collect_interval_seconds: int = 30,
        trim_memory_threshold_bytes: int = 1024 * 1024 * 1024,
        hard_processor_suspend: bool = False,
        event_loop: str = "builtin",
        logging_paths: Tuple[str, ...] = ("/dev/stdout",),
        logging_config_file: Optional[str] = None,
        logging_level: str = "INFO",
        _connect_address: Optional[str] = None,
    ):
        # _connect_address (not an upstream keyword): where the workers connect when it is not
        # ``address``; SchedulerClusterCombo passes its scheduler's local ipc:// endpoint.
        self._address = address
        self._storage_address = storage_address
        self._preload = preload
        self._worker_io_threads = worker_io_threads
        self._worker_names = list(worker_names) if worker_names else [socket.gethostname().split(".")[0]]
        self._per_worker_capabilities = dict(per_worker_capabilities or {})
        self._per_worker_task_queue_size = per_worker_task_queue_size
        self._heartbeat_interval_seconds = heartbeat_interval_seconds
        self._task_timeout_seconds = task_timeout_seconds
        self._death_timeout_seconds = death_timeout_seconds
        self._garbage_collect_interval_seconds = garbage_collect_interval_seconds
        self._trim_memory_threshold_bytes = trim_memory_threshold_bytes
        self._hard_processor_suspend = hard_processor_suspend
        self._event_loop = event_loop
        self._logging_paths = tuple(logging_paths)
        self._logging_config_file = logging_config_file
        self._logging_level = logging_level

        arguments = [
            address_string(_connect_address or address),
            "-n", len(self._worker_names),
            "-wn", ",".join(self._worker_names),
            "-wtqs", per_worker_task_queue_size,
            "-hi", heartbeat_interval_seconds,
            "-tts", task_timeout_seconds,
            "-ds", death_timeout_seconds,
            "-gc", garbage_collect_interval_seconds,
            "-tm", trim_memory_threshold_bytes,
            "-el", event_loop,
            "-it", worker_io_threads,
            "-ll", logging_level,
        ]
        if self._per_worker_capabilities:
            arguments += ["-pwc", _capabilities_text(self._per_worker_capabilities)]
        if preload:
            arguments += ["--preload", preload]
        if storage_address is not None:
            arguments += ["-osa", address_string(storage_address)]
        if hard_processor_suspend:
            arguments += ["-hps"]
        if logging_config_file:
            arguments += ["-lc", logging_config_file]
        arguments += ["-lp", *self._logging_paths]
        super().__init__("cluster", arguments, env=child_environment())
