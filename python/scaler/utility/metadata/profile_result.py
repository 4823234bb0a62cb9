import dataclasses


@dataclasses.dataclass
class ProfileResult:
    """What a worker measured while a task ran (``ScalerFuture.profiling_info()``)."""

    duration_s: float = dataclasses.field(default=0.0)
    memory_peak: int = dataclasses.field(default=0)
    cpu_time_s: float = dataclasses.field(default=0.0)
