import logging
import pickle
import threading
from concurrent.futures import Future, InvalidStateError
from concurrent.futures._base import CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED, RUNNING
from typing import Any, Callable, Optional

from scaler.utility.metadata.profile_result import ProfileResult

_UNSET = object()


class _Waiters(list):
    """``Future._waiters`` that asks for the result when ``as_completed``/``wait`` subscribes."""

    def __init__(self, future: "ScalerFuture"):
        super().__init__()
        self._future = future

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

    def __init__(self, task_id: bytes, is_delayed: bool, group_task_id: Optional[bytes], serializer, agent):
        super().__init__()
        self._waiters = _Waiters(self)
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
        self.set_running_or_notify_cancel()

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

    def _wait_finished(self, timeout: Optional[float]) -> None:
        self._on_listener()
        with self._condition:
            self._condition.wait_for(lambda: self._state in (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED), timeout)

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

    def profiling_info(self) -> ProfileResult:
        with self._condition:
            if self._profiling_info is None:
                raise ValueError(f"didn't receive profiling info for {self._task_id.hex()} yet")
            return self._profiling_info

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
        with self._condition:
            if self._state != RUNNING:
                return
            if profile is not None and self._profiling_info is None:
                self._profiling_info = profile
            self._ready = None
        if failed:
            try:
                exc = pickle.loads(payload)
                if not isinstance(exc, BaseException):
                    exc = Exception(f"task failed: {exc!r}")
            except Exception as error:
                exc = error
            Future.set_exception(self, exc)
        else:
            Future.set_result(self, _Raw(payload))

    def _set_value(self, value: Any, profile: Optional[ProfileResult] = None) -> None:
        with self._condition:
            if self._state != RUNNING:
                return
            if profile is not None and self._profiling_info is None:
                self._profiling_info = profile
            self._ready = None
            self._decoded = True
        Future.set_result(self, value)

    def _fail(self, exception: BaseException, profile: Optional[ProfileResult] = None) -> None:
        with self._condition:
            if self._state != RUNNING:
                return
            if profile is not None and self._profiling_info is None:
                self._profiling_info = profile
            self._ready = None
        Future.set_exception(self, exception)

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
