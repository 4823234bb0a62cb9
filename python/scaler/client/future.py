import logging
import pickle
import threading
from concurrent.futures import CancelledError, Future, InvalidStateError
from concurrent.futures._base import CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED, RUNNING
from typing import Any, Callable, Optional

from scaler.utility.metadata.profile_result import ProfileResult

_UNSET = object()
_FINAL = (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED)


class _Waiters(list):
    """``Future._waiters`` that asks for the result when ``as_completed``/``wait`` subscribes."""

    def __init__(self, future: "ScalerFuture"):
        self._future = future  # list.__new__ made the empty list

    def append(self, waiter) -> None:
        super().append(waiter)
        self._future._on_listener()


class ScalerFuture(Future):
    """The future of one task (``Client.submit``) or one graph target (``Client.get``).

    It is RUNNING from creation. Results of ``submit`` futures are fetched from object storage the
    first time somebody asks (``result``, ``exception``, a callback or a waiter) unless they came
    inline with the task result; so ``done()`` may be True while ``result()`` still has to fetch.
    Callbacks added before completion run in the client's background thread.
    """

    _wants_profile = True  # the client agent builds a ProfileResult for it

    def __init__(
        self, task_id: bytes, is_delayed: bool, group_task_id: Optional[bytes], serializer, agent, condition=None
    ):
        # Future.__init__ is not called: it builds a threading.Condition per future, which cost more
        # than a small task. A client's futures share one Condition (``condition``); every wait on
        # it below re-checks its own future's state, so a notification for another future is
        # harmless. The attributes are Future's own, set as Future.__init__ and
        # set_running_or_notify_cancel would.
        self._condition = threading.Condition() if condition is None else condition
        self._state = RUNNING
        self._result = None
        self._exception = None
        self._waiters = _Waiters(self) if is_delayed else []
        self._done_callbacks = []
        self._task_id = task_id
        self._is_delayed = is_delayed
        self._group_task_id = group_task_id
        self._serializer = serializer
        self._agent = agent
        self._profiling_info: Optional[ProfileResult] = None
        self._ready: Optional[tuple] = None  # (object_id, failed) when the result waits in storage
        self._fetch_requested = not is_delayed
        self._cancel_sent = False
        self._decoded = False
        self._decode_lock = threading.Lock()
        self._release = ()  # object ids the client agent releases once the task is done

    # ---- public API ----

    @property
    def task_id(self) -> bytes:
        return self._task_id

    def done(self) -> bool:
        with self._condition:
            return self._state in (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED) or self._ready is not None

    def running(self) -> bool:
        with self._condition:
            return self._state == RUNNING and self._ready is None

    def _finished(self) -> bool:
        return self._state in _FINAL

    def _wait_finished(self, timeout: Optional[float]) -> None:
        if self._state in _FINAL:
            return
        self._on_listener()
        if self._agent is None:
            with self._condition:
                self._condition.wait_for(self._finished, timeout)
            return
        self._agent.wait_until(self._finished, timeout, self._condition)

    def result(self, timeout: Optional[float] = None) -> Any:
        self._wait_finished(timeout)
        value = super().result(0)
        return self._decode(value)

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        self._wait_finished(timeout)
        exc = super().exception(0)
        if exc is None and not self._decoded:
            try:
                self._decode(self._result)
            except BaseException as error:  # a result that cannot be deserialized is the exception
                return error
        return exc

    def cancel(self, timeout: Optional[float] = None) -> bool:
        """Ask the scheduler to cancel the task; wait until it is cancelled or finishes.

        Returns True if the task ended cancelled. Cancelling any target of a graph cancels the
        whole graph. ``timeout`` bounds the wait (default: the client's ``timeout_seconds``).
        """
        with self._condition:
            if self._state in (CANCELLED, CANCELLED_AND_NOTIFIED):
                return True
            if self._state == FINISHED or self._ready is not None:
                return False
            send = not self._cancel_sent
            self._cancel_sent = True
        if send:
            try:
                self._agent.cancel_future(self)
            except Exception:
                pass
        if timeout is None:
            timeout = self._agent.cancel_timeout
        with self._condition:
            self._condition.wait_for(
                lambda: self._state in (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED) or self._ready is not None,
                timeout,
            )
            return self._state in (CANCELLED, CANCELLED_AND_NOTIFIED)

    def add_done_callback(self, fn: Callable[["ScalerFuture"], Any]) -> None:
        with self._condition:
            finished = self._state in (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED)
            if not finished:
                self._done_callbacks.append(fn)
        if finished:
            fn(self)  # like upstream: an error of the callback reaches the caller
            return
        self._on_listener()

    def _wait_done(self, timeout: Optional[float]) -> None:
        with self._condition:
            self._condition.wait_for(self.done, timeout)

    def profiling_info(self) -> ProfileResult:
        with self._condition:
            info = self._profiling_info
            if info is None:
                raise ValueError(f"didn't receive profiling info for {self._task_id.hex()} yet")
            if type(info) is dict:  # as the client agent read it: made a ProfileResult on demand
                info = self._profiling_info = ProfileResult(
                    duration_s=float(info.get(b"duration_s", 0.0)),
                    memory_peak=int(info.get(b"memory_peak", 0)),
                    cpu_time_s=float(info.get(b"cpu_time_s", 0.0)),
                )
            return info

    def _store_profiling_info(self, profiling_info: Optional[ProfileResult]) -> None:
        # caller holds self._condition
        if profiling_info is not None:
            if self._profiling_info is not None:
                raise InvalidStateError("profiling info already set")
            self._profiling_info = profiling_info

    def set_result(self, result: Any, profiling_info: Optional[ProfileResult] = None) -> None:
        with self._condition:
            self._store_profiling_info(profiling_info)
            self._decoded = True
        super().set_result(result)

    def set_exception(self, exception: Optional[BaseException], profiling_info: Optional[ProfileResult] = None) -> None:
        with self._condition:
            self._store_profiling_info(profiling_info)
            self._ready = None
        super().set_exception(exception)

    def set_canceled(self) -> None:
        """Mark the future cancelled (no-op when it already finished)."""
        with self._condition:
            if self._state in (FINISHED, CANCELLED, CANCELLED_AND_NOTIFIED):
                return
            self._ready = None
            self._state = CANCELLED_AND_NOTIFIED
            for waiter in self._waiters:
                waiter.add_cancelled(self)
            self._condition.notify_all()
        self._invoke_callbacks()

    def __repr__(self) -> str:
        return f"<ScalerFuture {self._task_id.hex()} state={self._state}>"

    # ---- used by the client agent ----

    def _mark_ready(self, object_id: bytes, failed: bool, profile: Optional[ProfileResult]) -> bool:
        """Result is in storage; returns True if it must be fetched now (someone is waiting)."""
        with self._condition:
            if self._state != RUNNING:
                return False
            if profile is not None and self._profiling_info is None:
                self._profiling_info = profile
            self._ready = (object_id, failed)
            fetch = self._fetch_requested or bool(self._done_callbacks) or bool(self._waiters)
            self._fetch_requested = fetch
            self._condition.notify_all()  # cancel() waiters: the task is no longer cancellable
            return fetch

    def _on_listener(self) -> None:
        with self._condition:
            if self._fetch_requested:
                return
            self._fetch_requested = True  # remembered: fetch as soon as the result is ready
            if self._ready is None:
                return
            object_id, failed = self._ready
        self._agent.fetch_future(self, object_id, failed)

    def _set_payload(self, payload, failed: bool, profile: Optional[ProfileResult]) -> None:
        """Resolve from the bytes of the result object (I/O thread)."""
        if failed:
            self._finish(None, _unpickle_failure(payload), profile)
        else:
            self._finish(_Raw(payload), None, profile)

    def _set_value(self, value: Any, profile: Optional[ProfileResult] = None) -> None:
        self._finish(value, None, profile, True)

    def _fail(self, exception: BaseException, profile: Optional[ProfileResult] = None) -> None:
        self._finish(None, exception, profile)

    def _finish(self, result: Any, exception: Optional[BaseException], profile: Optional[ProfileResult],
                decoded: bool = False) -> None:
        """Future.set_result/set_exception in one hold of the condition; no-op unless RUNNING."""
        with self._condition:
            if self._state != RUNNING:
                return
            if profile is not None and self._profiling_info is None:
                self._profiling_info = profile
            self._ready = None
            if decoded:
                self._decoded = True
            self._result = result
            self._exception = exception
            self._state = FINISHED
            if self._waiters:
                for waiter in self._waiters:
                    if exception is None:
                        waiter.add_result(self)
                    else:
                        waiter.add_exception(self)
            self._condition.notify_all()
        if self._done_callbacks:
            self._invoke_callbacks()

    def _decode(self, value: Any) -> Any:
        if not isinstance(value, _Raw):
            return value
        with self._decode_lock:
            if isinstance(self._result, _Raw):
                try:
                    self._result = self._serializer.deserialize(self._result.payload)
                except BaseException as error:
                    logging.exception("scaler: cannot deserialize the result of task %s", self._task_id.hex())
                    with self._condition:
                        self._exception = error
                        self._result = None
                        self._decoded = True
                    raise
                self._decoded = True
            elif self._exception is not None:
                raise self._exception
            return self._result


