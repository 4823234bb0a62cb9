"""Exceptions users of the scaler client can see.

The class names and this module path are those of Scaler 1.12.5: exceptions raised on workers are
pickled by reference, so both sides must import them from ``scaler.utility.exceptions``.
"""


class ClientQuitException(Exception):
    """The client is stopped (disconnected, shut down or timed out); no new work is accepted."""


class ClientShutdownException(Exception):
    """The scheduler was shut down on this client's request."""


class ClientCancelledException(Exception):
    """The client's background thread was cancelled."""


class MissingObjects(Exception):
    """An ObjectReference the client no longer knows (for example after ``clear()``)."""


class WorkerDiedError(Exception):
    """The worker holding the task left and the task could not be re-placed."""


class ProcessorDiedError(Exception):
    """The processor process running the task died (``os._exit``, a segfault, killed)."""


class DeserializeObjectError(Exception):
    """An object could not be deserialized on a worker."""


class ObjectStorageException(Exception):
    """Object storage refused a request or could not be reached."""


class ObjectNotFoundError(ObjectStorageException):
    """An object (a task's function or argument, a result) did not appear in object storage within
    the deadline; the message names the object id and the deadline.

    Not in upstream 1.12.5, whose fetches waited forever.
    """


class TaskNotFoundError(Exception):
    pass


class NoWorkerError(Exception):
    pass


class DisconnectedError(Exception):
    pass


class TaskRejectedError(Exception):
    """The scheduler refused the task or graph (it never ran); the message says why.

    Not in upstream 1.12.5, which had no rejection path.
    """


class SchedulerLostError(TimeoutError):
    """The scheduler this client was connected to is gone: its connection broke, or it stayed
    silent for more than the client's ``timeout_seconds``. Every pending future fails with it,
    and later calls on the client raise ``ClientQuitException``.

    Not in upstream 1.12.5, which raised a plain ``TimeoutError`` here: it subclasses
    ``TimeoutError`` so that ``except TimeoutError`` still catches it, while
    ``ScalerFuture.result(timeout=...)`` running out raises the plain
    ``concurrent.futures.TimeoutError`` (not this class).
    """


class TaskTimeoutError(TimeoutError):
    """The task ran longer than the cluster's task timeout (``--task-timeout-seconds``) and was
    stopped on its worker.

    Not in upstream 1.12.5 (which accepted the option and never applied it). A ``TimeoutError``,
    as scaler raised there before, but not the ``concurrent.futures.TimeoutError`` of
    ``result(timeout=...)`` running out, nor a ``SchedulerLostError``.
    """
