from typing import Optional, Tuple

from scaler.cluster._process import RoleProcess, address_string, child_environment
from scaler.cluster.object_storage_server import ObjectStorageServerProcess
from scaler.config import defaults


class SchedulerProcess(RoleProcess):
    """The scheduler role (``scaler scheduler``) as a child process, with upstream's settings.

    The parameters are 1.12.5's, in its order; ``local_address`` (ours) adds a second listening
    endpoint (an ``ipc://`` path).
    """

    def __init__(
        self,
        address,
        storage_address=None,
        monitor_address=None,
        adapter_webhook_url: Optional[str] = None,
        io_threads: int = defaults.DEFAULT_IO_THREADS,
        max_number_of_tasks_waiting: int = defaults.DEFAULT_MAX_NUMBER_OF_TASKS_WAITING,
        client_timeout_seconds: int = defaults.DEFAULT_CLIENT_TIMEOUT_SECONDS,
        worker_timeout_seconds: int = defaults.DEFAULT_WORKER_TIMEOUT_SECONDS,
        object_retention_seconds: int = defaults.DEFAULT_OBJECT_RETENTION_SECONDS,
        load_balance_seconds: int = defaults.DEFAULT_LOAD_BALANCE_SECONDS,
        load_balance_trigger_times: int = defaults.DEFAULT_LOAD_BALANCE_TRIGGER_TIMES,
        protected: bool = True,
        allocate_policy="even",
        event_loop: str = "builtin",
        logging_paths: Tuple[str, ...] = defaults.DEFAULT_LOGGING_PATHS,
        logging_config_file: Optional[str] = None,
        logging_level: str = defaults.DEFAULT_LOGGING_LEVEL,
        local_address: Optional[str] = None,
    ):
        self._address = address
        policy = getattr(allocate_policy, "name", allocate_policy)
        arguments = [
            address_string(address),
            "--io-threads", io_threads,
            "-mt", max_number_of_tasks_waiting,
            "-ct", client_timeout_seconds,
            "-wt", worker_timeout_seconds,
            "-ot", object_retention_seconds,
            "-ls", load_balance_seconds,
            "-lbt", load_balance_trigger_times,
            "-p", "True" if protected else "False",
            "-ap", str(policy),
            "-e", event_loop,
            "-ll", logging_level,
        ]
        if storage_address is not None:
            arguments += ["-osa", address_string(storage_address)]
        if monitor_address is not None:
            arguments += ["-ma", address_string(monitor_address)]
        if adapter_webhook_url:
            arguments += ["-awu", adapter_webhook_url]
        if local_address:
            arguments += ["--local-address", local_address]
        if logging_config_file:
            arguments += ["-lc", logging_config_file]
        arguments += ["-lp", *tuple(logging_paths)]
        super().__init__("scheduler", arguments, env=child_environment())



Scheduler = SchedulerProcess

__all__ = ["SchedulerProcess", "Scheduler", "ObjectStorageServerProcess"]
