from typing import Optional, Tuple

from scaler.cluster._process import RoleProcess, address_string, child_environment, logging_options, role_options
from scaler.cluster.object_storage_server import ObjectStorageServerProcess
from scaler.config import defaults


class SchedulerProcess(RoleProcess):
    """The scheduler role (``scaler scheduler``) as a child process, with upstream's settings.

    The parameters are 1.12.5's, in its order; ``local_address`` (ours) adds a second listening
    endpoint (an ``ipc://`` path). ``_workers`` (ours, for SchedulerClusterCombo): a Cluster whose
    workers run inside this process (``scaler combo``), connected over ``inproc://``.
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
        _workers=None,
    ):
        self._address = address
        policy = getattr(allocate_policy, "name", allocate_policy)
        arguments = [address_string(address)] + role_options(
            ("--io-threads", io_threads),
            ("-mt", max_number_of_tasks_waiting),
            ("-ct", client_timeout_seconds),
            ("-wt", worker_timeout_seconds),
            ("-ot", object_retention_seconds),
            ("-ls", load_balance_seconds),
            ("-lbt", load_balance_trigger_times),
            ("-p", "True" if protected else "False"),
            ("-ap", str(policy)),
            ("-e", event_loop),
            ("-osa", address_string(storage_address)),
            ("-ma", address_string(monitor_address)),
            ("-awu", adapter_webhook_url),
            ("--local-address", local_address),
            *logging_options(logging_paths, logging_level, logging_config_file),
        )
        if _workers is not None:
            # One process: the scheduler's options, then the cluster's (its address is replaced by
            # the scheduler's inproc:// endpoint).
            super().__init__("combo", arguments + ["--"] + list(_workers._arguments), env=child_environment())
            return
        super().__init__("scheduler", arguments, env=child_environment())



Scheduler = SchedulerProcess

__all__ = ["SchedulerProcess", "Scheduler", "ObjectStorageServerProcess"]
