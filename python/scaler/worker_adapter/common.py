"""Names shared by the worker adapters, as in upstream 1.12.5."""

WorkerGroupID = bytes


class CapacityExceededError(Exception):
    """The adapter refused to start a worker group: its maximum is reached (HTTP 429)."""


class WorkerGroupNotFoundError(Exception):
    """The worker group to shut down does not exist (HTTP 404)."""
