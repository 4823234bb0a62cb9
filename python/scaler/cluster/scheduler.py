from typing import Optional, Tuple

from scaler.cluster._process import RoleProcess, address_string, child_environment


class SchedulerProcess(RoleProcess):
    """The scheduler role (``scaler scheduler``) as a child process, with upstream's settings."""

    def __init__(
        self,
        address,
        storage_address=None,
        monitor_address=None,
        io_threads: int = 1,
        max_number_of_tasks_waiting: int = -1,
        client_timeout_seconds: int = 60,
        worker_timeout_seconds: int = 60,
        object_retention_seconds: int = 60,
        load_balance_seconds: int = 1,
        load_balance_trigger_times: int = 2,
        protected: bool = True,
        allocate_policy="even",
        event_loop: str = "builtin",
        logging_paths: Tuple[str, ...] = ("/dev/stdout",),
        logging_config_file: Optional[str] = None,
        logging_level: str = "INFO",
        adapter_webhook_url: Optional[str] = None,
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


class ObjectStorageServerProcess(RoleProcess):
    """A standalone object storage server (``scaler object_storage_server``)."""

    def __init__(self, address, logging_paths: Tuple[str, ...] = ("/dev/stdout",), logging_level: str = "INFO"):
        self._address = address
        super().__init__(
            "object_storage_server",
            [address_string(address), "-ll", logging_level, "-lp", *tuple(logging_paths)],
            env=child_environment(),
        )


Scheduler = SchedulerProcess
