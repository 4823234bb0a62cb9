import socket
from typing import Dict, List, Optional, Tuple

from scaler.cluster._process import RoleProcess, address_string, child_environment, logging_options, role_options


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
        worker_names = list(worker_names) if worker_names else [socket.gethostname().split(".")[0]]
        arguments = [address_string(_connect_address or address)] + role_options(
            ("-n", len(worker_names)),
            ("-wn", ",".join(worker_names)),
            ("-wtqs", per_worker_task_queue_size),
            ("-hi", heartbeat_interval_seconds),
            ("-tts", task_timeout_seconds),
            ("-ds", death_timeout_seconds),
            ("-gc", garbage_collect_interval_seconds),
            ("-tm", trim_memory_threshold_bytes),
            ("-el", event_loop),
            ("-it", worker_io_threads),
            ("-pwc", _capabilities_text(per_worker_capabilities)),
            ("--preload", preload),
            ("-osa", address_string(storage_address)),
            ("-hps", bool(hard_processor_suspend)),
            *logging_options(logging_paths, logging_level, logging_config_file),
        )
        super().__init__("cluster", arguments, env=child_environment())
