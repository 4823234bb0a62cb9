from typing import Optional

from scaler.config import defaults
from scaler.config.section._checks import check_logging_level, check_positive, check_url
from scaler.config.section._fields import section
from scaler.config.types.object_storage_server import ObjectStorageConfig
from scaler.config.types.zmq import ZMQConfig
from scaler.scheduler.allocate_policy.allocate_policy import AllocatePolicy


@section(
    "scheduler_address object_storage_address monitor_address adapter_webhook_url protected "
    "allocate_policy event_loop io_threads max_number_of_tasks_waiting client_timeout_seconds "
    "worker_timeout_seconds object_retention_seconds load_balance_seconds load_balance_trigger_times "
    "logging_paths logging_config_file logging_level"
)
class SchedulerConfig:
    """The ``[scheduler]`` section (``scaler_scheduler``)."""

    object_storage_address: Optional[ObjectStorageConfig] = None
    monitor_address: Optional[ZMQConfig] = None
    adapter_webhook_url: Optional[str] = None
    protected: bool = True
    allocate_policy: AllocatePolicy = AllocatePolicy.even
    max_number_of_tasks_waiting: int = defaults.DEFAULT_MAX_NUMBER_OF_TASKS_WAITING
    client_timeout_seconds: int = defaults.DEFAULT_CLIENT_TIMEOUT_SECONDS
    worker_timeout_seconds: int = defaults.DEFAULT_WORKER_TIMEOUT_SECONDS
    object_retention_seconds: int = defaults.DEFAULT_OBJECT_RETENTION_SECONDS
    load_balance_seconds: int = defaults.DEFAULT_LOAD_BALANCE_SECONDS
    load_balance_trigger_times: int = defaults.DEFAULT_LOAD_BALANCE_TRIGGER_TIMES

    def __post_init__(self):
        check_positive("io_threads must be a positive integer.", self.io_threads)
        if self.max_number_of_tasks_waiting < -1:
            raise ValueError("max_number_of_tasks_waiting must be -1 (for unlimited) or non-negative.")
        check_positive(
            "All timeout/retention/balance second values must be positive.",
            self.client_timeout_seconds,
            self.worker_timeout_seconds,
            self.object_retention_seconds,
            self.load_balance_seconds,
        )
        check_positive("load_balance_trigger_times must be a positive integer.", self.load_balance_trigger_times)
        check_url("adapter_webhook_url", self.adapter_webhook_url)
        check_logging_level(self.logging_level)
