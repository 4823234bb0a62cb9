import dataclasses

from scaler.config import defaults
from scaler.config.section._checks import check_logging_level, check_positive
from scaler.config.section._fields import section
from scaler.config.types.worker import WorkerNames


@section(
    "scheduler_address storage_address preload worker_io_threads worker_names num_of_workers "
    "per_worker_capabilities per_worker_task_queue_size heartbeat_interval_seconds "
    "task_timeout_seconds death_timeout_seconds garbage_collect_interval_seconds "
    "trim_memory_threshold_bytes hard_processor_suspend event_loop logging_paths logging_config_file "
    "logging_level"
)
class ClusterConfig:
    """The ``[cluster]`` section (``scaler_cluster``)."""

    worker_io_threads: int = defaults.DEFAULT_IO_THREADS
    worker_names: WorkerNames = dataclasses.field(default_factory=lambda: WorkerNames([]))
    num_of_workers: int = defaults.DEFAULT_NUMBER_OF_WORKER
    per_worker_task_queue_size: int = defaults.DEFAULT_PER_WORKER_QUEUE_SIZE

    def __post_init__(self):
        check_positive("worker_io_threads must be a positive integer.", self.worker_io_threads)
        if self.worker_names.names and len(self.worker_names.names) != self.num_of_workers:
            raise ValueError(
                f"The number of worker_names ({len(self.worker_names.names)}) "
                f"must match num_of_workers ({self.num_of_workers})."
            )
        check_positive("per_worker_task_queue_size must be positive.", self.per_worker_task_queue_size)
        if (
            min(self.heartbeat_interval_seconds, self.death_timeout_seconds, self.garbage_collect_interval_seconds) <= 0
            or self.task_timeout_seconds < 0
        ):
            raise ValueError("All interval/timeout second values must be positive.")
        if self.trim_memory_threshold_bytes < 0:
            raise ValueError("trim_memory_threshold_bytes cannot be negative.")
        check_logging_level(self.logging_level)
