import dataclasses
from typing import Optional

from scaler.config import defaults
from scaler.config.section._checks import check_logging_level, check_positive
from scaler.config.section._fields import section
from scaler.config.types.object_storage_server import ObjectStorageConfig
from scaler.config.types.worker import WorkerCapabilities


@section(
    "scheduler_address object_storage_address service_name base_concurrency worker_capabilities "
    "server_http_host server_http_port io_threads worker_task_queue_size heartbeat_interval "
    "death_timeout_seconds event_loop logging_paths logging_level logging_config_file"
)
class SymphonyWorkerConfig:
    """The ``[symphony_worker_adapter]`` section (the adapter itself needs IBM's SOAM library)."""

    object_storage_address: Optional[ObjectStorageConfig]
    service_name: str
    base_concurrency: int = defaults.DEFAULT_NUMBER_OF_WORKER
    worker_capabilities: WorkerCapabilities = dataclasses.field(default_factory=lambda: WorkerCapabilities({}))
    server_http_host: str = "localhost"
    server_http_port: int = 0
    heartbeat_interval: int = defaults.DEFAULT_HEARTBEAT_INTERVAL_SECONDS

    def __post_init__(self):
        check_positive(
            "All concurrency, queue size, timeout, and thread count values must be positive integers.",
            self.base_concurrency,
            self.worker_task_queue_size,
            self.heartbeat_interval,
            self.death_timeout_seconds,
            self.io_threads,
        )
        if not self.service_name:
            raise ValueError("service_name cannot be an empty string.")
        check_logging_level(self.logging_level)
