import logging
import pickle
import threading
from concurrent.futures import CancelledError, Future, InvalidStateError
from typing import Any, Callable, Optional

from scaler.utility.metadata.profile_result import ProfileResult

_UNSET = object()


class _Waiters(list):
    """``Future._waiters`` that asks for the result when ``as_completed``/``wait`` subscribes.

    ``wait`` and ``as_completed`` append their waiter to this list (the one private attribute of
    ``Future`` this module touches, as 1.12.5's EventList did): a delayed future's result is
    fetched on first demand, and a waiter is a demand."""

    def __init__(self, future: "ScalerFuture"):
        self._future = future  # list.__new__ made the empty list

    def append(self, waiter) -> None:
        super().append(waiter)
        self._future._listened = True
        self._future._on_listener()


class ScalerFuture(Future):
    """The future of one task (``Client.submit``) or one graph target (``Client.get``).

    Built on ``concurrent.futures.Future``'s own state and condition: it ends through
    ``set_result``/``set_exception``, or ``cancel`` followed by ``set_running_or_notify_cancel``
    (which is what tells ``wait``/``as_completed``), so everything that works on a Future works on
    it. The stdlib state stays PENDING while the task is out (only a pending Future can be
    cancelled); ``running()`` is True until ``done()``, as in 1.12.5, where futures were RUNNING
    from creation.

    Results of ``submit`` futures are fetched from object storage the first time somebody asks
    (``result``, ``exception``, a callback or a waiter) unless they came inline with the task
    result; so ``done()`` may be True while ``result()`` still has to fetch. Callbacks added before
    completion run in the client's background thread. Results are deserialized by the first caller
    of ``result``/``exception``, not by the thread that resolved the future.
    """

    _wants_profile = True  # the client agent builds a ProfileResult for it
    # Defaults as class attributes, set on the instance when they change: a future is built per
    # submit, and each attribute set costs.
    _profiling_info: Optional[ProfileResult] = None
    _ready: Optional[tuple] = None  # (object_id, failed) while the result waits in storage
    # A done-callback or a waiter subscribed: the result is handled by the agent thread, where
    # callbacks run (a thread reading the socket for its own future leaves it alone).
    _listened = False
    _cancel_sent = False
    # Set (under the condition) by the one set_canceled call that cancels: a second
    # set_running_or_notify_cancel would raise. Results need no such flag: Future.set_result
    # refuses a future that ended.
    _cancelling = False
    _value = _UNSET  # the deserialized result, once a caller asked
    _decode_error: Optional[BaseException] = None
    _release = ()  # object ids the client agent releases once the task is done

    def __init__(self, task_id: bytes, is_delayed: bool, group_task_id: Optional[bytes], serializer, agent):
        super().__init__()
        if is_delayed:
            self._waiters = _Waiters(self)
        self._task_id = task_id
        self._group_task_id = group_task_id
        self._serializer = serializer
        self._agent = agent
        self._fetch_requested = not is_delayed
        self._decode_lock = threading.Lock()

    # ---- public API ----

    @property
    def task_id(self) -> bytes:
        return self._task_id

    def done(self) -> bool:
        return self._ready is not None or Future.done(self)

    def running(self) -> bool:
        return not self.done()

    def _finished(self) -> bool:
        """Ended (result, exception or cancelled), not merely ready in storage."""
        return Future.done(self)

    def _wait_finished(self, timeout: Optional[float]) -> None:
        if Future.done(self):
            return
        self._on_listener()
        if self._agent is None:
            with self._condition:
                self._condition.wait_for(self._finished, timeout)
            return
        self._agent.wait_until(self._finished, timeout, self._condition)

    def result(self, timeout: Optional[float] = None) -> Any:
        self._wait_finished(timeout)
        return self._decode(super().result(0))  # CancelledError, TimeoutError, or the task's exception

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        self._wait_finished(timeout)
        exc = super().exception(0)
        if exc is None:
            try:
                self._decode(super().result(0))
            except BaseException as error:  # a result that cannot be deserialized is the exception
                return error
        return exc

    def cancel(self, timeout: Optional[float] = None) -> bool:
        """Ask the scheduler to cancel the task; wait until it is cancelled or finishes.

        Returns True if the task ended cancelled. Cancelling any target of a graph cancels the
        whole graph. ``timeout`` bounds the wait (default: the client's ``timeout_seconds``).
        """
        if self.cancelled():
            return True
        with self._condition:
            if self.done():
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
            self._condition.wait_for(self.done, timeout)
        return self.cancelled()

    def add_done_callback(self, fn: Callable[["ScalerFuture"], Any]) -> None:
        if Future.done(self):
            fn(self)  # like upstream: an error of the callback reaches the caller
            return
        self._listened = True
        super().add_done_callback(fn)  # calls fn at once if the future ended meanwhile
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

    def set_result(self, result: Any, profiling_info: Optional[ProfileResult] = None) -> None:
        """Future.set_result, with the profiling info; InvalidStateError once the future ended."""
        self._check_settable(profiling_info)
        Future.set_result(self, result)

    def set_exception(self, exception: Optional[BaseException], profiling_info: Optional[ProfileResult] = None) -> None:
        self._check_settable(profiling_info)
        Future.set_exception(self, exception)

    def set_canceled(self) -> None:
        """Mark the future cancelled (no-op when it already ended)."""
        with self._condition:
            if self._cancelling or Future.done(self):
                return
            self._cancelling = True
        if Future.cancel(self):  # PENDING -> CANCELLED, and runs the callbacks; False if a result won
            self.set_running_or_notify_cancel()  # -> CANCELLED_AND_NOTIFIED: wait/as_completed see it
        self._ready = None

    def __repr__(self) -> str:
        state = "CANCELLED" if self.cancelled() else "FINISHED" if Future.done(self) else "RUNNING"
        return f"<ScalerFuture {self._task_id.hex()} state={state}>"

    # ---- used by the client agent ----

    def _check_settable(self, profile) -> None:
        """For the public setters: InvalidStateError if the future ended or ``profile`` would be a
        second profile; else stores it."""
        with self._condition:
            if Future.done(self):
                raise InvalidStateError(f"{self!r} already ended")
            if profile is not None:
                if self._profiling_info is not None:
                    raise InvalidStateError("profiling info already set")
                self._profiling_info = profile

    def _mark_ready(self, object_id: bytes, failed: bool, profile: Optional[ProfileResult]) -> bool:
        """Result is in storage; returns True if it must be fetched now (someone is waiting)."""
        with self._condition:
            if Future.done(self):
                return False
            if profile is not None and self._profiling_info is None:
                self._profiling_info = profile
            self._ready = (object_id, failed)
            fetch = self._fetch_requested or self._listened
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
        self._finish(value, None, profile)

    def _fail(self, exception: BaseException, profile: Optional[ProfileResult] = None) -> None:
        self._finish(None, exception, profile)

    def _finish(self, result: Any, exception: Optional[BaseException], profile: Optional[ProfileResult]) -> None:
        """End the future with a result or an exception; no-op if it already ended."""
        if profile is not None and self._profiling_info is None:
            self._profiling_info = profile  # before the result: whoever sees the result sees it
        try:
            if exception is None:
                Future.set_result(self, result)
            else:
                Future.set_exception(self, exception)
        except InvalidStateError:
            return  # cancelled, or ended by another thread
        self._ready = None

    def _decode(self, value: Any) -> Any:
        if type(value) is not _Raw:
            return value
        if self._value is not _UNSET:
            return self._value
        with self._decode_lock:
            if self._value is _UNSET and self._decode_error is None:
                try:
                    self._value = self._serializer.deserialize(value.payload)
                except BaseException as error:
                    logging.exception("scaler: cannot deserialize the result of task %s", self._task_id.hex())
                    self._decode_error = error
                value.payload = None  # the Future keeps the _Raw: let the bytes go
        if self._decode_error is not None:
            raise self._decode_error
        return self._value


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
