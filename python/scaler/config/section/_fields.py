"""What the section dataclasses share: one definition (type and default) of each option that more
than one section has, and ``section``, the decorator that builds a section from the names of its
fields in constructor order (1.12.5's positional order is an interface, and it differs per section,
so a base class, whose fields would come first, cannot carry them)."""

import dataclasses
from typing import Any, Callable, Dict, Optional, Tuple, Type, TypeVar

from scaler.config import defaults
from scaler.config.types.object_storage_server import ObjectStorageConfig
from scaler.config.types.worker import WorkerCapabilities
from scaler.config.types.zmq import ZMQConfig

T = TypeVar("T")

REQUIRED = dataclasses.MISSING


class Factory:
    """A default made afresh for every instance (a dataclass default_factory)."""

    def __init__(self, make: Callable[[], Any]):
        self.make = make


# name: (type, default)
SHARED: Dict[str, Tuple[Any, Any]] = {
    "scheduler_address": (ZMQConfig, REQUIRED),
    "storage_address": (Optional[ObjectStorageConfig], None),
    "preload": (Optional[str], None),
    "io_threads": (int, defaults.DEFAULT_IO_THREADS),
    "per_worker_capabilities": (WorkerCapabilities, Factory(lambda: WorkerCapabilities({}))),
    "worker_task_queue_size": (int, defaults.DEFAULT_PER_WORKER_QUEUE_SIZE),
    "heartbeat_interval_seconds": (int, defaults.DEFAULT_HEARTBEAT_INTERVAL_SECONDS),
    "task_timeout_seconds": (int, defaults.DEFAULT_TASK_TIMEOUT_SECONDS),
    "death_timeout_seconds": (int, defaults.DEFAULT_WORKER_DEATH_TIMEOUT),
    "garbage_collect_interval_seconds": (int, defaults.DEFAULT_GARBAGE_COLLECT_INTERVAL_SECONDS),
    "trim_memory_threshold_bytes": (int, defaults.DEFAULT_TRIM_MEMORY_THRESHOLD_BYTES),
    "hard_processor_suspend": (bool, defaults.DEFAULT_HARD_PROCESSOR_SUSPEND),
    "event_loop": (str, "builtin"),
    "logging_paths": (Tuple[str, ...], defaults.DEFAULT_LOGGING_PATHS),
    "logging_config_file": (Optional[str], None),
    "logging_level": (str, defaults.DEFAULT_LOGGING_LEVEL),
}


def section(fields: str) -> Callable[[Type[T]], Type[T]]:
    """Make the decorated class a dataclass whose fields are ``fields`` (names separated by white
    space, in constructor order). A field the class annotates itself has the class's type and
    default; any other has SHARED's."""
    names = fields.split()

    def build(cls: Type[T]) -> Type[T]:
        own = dict(cls.__dict__.get("__annotations__", {}))
        unlisted = set(own) - set(names)
        if unlisted:
            raise TypeError(f"{cls.__name__} annotates {sorted(unlisted)} but does not list them")
        annotations = {}
        for name in names:
            if name in own:
                annotations[name] = own[name]
                continue
            kind, default = SHARED[name]
            annotations[name] = kind
            if isinstance(default, Factory):
                setattr(cls, name, dataclasses.field(default_factory=default.make))
            elif default is not REQUIRED:
                setattr(cls, name, default)
        cls.__annotations__ = annotations
        return dataclasses.dataclass(cls)

    return build
