from scaler.config import defaults
from scaler.config.section._checks import check_positive
from scaler.config.section._fields import section


@section(
    "scheduler_address storage_address adapter_web_host adapter_web_port per_worker_capabilities "
    "io_threads worker_task_queue_size max_workers heartbeat_interval_seconds task_timeout_seconds "
    "death_timeout_seconds garbage_collect_interval_seconds trim_memory_threshold_bytes "
    "hard_processor_suspend event_loop logging_paths logging_level logging_config_file"
)
class NativeWorkerAdapterConfig:
    """The ``[native_worker_adapter]`` section (``scaler_worker_adapter_native``)."""

    adapter_web_host: str = "localhost"
    adapter_web_port: int = 8080
    max_workers: int = defaults.DEFAULT_NUMBER_OF_WORKER

    def __post_init__(self):
        if not isinstance(self.adapter_web_host, str):
            raise TypeError(f"adapter_web_host should be string, given {self.adapter_web_host}")
        if not isinstance(self.adapter_web_port, int):
            raise TypeError(f"adapter_web_port must be between 1 and 65535, but got {self.adapter_web_port}")
        check_positive("io_threads must be a positive integer.", self.io_threads)
        check_positive("worker_task_queue_size must be positive.", self.worker_task_queue_size)
        if min(self.heartbeat_interval_seconds, self.death_timeout_seconds) <= 0 or self.task_timeout_seconds < 0:
            raise ValueError("All interval/timeout second values must be positive.")