class _Raw:
    """A result still in its serialized form."""

    __slots__ = ("payload",)

    def __init__(self, payload):
        self.payload = payload


def _unpickle_failure(payload) -> BaseException:
    """The exception a failed task sent (always a plain pickle)."""
    try:
        exc = pickle.loads(payload)
        if not isinstance(exc, BaseException):
            exc = Exception(f"task failed: {exc!r}")
    except Exception as error:
        exc = error
    return exc


_PENDING = object()
_FAILED = object()
_DIRECT = object()


class MapCall:
    """The outcome of one ``Client.map``: filled by the client agent, read once by the caller.

    A map's tasks get no futures (nobody sees them): each has a ``MapTask`` entry in the agent,
    which stores the serialized result here; the calling thread sleeps until every task is done
    (or a failure decides the outcome) and deserializes the results itself.
    """

    __slots__ = ("serializer", "task_ids", "values", "errors", "direct", "remaining", "first_error", "condition",
                 "watched")

    def __init__(self, serializer, task_ids: list):
        n = len(task_ids)
        self.serializer = serializer
        self.task_ids = task_ids
        self.values = [_PENDING] * n  # serialized result, or _FAILED / _DIRECT
        self.errors: dict = {}  # index -> exception (failed, cancelled, lost)
        self.direct: dict = {}  # index -> value that needs no deserializing
        self.remaining = n
        self.first_error = n  # lowest index in errors
        self.condition = threading.Condition(threading.Lock())
        # Notify the waiter of every task, not only the last: after a failure (the caller waits for
        # the tasks before it) or while Client.clear waits for single tasks.
        self.watched = False

    # agent thread

    def _done_one(self) -> None:
        self.remaining -= 1
        if self.remaining == 0 or self.watched:
            with self.condition:
                self.condition.notify_all()

    def set_payload(self, index: int, payload, failed: bool) -> None:
        if self.values[index] is not _PENDING:
            return
        if failed:
            self.set_error(index, _unpickle_failure(payload))
            return
        self.values[index] = payload
        self._done_one()

    def set_value(self, index: int, value) -> None:
        if self.values[index] is not _PENDING:
            return
        self.values[index] = _DIRECT
        self.direct[index] = value
        self._done_one()

    def set_error(self, index: int, error: BaseException) -> None:
        if self.values[index] is not _PENDING:
            return
        self.values[index] = _FAILED
        self.errors[index] = error
        if index < self.first_error:
            self.first_error = index
        self.watched = True
        self.remaining -= 1
        with self.condition:
            self.condition.notify_all()  # the caller may stop at a failure

    # calling thread

    def _decided(self) -> bool:
        if self.remaining == 0:
            return True
        first = self.first_error
        if first == len(self.values):
            return False
        values = self.values
        for i in range(first):  # only after a failure: is everything before it done?
            if values[i] is _PENDING:
                return False
        return True

    def wait(self) -> None:
        """Until every task is done, or every task before the first failure is."""
        with self.condition:
            while not self._decided():
                self.condition.wait()

    def wait_task(self, index: int, timeout: Optional[float]) -> None:
        with self.condition:
            self.watched = True
            self.condition.wait_for(lambda: self.values[index] is not _PENDING, timeout)

    def pending_task_ids(self) -> list:
        values = self.values
        return [task_id for task_id, value in zip(self.task_ids, values) if value is _PENDING]

    def results(self) -> list:
        """Results in input order; raises the first failure in input order."""
        values = self.values
        if self.remaining == 0 and not self.errors and not self.direct:
            try:
                return list(map(self.serializer.deserialize, values))
            except BaseException:
                pass  # find which one, and log it, below
        out = []
        deserialize = self.serializer.deserialize
        for index, value in enumerate(values):
            if value is _FAILED:
                raise self.errors[index]
            if value is _DIRECT:
                out.append(self.direct[index])
                continue
            try:
                out.append(deserialize(value))
            except BaseException:
                logging.exception("scaler: cannot deserialize the result of task %s", self.task_ids[index].hex())
                raise
        return out


class MapTask:
    """The client agent's entry for one task of a map (the future-like calls it makes)."""

    __slots__ = ("call", "index", "_release")
    _group_task_id = None
    _wants_profile = False

    def __init__(self, call: MapCall, index: int, release):
        self.call = call
        self.index = index
        self._release = release

    @property
    def _condition(self):
        return self.call.condition

    def done(self) -> bool:
        return self.call.values[self.index] is not _PENDING

    def _wait_done(self, timeout: Optional[float]) -> None:
        self.call.wait_task(self.index, timeout)

    def _set_payload(self, payload, failed: bool, profile) -> None:
        self.call.set_payload(self.index, payload, failed)

    def _set_value(self, value, profile=None) -> None:
        self.call.set_value(self.index, value)

    def _fail(self, exception: BaseException, profile=None) -> None:
        self.call.set_error(self.index, exception)

    def set_canceled(self) -> None:
        self.call.set_error(self.index, CancelledError())

    def _mark_ready(self, object_id: bytes, failed: bool, profile) -> bool:
        return True  # the caller waits: fetch now
