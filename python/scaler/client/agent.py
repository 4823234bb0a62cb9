"""The client's background thread, which owns the client's connections.

User threads hand it commands through a deque and wake it through a pipe; it talks to the
scheduler (a ZMTP DEALER on a plain socket, see scaler.io.zmtp) and to object storage (a pyzmq
DEALER, pipelined with request ids), keeps the heartbeat, and resolves futures. Nothing here
blocks on the network: every wait is a poll with a deadline, so heartbeats keep flowing while
large objects move.

Who owns the scheduler socket
-----------------------------
Object storage's socket belongs to the agent thread alone. The scheduler socket is shared, so
that a single task needs no thread hand-off on its way out or back (each measured: one thread
wake-up is about as costly as the rest of a small task's client work). The rules, in one place:

Writing. Every send happens under ``_sock_lock`` (an RLock), by:
  - the agent thread (tasks posted to it, cancels, releases, heartbeats, disconnect), which also
    holds it for a whole round of commands (``_drain_commands``), so a round goes out in order;
  - a user thread in ``submit_batch``, for a batch of tasks only, and only when ``_direct`` (set
    once the agent polls the socket; never inside a processor, where the worker may suspend the
    thread), nothing is queued before it (``_commands`` and ``_outbox`` empty) and no object it
    reads is unacknowledged or refused. Anything else is posted to the agent.
  ``_tasks``, ``_in_flight`` and ``_refused`` change under ``_sock_lock`` too (submit_batch reads
  them there).

Reading. Exactly one thread reads, the one ``_rx_owner`` names (guarded by ``_rx_lock``); each
read is also under ``_sock_lock``, as the socket's buffers are shared with sends:
  - ``_AGENT``: the agent polls the socket's descriptor (``_poller``) and reads;
  - a user thread's ident: a thread in ``wait_until`` (``ScalerFuture.result``/``exception``)
    polls the descriptor and its nudge pipe, and resolves plain results itself (inline, of
    futures without callbacks or waiters: callbacks run in the agent thread);
  - ``None``: nobody, for at most ``_RECLAIM_SECONDS``.
  While it does not own the socket the agent polls only storage and its wake pipe
  (``_side_poller``), so a result is never awaited by two threads.

Ownership passes (nowhere else):
  1. agent -> None: ``_pass_socket``, when a user thread asked (``_rx_wanted``), the connection
     is up and the agent has nothing left in ``_inbox``;
  2. None -> user thread: ``wait_until``, the first waiting thread that sees it free takes it;
  3. user thread -> None: ``_read_results`` returns (its future ended, its timeout, the client
     stopped); ``_rx_released_at`` records when;
  4. user thread -> agent: ``_read_scheduler`` met a message only the agent handles (anything
     but a plain result, or the connection broke): it puts that message and every one after it in
     ``_inbox`` (which only the reader writes, and only the agent drains, before anything else)
     and hands the socket over with them, so arrival order is kept;
  5. None -> agent: ``_pass_socket``, when nobody took it for ``_RECLAIM_SECONDS``, so results for
     callbacks and heartbeat echoes are read when no user thread waits. A thread that waits
     again sooner (submit/result in a loop) takes the socket without waking the agent. A thread
     that asked and was too slow to take it (a loaded machine) is notified and asks again.

What wakes whom:
  - the agent's wake pipe (``_wake``): a posted command; a user thread asking for the socket; a
    hand-back with ``_inbox`` (4); a release (3) while the agent sleeps long
    (``_agent_sleeps_long``); a send that found the connection broken. While releases are
    recent (``_RECENT_SECONDS``) the agent polls every ``_RECLAIM_SECONDS`` instead, so that a
    release in a submit/result loop costs no wake-up;
  - the reader's nudge pipe (``_nudge_reader``): a storage reply (a fetched result may be the
    one it waits for), a broken connection, the agent stopping;
  - ``_socket_waiters``, the conditions of the futures user threads wait on in ``wait_until``:
    notified when the socket becomes free (1, 3), so one of them takes it, and when the agent
    took it back from nobody while one waits (5), so one of them asks again;
  - a future's own condition (``concurrent.futures.Future``'s): it ended, or its result became
    ready in storage.

Lock order: ``_sock_lock`` before ``_rx_lock`` and before a future's condition; ``_rx_lock`` is
never held while taking another lock (``_notify_socket_waiters`` copies the list first). The agent
runs user callbacks without ``_sock_lock`` (``_to_fail``, ``_drain_scheduler``); a reading user
thread resolves futures under it, so a callback added just as its future ends may run there (the
lock is re-entrant: it may submit).
When the agent stops it sets ``stopped``, clears ``_direct``, waits for ``_sock_lock`` (a user
thread's send or read in progress ends; none starts after), nudges the reader and ends every
future, which wakes every waiting thread through its future's condition.
python/tests/test_client_stress.py runs many threads through all of this at once.
"""

import collections
import itertools
import logging
import os
import pickle
import select
import sys
import threading
import time
from typing import Callable, Deque, Dict, List, Optional

import msgpack
import zmq

from scaler.protocol import wire as w
from scaler.io import storage as _storage
from scaler.io.zmtp import ConnectionLost, ZmtpDealer, ZmtpError
from scaler.utility.exceptions import (
    ClientQuitException,
    ClientShutdownException,
    ObjectNotFoundError,
    ObjectStorageException,
    ProcessorDiedError,
    SchedulerLostError,
    TaskRejectedError,
    TaskTimeoutError,
    WorkerDiedError,
)
from scaler.client.future import MapTask
from scaler.utility.metadata.profile_result import ProfileResult

logger = logging.getLogger("scaler.client")
_unpackb = msgpack.unpackb
_TASK_RESULT_KIND = bytes((w.TASK_RESULT,))

_MAX_DRAIN = 4096  # messages read from one socket before looking at the others
# With at least this many tasks in flight, the agent waits _COALESCE_SECONDS after reading the
# scheduler's messages, so that results arrive in fewer, larger reads. Only results of a large
# submission wait (at most this long); a lone task's result is handled as it arrives.
_COALESCE_OUTSTANDING = 64
_COALESCE_SECONDS = 0.005
_BATCH_KIND = bytes((w.BATCH,))
# Until the scheduler is first reached, a connection is tried this often; one try waits at most
# _CONNECT_SECONDS for the connection and the handshake.
_CONNECT_RETRY_SECONDS = 0.1
_CONNECT_SECONDS = 1.0
_DROPPED = object()  # _recv_one: a multi-part message, which no scheduler sends
_LOST = object()  # _read_scheduler: the connection broke
# Object ids object storage refused, remembered so that a task using one (a function id taken
# from the client's cache just before the refusal arrived) fails at once instead of waiting for
# an object that never comes. Bounded: the client forgets refused ids itself (on_refused).
_REFUSED_LIMIT = 1024

# The scheduler socket's reader (see "Who owns the scheduler socket" above).
_AGENT = "agent"
_RECLAIM_SECONDS = 0.002  # a socket nobody reads is taken back by the agent after this long
# A lost connection's error names the longest message sent when it was over this (1 MiB): smaller
# ones are far below any max_message_size a scheduler is likely to be given.
_NOTED_FRAME_BYTES = 1 << 20
_RECENT_SECONDS = 0.1  # a release less recent than this wakes the agent; a more recent one needs no wake-up



# Results from this size on are handed to the serializer as a view of the frame they arrived in
# (no copy) when it deserializes with pickle's loads, which reads views; smaller ones as bytes.
_VIEW_MIN = 1 << 16


def _result_payload(future, frame):
    """A fetched result's payload for ``future``: a memoryview of ``frame`` or its bytes."""
    if len(frame) >= _VIEW_MIN:
        serializer = getattr(future, "_serializer", None)
        if serializer is None:
            call = getattr(future, "call", None)
            serializer = getattr(call, "serializer", None)
        if serializer is not None and serializer.deserialize is pickle.loads:
            return frame.buffer
    return frame.bytes


class Batch:
    """Work built by a user thread: objects to store, then scheduler frames to send once stored."""

    __slots__ = ("sets", "create_ids", "frames", "task_ids", "entries", "graph", "remaining", "owned", "depends",
                 "error", "stored", "unacked", "abandoned")

    def __init__(self):
        self.sets: List[tuple] = []  # (request id, object id, header frame, payload)
        self.create_ids: List[bytes] = []
        self.frames: List[bytes] = []  # create instruction first, then tasks
        # Tasks and their entries, in parallel: a ScalerFuture, or a MapTask for a map's tasks.
        # An entry has _release (object ids to release when the task is done), _group_task_id
        # (its graph, or None) and the methods the agent resolves it with.
        self.task_ids: List[bytes] = []
        self.entries: list = []
        self.graph: Optional["GraphEntry"] = None
        self.remaining = 0
        self.owned: List[bytes] = []
        # Objects stored by other batches that this batch's tasks read (their function, object
        # references): if storage refuses one, these tasks fail too.
        self.depends: set = set()
        self.error: Optional[BaseException] = None  # why the batch was refused
        # A "store" batch (send_object, the serializer): its creation is announced to the
        # scheduler only once storage acknowledged every set; ``stored`` is set then, or with
        # ``error`` when it is refused (or the client stops).
        self.stored: Optional[threading.Event] = None
        self.unacked = 0
        self.abandoned = False  # the waiting user thread gave up: delete the object when it lands


class GraphEntry:
    __slots__ = ("graph_id", "umbrella", "targets", "nodes", "release", "error")

    def __init__(self, graph_id: bytes, umbrella, targets: Dict[bytes, object], nodes: List[bytes], release):
        self.graph_id = graph_id
        self.umbrella = umbrella
        self.targets = targets
        self.nodes = nodes
        self.release = release
        self.error: Optional[BaseException] = None


class _Stop(Exception):
    def __init__(self, reason: BaseException, cancel_futures: bool):
        super().__init__(str(reason))
        self.reason = reason
        self.cancel_futures = cancel_futures


class ClientAgent(threading.Thread):
    def __init__(self, client_id: bytes, address: str, heartbeat_interval_seconds: float, timeout_seconds: float,
                 connect_address: Optional[str] = None):
        super().__init__(name="scaler-client-agent", daemon=True)
        self.client_id = client_id
        self._address = address  # the scheduler's address as the user gave it (messages, storage host)
        self._connect_address = connect_address or address  # where the socket connects
        self._heartbeat_interval = max(float(heartbeat_interval_seconds), 0.05)
        self._timeout = float(timeout_seconds)
        self.cancel_timeout = max(float(timeout_seconds), 1.0)

        self.request_ids = itertools.count(1)
        self.storage_ready = threading.Event()
        self.storage_address: Optional[str] = None
        self.stopped = threading.Event()
        self.exit_reason: Optional[BaseException] = None

        self._commands: Deque[tuple] = collections.deque()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._wake_pending = False

        self._context: Optional[zmq.Context] = None  # for the storage socket
        self._scheduler: Optional[ZmtpDealer] = None
        self._next_connect = 0.0  # monotonic time of the next try while the connection is down
        self._connect_error: Optional[str] = None  # why the last try failed
        self._ever_connected = False
        self._lost: Optional[ConnectionLost] = None  # how the established connection broke
        # The longest frame sent or tried: a scheduler closes the connection of a peer that sends one over
        # its max_message_size, and the client can only say so from its side (_lost_reason).
        self._largest_frame = 0
        # Guards every use of the scheduler socket, and the agent's handling of a round of
        # commands: user threads send tasks on the socket themselves (submit_batch) when nothing
        # queued before them is still unsent. The agent polls the socket's descriptor and reads
        # without blocking, so a user thread may use the socket meanwhile.
        self._sock_lock = threading.RLock()
        self._direct = False  # user threads may send (set once the agent polls the socket's fd)
        # A client in a processor belongs to a nested task (the scheduler logs it at debug level).
        # It never sends directly: the worker may suspend its main thread (SIGUSR1) at any point,
        # which must never be while it holds the socket lock that the agent needs.
        processor = sys.modules.get("scaler.worker.processor")
        self._nested = processor is not None and processor.in_processor()
        self._direct_allowed = not self._nested
        self._storage: Optional[zmq.Socket] = None
        self._poller: Optional[zmq.Poller] = None  # scheduler, storage, wake pipe
        # storage, wake pipe: while a user thread reads the scheduler socket, or it is down
        self._side_poller: Optional[zmq.Poller] = None

        # The scheduler socket's reader (see the module docstring), guarded by _rx_lock.
        self._rx_lock = threading.Lock()
        self._rx_owner = _AGENT
        self._rx_wanted = False  # a user thread waits for the agent to let go of the socket
        self._rx_changed = 0.0  # monotonic time of the last change of reader
        self._rx_released_at = -1.0  # monotonic time a user thread last let go of the socket
        # The conditions of the futures user threads wait on in wait_until (one entry per waiting
        # call): notified whenever the socket becomes free, so that one of them takes it.
        self._socket_waiters: List[threading.Condition] = []
        self._agent_sleeps_long = False  # the agent polls without a short deadline: wake it on release
        self._reader_wake_r, self._reader_wake_w = os.pipe()  # wakes the user thread that reads the socket
        os.set_blocking(self._reader_wake_r, False)
        os.set_blocking(self._reader_wake_w, False)
        self._inbox: Deque[tuple] = collections.deque()  # (frame, top_level) a user thread left to the agent
        self._reader_more = False
        self._reader_pollers = threading.local()  # each user thread's poll object for reading the socket

        self._tasks: Dict[bytes, object] = {}  # task id -> entry (see Batch)
        self._graphs: Dict[bytes, GraphEntry] = {}
        self._graph_nodes: Dict[bytes, bytes] = {}
        self._storage_requests: Dict[int, tuple] = {}
        # Object id of every set not yet acknowledged -> the batches (other than its own) whose
        # tasks read it. Changed under _sock_lock (submit_batch reads it there).
        self._in_flight: Dict[bytes, list] = {}
        self._refused: Dict[bytes, BaseException] = {}  # bounded by _REFUSED_LIMIT, oldest first out
        # A weak reference to the client's method that forgets refused object ids (its caches).
        self.on_refused: Optional[Callable[[], Optional[Callable[[List[bytes]], None]]]] = None
        # (entry, error) of refused tasks, failed once _sock_lock is released: failing a future
        # runs its callbacks, user code that must not run holding the socket.
        self._to_fail: List[tuple] = []
        # (deadline, request id) of result fetches, in deadline order (one timeout for all): a
        # fetch the server never answers fails at its deadline instead of leaving result() waiting.
        self._fetch_deadlines: Deque[tuple] = collections.deque()
        self._outbox: Deque[Batch] = collections.deque()
        self._to_release: List[bytes] = []
        self._owned: set = set()
        self._shutdown_waiter: Optional[list] = None

        self._last_contact = time.monotonic()
        self._heartbeat_sent_at: Optional[float] = None
        self._next_heartbeat = 0.0
        self._latency_us = 0
        self._process = None

    # ---------------------------------------------------------------- user-thread side

    def post(self, command: tuple) -> None:
        if self.stopped.is_set():
            raise ClientQuitException("client is already stopped.")
        self._commands.append(command)
        self._wake()

    def connect_error(self) -> Optional[str]:
        """Why the scheduler was never reached, while it has not been."""
        return None if self._ever_connected else self._connect_error

    def cancel_future(self, future) -> None:
        self.post(("cancel", future))

    def fetch_future(self, future, object_id: bytes, failed: bool) -> None:
        try:
            self.post(("fetch", future, object_id, failed))
        except ClientQuitException as error:
            future._fail(error)

    # ---------------------------------------------------------------- thread body

    def run(self) -> None:
        stop: Optional[_Stop] = None
        try:
            self._setup()
            self._loop()
        except _Stop as reason:
            stop = reason
        except BaseException as error:  # keep the thread's death visible to the user
            logger.exception("scaler client agent failed")
            stop = _Stop(ClientQuitException(f"client agent failed: {error!r}"), False)
        finally:
            self._teardown(stop)

    def _setup(self) -> None:
        self._context = zmq.Context(io_threads=1)
        # ValueError for a bad address. A send blocked for timeout_seconds means a dead scheduler.
        self._scheduler = ZmtpDealer(self._connect_address, self.client_id, send_timeout=self._timeout)
        self._scheduler_fd = self._scheduler.fileno()
        self._poller = zmq.Poller()
        self._poller.register(self._scheduler_fd, zmq.POLLIN)
        self._side_poller = zmq.Poller()
        self._connect(time.monotonic())
        try:
            import psutil

            self._process = psutil.Process()
            self._process.cpu_percent(None)
        except Exception:
            self._process = None
        self._last_contact = time.monotonic()
        self._send_heartbeat(time.monotonic())

    def _loop(self) -> None:
        link = self._scheduler
        lock = self._sock_lock
        while True:
            if self._inbox:
                self._drain_inbox()
            readable = False
            if not link.connected:
                if self._ever_connected:
                    # A TCP connection does not break while both ends live: the scheduler is
                    # gone, and its tasks and objects with it. Stop now rather than after
                    # timeout_seconds, with the TimeoutError (subclass) that user code expects then.
                    raise _Stop(SchedulerLostError(self._lost_reason()), False)
                now = time.monotonic()
                if now >= self._next_connect:
                    with lock:
                        self._connect(now)
                if link.connected:
                    readable = True  # the handshake may have read messages: look at once
                    events = dict(self._side_poller.poll(0))
                else:
                    wait = max(0.0, min(self._next_connect, self._next_heartbeat) - now)
                    events = dict(self._side_poller.poll(int(wait * 1000) + 1))
            elif self._rx_owner is _AGENT:
                # Bytes already read may hold messages: look at them before sleeping on the socket.
                with lock:
                    readable = link.has_message()
                if readable:
                    events = dict(self._poller.poll(0))
                else:
                    events = dict(self._poller.poll(self._sleep_ms(time.monotonic())))
            else:
                events = dict(self._side_poller.poll(self._side_sleep_ms()))
                self._agent_sleeps_long = False
            if readable or self._scheduler_fd in events:
                self._drain_scheduler()
                if len(self._tasks) >= _COALESCE_OUTSTANDING:
                    # Many results to come: let them gather for a moment instead of waking for
                    # each small message (a wake-up costs more CPU than handling a result).
                    time.sleep(_COALESCE_SECONDS)
            if self._storage is not None and self._storage in events:
                self._drain_storage()
                self._nudge_reader()  # a fetched result may be the one the reading thread waits for
            if self._wake_r in events:
                self._drain_commands()
            self._pass_socket(time.monotonic())
            if self._to_release:
                with lock:
                    self._flush_release()
            now = time.monotonic()
            if now - self._last_contact > self._timeout:
                if self._ever_connected:
                    raise _Stop(SchedulerLostError(f"scheduler at {self._address} silent for more than "
                                                   f"{self._timeout:g} seconds"), False)
                reason = (f"no scheduler reached at {self._address} in {self._timeout:g} seconds "
                          f"({self._connect_error or 'no answer'})")
                raise _Stop(TimeoutError(reason), False)
            if now >= self._next_heartbeat:
                self._send_heartbeat(now)
            if self._fetch_deadlines and now >= self._fetch_deadlines[0][0]:
                self._expire_fetches(now)

    def _sleep_ms(self, now: float) -> int:
        wait_ms = max(0, int((self._next_heartbeat - now) * 1000) + 1)
        return min(wait_ms, 1000)

    def _side_sleep_ms(self) -> int:
        """How long to poll while a user thread reads the scheduler socket, or nobody does."""
        now = time.monotonic()
        with self._rx_lock:
            if self._rx_owner is None:
                return max(0, int((self._rx_changed + _RECLAIM_SECONDS - now) * 1000) + 1)
            if now - self._rx_released_at < _RECENT_SECONDS:
                return max(1, int(_RECLAIM_SECONDS * 1000))
            self._agent_sleeps_long = True  # read under _rx_lock by a releasing user thread
        return self._sleep_ms(now)

    def _connect(self, now: float) -> None:
        """Try to (re)connect the scheduler socket (agent thread, under _sock_lock or before any
        user thread may use it). Sends what was queued while it was down."""
        try:
            self._scheduler.connect(min(_CONNECT_SECONDS, max(self._timeout, 0.05)))
        except (OSError, ZmtpError, ConnectionLost) as error:
            reason = str(error) or type(error).__name__
            if isinstance(error, ZmtpError) and reason != self._connect_error:
                logger.warning("scaler client: %s", reason)  # once, not on every try
            self._connect_error = reason
            self._next_connect = now + _CONNECT_RETRY_SECONDS
            return
        self._ever_connected = True
        self._connect_error = None

    def _lost_reason(self) -> str:
        reason = f"lost the connection to the scheduler at {self._address} ({self._lost or 'closed'})"
        if self._largest_frame > _NOTED_FRAME_BYTES:
            reason += (f"; this client sent a message of {self._largest_frame / (1 << 20):.1f} MiB, and a scheduler "
                       "closes the connection of a peer whose message is over its max_message_size "
                       "(64M unless set with --max-message-size or [scheduler] max_message_size)")
        return reason

    def _on_connection_lost(self, error: ConnectionLost) -> None:
        """The scheduler connection broke (seen by any thread, under _sock_lock): the agent
        stops the client when it next looks (see _loop)."""
        if self._lost is None:
            self._lost = error
            logger.error("scaler client: %s", error)

    def _pass_socket(self, now: float) -> None:
        """Hand the scheduler socket to a user thread that asked for it, or take back a socket
        nobody has read for _RECLAIM_SECONDS."""
        changed = False
        with self._rx_lock:
            owner = self._rx_owner
            if owner is _AGENT:
                if self._rx_wanted and not self._inbox and self._scheduler.connected:
                    self._rx_owner, self._rx_changed, self._rx_wanted = None, now, False
                    changed = True
            elif owner is None and not self._rx_wanted and now - self._rx_changed >= _RECLAIM_SECONDS:
                self._rx_owner, self._rx_changed = _AGENT, now
                changed = bool(self._socket_waiters)  # one handed over and not taken in time: ask again
        if changed:
            self._notify_socket_waiters()

    def _drain_inbox(self) -> None:
        """Messages a user thread read but left to the agent, in the order they arrived."""
        inbox = self._inbox
        while inbox:
            frame, top_level = inbox.popleft()
            self._on_scheduler_frame(frame, top_level)

    def _teardown(self, stop: Optional[_Stop]) -> None:
        reason = stop.reason if stop is not None else ClientQuitException("client agent stopped")
        self.exit_reason = reason
        self.stopped.set()
        self._direct = False
        with self._sock_lock:
            pass  # a user thread using the socket is done; none starts now (stopped is set)
        self._nudge_reader()  # a user thread polling the scheduler socket looks again, and leaves
        if not self.storage_ready.is_set():
            self.storage_ready.set()  # the constructor reads exit_reason
        # Resolve everything still pending, so that no user thread waits forever.
        if self._to_fail:
            self._fail_refused()
        futures = list(self._tasks.values())
        for graph in self._graphs.values():
            futures.append(graph.umbrella)
            futures.extend(graph.targets.values())
        for request in self._storage_requests.values():
            if request[0] == "get":
                futures.append(request[1])
            elif request[0] == "set" and request[1].stored is not None:
                request[1].error = request[1].error or reason
                request[1].stored.set()
        for batch in self._outbox:
            futures.extend(batch.entries)
            if batch.graph is not None:
                futures.append(batch.graph.umbrella)
                futures.extend(batch.graph.targets.values())
        while self._commands:
            command = self._commands.popleft()
            if command[0] == "submit":
                futures.extend(command[1].entries)
                if command[1].graph is not None:
                    futures.extend(command[1].graph.targets.values())
            elif command[0] in ("disconnect", "clear"):
                command[1].set()
            elif command[0] == "shutdown":
                command[1].append((False, "client stopped"))
                command[2].set()
            elif command[0] == "fetch":
                futures.append(command[1])
            elif command[0] == "store":
                command[1].error = reason
                command[1].stored.set()
        if self._shutdown_waiter is not None:
            # The scheduler closes every connection as it stops: its answer to an accepted
            # shutdown can be lost with them (it exits right after sending it). A connection lost
            # (or gone silent) while the request is outstanding is that stop, not a failure of it.
            accepted = isinstance(reason, SchedulerLostError)
            self._shutdown_waiter[0].append((accepted, str(reason)))
            self._shutdown_waiter[1].set()
        cancel = stop is not None and stop.cancel_futures
        for future in futures:
            try:
                if cancel:
                    future.set_canceled()
                else:
                    future._fail(reason)
            except Exception:
                pass
        self._tasks.clear()
        self._graphs.clear()
        for sock in (self._scheduler, self._storage):
            if sock is not None:
                try:
                    sock.close()
                except Exception:
                    pass
        if self._context is not None:
            try:
                self._context.term()
            except Exception:
                pass
        for fd in (self._wake_r, self._wake_w, self._reader_wake_r, self._reader_wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    # ---------------------------------------------------------------- scheduler messages

    def _send(self, frame: bytes) -> None:
        with self._sock_lock:
            if len(frame) > self._largest_frame:
                self._largest_frame = len(frame)  # before: the send itself may fail on it
            try:
                self._scheduler.send(frame)
            except ConnectionLost as error:
                self._send_failed(error)

    def _send_failed(self, error: ConnectionLost) -> None:
        """A send found the scheduler connection broken (under _sock_lock); the agent stops the
        client, failing every pending future."""
        self._on_connection_lost(error)
        if threading.get_ident() != self.ident:
            self._nudge_reader()  # a user thread reading the socket gives it back to the agent
            self._wake()

    def _nudge_reader(self) -> None:
        """Wake the user thread that reads the scheduler socket, if one does."""
        owner = self._rx_owner
        if owner is not _AGENT and owner is not None:
            try:
                os.write(self._reader_wake_w, b"x")
            except OSError:
                pass  # the pipe is full (the reader will look anyway) or closed (stopped)

    def _wake(self) -> None:
        """Wake the agent thread (once until it drains the pipe)."""
        if not self._wake_pending:
            self._wake_pending = True
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass

    def submit_batch(self, batch: Batch) -> None:
        """Send ``batch`` (from a user thread). A batch of tasks only (no objects to store, no
        graph) goes out from this thread when the agent has nothing unsent: one thread hop less
        per submission. Anything else is posted to the agent."""
        if not batch.sets and not batch.owned and batch.graph is None and self._direct:
            sock = self._scheduler
            with self._sock_lock:
                if not self._commands and not self._outbox and not self.stopped.is_set() and not self._watched(batch):
                    self._tasks.update(zip(batch.task_ids, batch.entries))
                    for frame in w.batched(batch.frames):
                        try:
                            sock.send(frame)
                        except ConnectionLost as error:
                            self._send_failed(error)  # the agent stops the client
                    return
        self.post(("submit", batch))

    def _watched(self, batch: Batch) -> bool:
        """Whether ``batch`` reads an object whose set is unacknowledged or was refused (under
        _sock_lock): then the agent handles it (see _submit)."""
        in_flight, refused = self._in_flight, self._refused
        if not in_flight and not refused:
            return False
        return any(oid in in_flight or oid in refused for oid in batch.depends)

    def store_wait(self, batch: Batch, timeout: float) -> None:
        """Wait (user thread) until the "store" command of ``batch`` is acknowledged; raises the
        ObjectStorageException of a refusal, or one after ``timeout`` seconds without an answer
        (the object is then deleted if it lands later, and never announced)."""
        if not batch.stored.wait(timeout):
            with self._sock_lock:
                if not batch.stored.is_set():
                    batch.abandoned = True
                    raise ObjectStorageException(f"object storage at {self.storage_address} did not acknowledge "
                                                 f"an object within {timeout:g} seconds")
        if batch.error is not None:
            raise batch.error

    def _send_heartbeat(self, now: float) -> None:
        self._next_heartbeat = now + self._heartbeat_interval
        if self._heartbeat_sent_at is not None:
            return  # at most one heartbeat outstanding
        cpu, rss = 0, 0
        if self._process is not None:
            try:
                cpu = min(int(self._process.cpu_percent(None) * 10), 65535)
                rss = self._process.memory_info().rss
            except Exception:
                pass
        self._send(w.encode(w.CLIENT_HEARTBEAT, {"resource": {"cpu": cpu, "rss": rss}, "latency_us": self._latency_us,
                                                 "nested": self._nested}))
        self._heartbeat_sent_at = now

    def _drain_scheduler(self) -> None:
        lock = self._sock_lock
        for _ in range(_MAX_DRAIN):
            # The lock is not held while a message is handled: that may run user callbacks.
            with lock:
                try:
                    frame = self._recv_one()
                except ConnectionLost as error:
                    self._on_connection_lost(error)
                    return
            if frame is None:
                return
            if frame is not _DROPPED:
                self._on_scheduler_frame(frame, True)

    def _recv_one(self):
        """The next message from the scheduler (under _sock_lock): its one frame, None when none
        has arrived, or _DROPPED for a multi-part message, which is dropped. Raises
        ConnectionLost when the connection broke."""
        frames = self._scheduler.recv()
        if frames is None:
            return None
        self._last_contact = time.monotonic()
        if len(frames) != 1:
            logger.warning("scaler client: dropped a %d-part message from the scheduler", len(frames))
            return _DROPPED
        return frames[0]

    def _on_scheduler_frame(self, frame, top_level: bool) -> None:
        kind = frame[0] if len(frame) else -1
        if kind == w.TASK_RESULT:
            self._on_task_results((frame,))
            return
        if kind == w.BATCH and top_level:
            # The common Batch, read directly: a list of frames, mostly task results.
            try:
                elements = _unpackb(memoryview(frame)[1:], raw=True)[b"messages"]
                if type(elements) is not list:
                    raise ValueError("Batch without a messages array")
            except Exception as error:
                logger.warning("scaler client: dropped a malformed message from the scheduler: %s", error)
                return
            self._on_task_results(elements)
            return
        self._on_scheduler_frame_generic(frame, top_level)

    def _on_scheduler_frame_generic(self, frame, top_level: bool) -> None:
        try:
            kind, body = w.decode(frame)
            if kind == w.BATCH:
                elements = body.get("messages")
                if not top_level or not isinstance(elements, list):
                    raise ValueError("nested Batch" if not top_level else "Batch without a messages array")
        except Exception as error:
            logger.warning("scaler client: dropped a malformed message from the scheduler: %s", error)
            return
        if kind == w.BATCH:
            # Each element as if it had arrived alone, in order; a bad one is dropped on its own.
            for element in elements:
                if isinstance(element, bytes):
                    self._on_scheduler_frame(element, False)
                else:
                    logger.warning("scaler client: dropped a malformed message from the scheduler: Batch element is not bin")
            return
        try:
            self._on_scheduler_message(kind, body)
        except _Stop:
            raise
        except Exception:
            logger.exception("scaler client: error handling message kind %d", kind)

    def _on_task_results(self, frames) -> None:
        """Frames from the scheduler (a Batch's elements, or one TaskResult), handled in order.

        The common TaskResult (an inline outcome of one of this client's tasks) is read with raw
        keys (str keys cost as much as the rest of the map) and resolved here; every other frame
        takes the generic path."""
        tasks = self._tasks
        for frame in frames:
            if type(frame) is not bytes:
                logger.warning("scaler client: dropped a malformed message from the scheduler: Batch element is not bin")
                continue
            result = self._plain_result(frame)
            if result is None:
                self._on_scheduler_frame_generic(frame, False)
                continue
            entry = tasks.pop(result[0], None)
            if entry is not None:  # else a graph's intermediate node, or a task already settled
                self._resolve(entry, result)

    def _plain_result(self, frame) -> Optional[tuple]:
        """(task id, body, inline payload, failed) if ``frame`` is a TaskResult that carries its
        outcome inline and belongs to no graph of this client; else None."""
        if frame[:1] != _TASK_RESULT_KIND:
            return None
        try:
            body = _unpackb(memoryview(frame)[1:], raw=True)
            task_id = body[b"task_id"]
            result_type = body[b"type"]
            inline = body.get(b"inline")
            if (
                (result_type == 0 or result_type == 1) and type(inline) is bytes and inline  # success, failed
                and not body.get(b"results") and task_id not in self._graphs
            ):
                return task_id, body, inline, result_type == 1
        except Exception:
            pass
        return None

    def _resolve(self, entry, result: tuple) -> None:
        _, body, inline, failed = result
        try:
            if entry._release:
                self._release(entry._release)
            if type(entry) is MapTask:
                entry.call.set_payload(entry.index, inline, failed)
            else:
                # The raw map: the future makes a ProfileResult of it if profiling_info() is asked.
                profile = (body.get(b"profile") or {}) if entry._wants_profile else None
                entry._set_payload(inline, failed, profile)
        except Exception:
            logger.exception("scaler client: error handling a task result")

    # ---------------------------------------------------------------- a user thread reading results

    def wait_until(self, done: Callable[[], bool], timeout: Optional[float], condition: threading.Condition) -> None:
        """Block the calling user thread until ``done()`` or ``timeout``. While it waits, the thread
        reads the scheduler socket itself when it can (see the module docstring); otherwise it
        sleeps on ``condition``, which the agent notifies."""
        if not self._direct or threading.get_ident() == self.ident:
            with condition:
                condition.wait_for(done, timeout)
            return
        me = threading.get_ident()
        deadline = None if timeout is None else time.monotonic() + timeout
        socket_free = self._socket_takeable
        with self._rx_lock:
            self._socket_waiters.append(condition)
        try:
            while not done() and not self.stopped.is_set():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return
                ask = False
                with self._rx_lock:
                    owner = self._rx_owner
                    if owner is None:
                        self._rx_owner = me
                        self._rx_changed = time.monotonic()
                    elif owner is _AGENT and not self._rx_wanted:
                        self._rx_wanted = ask = True
                if owner is None:
                    self._read_results(done, deadline)
                    continue
                if ask:
                    self._wake()
                with condition:
                    condition.wait_for(lambda: done() or socket_free(), remaining)
        finally:
            with self._rx_lock:
                self._socket_waiters.remove(condition)
        if not done():  # stopped: the agent resolves every future as it stops
            with condition:
                condition.wait_for(done, None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _socket_takeable(self) -> bool:
        """Whether a waiting thread should look again: the socket is free, or the agent holds it
        and nobody has asked for it (it took the socket back before the asking thread, woken by
        the hand-over, got to it: without a new ask that thread would sleep until its result
        came by the agent)."""
        owner = self._rx_owner
        return owner is None or (owner is _AGENT and not self._rx_wanted)

    def _read_results(self, done: Callable[[], bool], deadline: Optional[float]) -> None:
        """Read the scheduler socket from this user thread (its reader now) until ``done()``, the
        deadline, or a message that only the agent may handle; then let go of the socket."""
        me = threading.get_ident()
        poller = getattr(self._reader_pollers, "poller", None)
        if poller is None:
            poller = self._reader_pollers.poller = select.poll()
            poller.register(self._scheduler_fd, select.POLLIN)
            poller.register(self._reader_wake_r, select.POLLIN)
        # Read before the first poll only if bytes already read may hold a message (or the
        # connection is down, which the read reports): else the kernel has nothing the poll would
        # not see, and a read that finds nothing costs as much as one that finds a result.
        link = self._scheduler
        readable = link.has_message() or not link.connected
        try:
            while True:
                if readable:
                    with self._sock_lock:
                        if self.stopped.is_set() or self._read_scheduler(done):
                            return
                if done() or self.stopped.is_set():
                    return
                if deadline is None:
                    wait_ms = 1000
                else:
                    wait_ms = int((deadline - time.monotonic()) * 1000) + 1
                    if wait_ms <= 0:
                        return
                more = self._reader_more  # _MAX_DRAIN messages read and more waiting
                self._reader_more = False
                readable = more
                for fd, _ in poller.poll(0 if more else min(wait_ms, 1000)):
                    if fd == self._reader_wake_r:
                        readable = True  # a nudge: look (the connection may be down)
                        try:
                            while os.read(fd, 4096):
                                pass
                        except OSError:
                            pass  # empty, or closed as the agent stopped
                    else:
                        readable = True
        finally:
            wake = False
            with self._rx_lock:
                if self._rx_owner == me:
                    self._rx_owner = None
                    self._rx_changed = self._rx_released_at = time.monotonic()
                    wake = self._agent_sleeps_long
            if wake:
                self._wake()
            self._notify_socket_waiters()  # another waiting thread may read the socket now

    def _notify_socket_waiters(self) -> None:
        with self._rx_lock:
            waiters = tuple(self._socket_waiters)
        for condition in waiters:
            with condition:
                condition.notify_all()

    def _read_scheduler(self, done: Callable[[], bool]) -> bool:
        """Read what the scheduler sent and resolve plain task results in this user thread
        (under _sock_lock). Returns True once it has left a message, and with it the socket, to
        the agent: anything but a plain result, or a result whose future has callbacks or waiters
        (callbacks run in the agent thread), or a broken connection. Order is kept: everything
        after such a message goes to the agent too. It stops once ``done()``: whoever reads the
        socket next looks at what is left first."""
        for _ in range(_MAX_DRAIN):
            try:
                frame = self._recv_one() if self._scheduler.connected else _LOST
            except ConnectionLost as error:
                self._on_connection_lost(error)
                frame = _LOST  # the agent stops the client
            if frame is None:
                break
            if frame is _DROPPED:
                continue
            left = [] if frame is _LOST else self._read_frame(frame)
            if left is not None:
                self._inbox.extend(left)
                with self._rx_lock:
                    self._rx_owner, self._rx_changed = _AGENT, time.monotonic()
                self._wake()
                return True
            if done():
                break
        else:
            self._reader_more = True  # _MAX_DRAIN messages read, more waiting: look again at once
        if self._to_release:
            self._flush_release()
        return False

    def _read_frame(self, frame) -> Optional[list]:
        """Resolve the plain results in ``frame``; returns what is left for the agent, as
        (frame, top_level) pairs, or None."""
        if frame[:1] == _BATCH_KIND:
            try:
                elements = _unpackb(memoryview(frame)[1:], raw=True)[b"messages"]
                if type(elements) is not list:
                    raise ValueError("Batch without a messages array")
            except Exception:
                return [(frame, True)]  # the agent reports it
            first = self._read_results_of(elements)
            return None if first is None else [(element, False) for element in elements[first:]]
        return None if self._read_results_of((frame,)) is None else [(frame, True)]

    def _read_results_of(self, frames) -> Optional[int]:
        """Resolve ``frames`` in order while they are plain results of futures without callbacks
        or waiters; returns the index of the first one left to the agent, or None."""
        tasks = self._tasks
        for index, frame in enumerate(frames):
            if type(frame) is not bytes:
                return index
            result = self._plain_result(frame)
            if result is None:
                return index
            entry = tasks.get(result[0])
            if entry is not None:
                if type(entry) is not MapTask and entry._listened:
                    return index
                del tasks[result[0]]
                self._resolve(entry, result)
        return None

    def _on_scheduler_message(self, kind: int, body: dict) -> None:
        if kind == w.TASK_RESULT:
            self._on_task_result(body)
        elif kind == w.CLIENT_HEARTBEAT_ECHO:
            self._on_echo(body)
        elif kind == w.TASK_CANCEL_CONFIRM:
            self._on_cancel_confirm(body)
        elif kind == w.TASK_LOG:
            stream = sys.stderr if body.get("type") == w.LOG_STDERR else sys.stdout
            stream.write(body.get("content", ""))
            stream.flush()
        elif kind == w.CLIENT_SHUTDOWN_RESPONSE:
            accepted = bool(body.get("accepted", False))
            if self._shutdown_waiter is not None:
                results, event = self._shutdown_waiter
                self._shutdown_waiter = None
                results.append((accepted, body.get("reason", "")))
                event.set()
            if accepted:
                raise _Stop(ClientShutdownException("scheduler shut down on this client's request"), True)
        else:
            logger.warning("scaler client: unexpected message kind %d from the scheduler dropped", kind)

    def _on_echo(self, body: dict) -> None:
        now = time.monotonic()
        if self._heartbeat_sent_at is not None:
            self._latency_us = min(int((now - self._heartbeat_sent_at) * 1e6 / 2), 2**32 - 1)
            self._heartbeat_sent_at = None
        if self._storage is None:
            address = body.get("object_storage") or {}
            host, port = address.get("host", ""), int(address.get("port", 0))
            if not port:
                return
            if host in ("", "0.0.0.0", "*", "::"):
                host = self._address.split("://", 1)[-1].rsplit(":", 1)[0]
            self.storage_address = f"tcp://{host}:{port}"
            sock = self._context.socket(zmq.DEALER)
            sock.setsockopt(zmq.IDENTITY, b"storage-client|" + self.client_id)
            sock.setsockopt(zmq.SNDHWM, 0)
            sock.setsockopt(zmq.RCVHWM, 0)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self.storage_address)
            self._storage = sock
            self._poller.register(sock, zmq.POLLIN)
            self._poller.register(self._wake_r, zmq.POLLIN)
            self._side_poller.register(sock, zmq.POLLIN)
            self._side_poller.register(self._wake_r, zmq.POLLIN)
            self._direct = self._direct_allowed
            self.storage_ready.set()

    @staticmethod
    def _profile(body: dict) -> ProfileResult:
        p = body.get("profile") or {}
        return ProfileResult(
            duration_s=float(p.get("duration_s", 0.0)),
            memory_peak=int(p.get("memory_peak", 0)),
            cpu_time_s=float(p.get("cpu_time_s", 0.0)),
        )

    @staticmethod
    def _error_for(result_type: int, message: str, task_id: bytes) -> BaseException:
        text = message or f"task {task_id.hex()}"
        if result_type == w.RESULT_FAILED_WORKER_DIED:
            return WorkerDiedError(text)
        if result_type == w.RESULT_FAILED_TIMEOUT:
            return TaskTimeoutError(message or f"task {task_id.hex()} ran longer than the task timeout")
        if result_type == w.RESULT_FAILED_PROCESSOR_DIED:
            return ProcessorDiedError(text)
        if result_type == w.RESULT_REJECTED:
            return TaskRejectedError(text)
        return Exception(f"task {task_id.hex()} failed: {message or 'no result object'}")

    def _on_task_result(self, body: dict) -> None:
        task_id = body.get("task_id", b"")
        result_type = body.get("type", w.RESULT_FAILED)
        graph = self._graphs.get(task_id)
        if graph is not None:
            self._on_graph_result(graph, result_type, body.get("message", ""))
            return
        future = self._tasks.pop(task_id, None)
        if future is None:
            return  # a graph's intermediate node, or a task already settled
        profile = self._profile(body) if future._wants_profile else None
        results = body.get("results") or []
        if future._release:
            self._release(future._release)
        if result_type in (w.RESULT_SUCCESS, w.RESULT_FAILED) and results:
            object_id = results[0]
            failed = result_type == w.RESULT_FAILED
            inline = body.get("inline") or b""
            if inline:
                self._release_result(future._group_task_id, object_id)
                future._set_payload(inline, failed, profile)
            elif future._mark_ready(object_id, failed, profile):
                self._fetch(future, object_id, failed)
            else:
                self._owned.add(object_id)  # fetched later, or released by clear/disconnect
        elif result_type in (w.RESULT_SUCCESS, w.RESULT_FAILED) and body.get("inline"):
            # Inline-only outcome (the task did not ask to keep its result): no object to release.
            future._set_payload(body["inline"], result_type == w.RESULT_FAILED, profile)
        elif result_type == w.RESULT_SUCCESS:
            future._set_value(None, profile)
        else:
            error = self._error_for(result_type, body.get("message", ""), task_id)
            future._fail(error, profile if result_type != w.RESULT_FAILED_WORKER_DIED else None)
            if future._group_task_id is not None:
                g = self._graphs.get(future._group_task_id)
                if g is not None and g.error is None:
                    g.error = error

    def _on_graph_result(self, graph: GraphEntry, result_type: int, message: str) -> None:
        self._forget_graph(graph)
        if result_type == w.RESULT_SUCCESS:
            graph.umbrella._set_value(None)
            error = None
        else:
            error = graph.error or self._error_for(result_type, message, graph.graph_id)
            graph.umbrella._fail(error)
        for target_id, future in graph.targets.items():
            if self._tasks.pop(target_id, None) is not None:
                future._fail(error or Exception(f"graph {graph.graph_id.hex()} ended without this target's result"))

    def _forget_graph(self, graph: GraphEntry) -> None:
        self._graphs.pop(graph.graph_id, None)
        for node in graph.nodes:
            self._graph_nodes.pop(node, None)
        if graph.release:
            self._release(graph.release)

    def _on_cancel_confirm(self, body: dict) -> None:
        task_id = body.get("task_id", b"")
        confirm = body.get("type", w.CANCEL_CANCELED)
        if confirm == w.CANCEL_FAILED:
            return  # the task keeps running; its result follows
        graph = self._graphs.get(task_id)
        if graph is not None:
            self._forget_graph(graph)
            for target_id, future in graph.targets.items():
                self._tasks.pop(target_id, None)
                future.set_canceled()
            graph.umbrella.set_canceled()
            return
        entry = self._tasks.pop(task_id, None)
        if entry is None:
            return
        if entry._release:
            self._release(entry._release)
        entry.set_canceled()

    # ---------------------------------------------------------------- object storage

    def _storage_send(self, header: bytes, payload=None) -> None:
        if payload is None:
            self._storage.send(header)
        else:
            self._storage.send(header, zmq.SNDMORE)
            self._storage.send(payload, copy=len(payload) < 65536)

    def _fetch(self, future, object_id: bytes, failed: bool) -> None:
        request_id = next(self.request_ids)
        self._storage_requests[request_id] = ("get", future, object_id, failed)
        deadlines = self._fetch_deadlines
        if len(deadlines) > 2 * len(self._storage_requests) + 1024:  # most were answered long ago
            requests = self._storage_requests
            self._fetch_deadlines = deadlines = collections.deque(e for e in deadlines if e[1] in requests)
        deadlines.append((time.monotonic() + _storage.FETCH_TIMEOUT_SECONDS, request_id))
        self._storage_send(w.encode(w.OBJECT_REQUEST, {"request_id": request_id, "type": w.OBJ_GET, "object_id": object_id}))

    def _expire_fetches(self, now: float) -> None:
        """Fail the result fetches past their deadline (a late reply is then ignored)."""
        deadlines = self._fetch_deadlines
        while deadlines and now >= deadlines[0][0]:
            _, request_id = deadlines.popleft()
            request = self._storage_requests.get(request_id)
            if request is None or request[0] != "get":
                continue  # answered in time
            del self._storage_requests[request_id]
            _, future, object_id, _ = request
            future._fail(ObjectNotFoundError(f"result {object_id.hex()} of task {future._task_id.hex()} not received "
                                             f"from object storage within {_storage.FETCH_TIMEOUT_SECONDS:g} s"))

    def _drain_storage(self) -> None:
        sock = self._storage
        for _ in range(_MAX_DRAIN):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)  # zmq.Frames, copied below if at all
            except zmq.Again:
                return
            try:
                kind, body = w.decode(frames[0].buffer)
            except Exception as error:
                logger.warning("scaler client: malformed object storage reply dropped: %s", error)
                continue
            request = self._storage_requests.pop(body.get("request_id", -1), None)
            if request is None:
                continue
            response = body.get("type")
            if request[0] == "set":
                with self._sock_lock:  # _in_flight and _refused are read by submit_batch
                    self._on_set_reply(request[1], request[2], response == w.OBJ_SET_OK, body.get("error", ""))
                if self._to_fail:
                    self._fail_refused()
            elif request[0] == "get":
                _, future, object_id, failed = request
                if response == w.OBJ_GET_OK:
                    payload = _result_payload(future, frames[1]) if len(frames) > 1 else b""
                    self._release_result(future._group_task_id, object_id)
                    self._owned.discard(object_id)
                    future._set_payload(payload, failed, None)
                elif response == w.OBJ_NOT_FOUND:
                    future._fail(ObjectNotFoundError(f"result {object_id.hex()} of task {future._task_id.hex()} is "
                                                     f"missing in object storage: {body.get('error', '')}"))
                else:
                    future._fail(ObjectStorageException(f"fetching result {object_id.hex()} failed: {body.get('error', '')}"))

    def _on_set_reply(self, batch: Batch, object_id: bytes, ok: bool, error_text: str) -> None:
        """Storage answered the set of ``object_id`` (a set of ``batch``), under _sock_lock."""
        dependents = self._in_flight.pop(object_id, None) or ()
        if ok:
            if batch.stored is not None:
                batch.unacked -= 1
                if batch.unacked == 0 and batch.error is None:
                    self._stored(batch)
            return
        # The storage's own words name the reason (for the memory limit: "set refused: storing N
        # bytes would exceed the memory limit of M bytes (U bytes in use)").
        error = ObjectStorageException(f"object storage refused object {object_id.hex()}: {error_text}")
        if batch.error is None:  # once per batch, not per object: a map may store thousands
            logger.error("scaler client: %s", error)
        refused = self._refused
        refused[object_id] = error
        while len(refused) > _REFUSED_LIMIT:
            del refused[next(iter(refused))]
        self._owned.discard(object_id)
        if batch.stored is None:
            self._release((object_id,))  # announced with its batch: the scheduler forgets it
        forget = self.on_refused() if self.on_refused is not None else None
        if forget is not None:
            try:
                forget([object_id])
            except Exception:
                logger.exception("scaler client: error forgetting a refused object")
        self._refuse_batch(batch, error)
        for other in dependents:
            self._refuse_batch(other, error)

    def _refuse_batch(self, batch: Batch, error: BaseException) -> None:
        """Fail every task of ``batch`` with ``error``: cancel what was sent, release what it
        stored for itself (its arguments, a graph's data), and wake a waiting send_object."""
        if batch.error is not None:
            return
        batch.error = error
        for task_id, entry in zip(batch.task_ids, batch.entries):
            if self._tasks.pop(task_id, None) is not None:
                self._send_after_outbox(w.encode(w.TASK_CANCEL, {"task_id": task_id, "force": True}))
                if entry._release:
                    self._release(entry._release)
        to_fail = self._to_fail
        to_fail.extend((entry, error) for entry in batch.entries)
        graph = batch.graph
        if graph is not None:
            if graph.graph_id in self._graphs:
                self._send_after_outbox(w.encode(w.TASK_CANCEL, {"task_id": graph.graph_id, "force": True}))
                self._forget_graph(graph)
            to_fail.append((graph.umbrella, error))
            to_fail.extend((future, error) for future in graph.targets.values())
        batch.task_ids, batch.entries = [], []
        if batch.stored is not None:
            batch.stored.set()

    def _fail_refused(self) -> None:
        """Fail the entries _refuse_batch collected (agent thread, not holding _sock_lock)."""
        to_fail, self._to_fail = self._to_fail, []
        for entry, error in to_fail:
            try:
                entry._fail(error)
            except Exception:
                logger.exception("scaler client: error failing a refused task")

    def _stored(self, batch: Batch) -> None:
        """Every set of a "store" batch was acknowledged (under _sock_lock): announce it."""
        if batch.abandoned:  # its user thread gave up: nobody holds a reference to it
            for object_id, _, _ in batch.create_ids:
                request_id = next(self.request_ids)
                self._storage_requests[request_id] = ("delete",)
                self._storage_send(w.encode(w.OBJECT_REQUEST, {"request_id": request_id, "type": w.OBJ_DELETE,
                                                               "object_id": object_id}))
            return
        self._owned.update(batch.owned)
        for frame in batch.frames:
            self._send_after_outbox(frame)
        batch.frames = []
        batch.stored.set()

    def _store(self, batch: Batch) -> None:
        """Store the objects of ``batch`` (send_object, the serializer); they are announced to
        the scheduler once acknowledged (see _stored), so a refused object is never registered."""
        batch.unacked = len(batch.sets)
        for request_id, object_id, header, payload in batch.sets:
            self._storage_requests[request_id] = ("set", batch, object_id)
            self._in_flight[object_id] = []
            self._storage_send(header, payload)
        batch.sets = []
        if batch.unacked == 0:
            self._stored(batch)

    # ---------------------------------------------------------------- commands

    def _drain_commands(self) -> None:
        with self._sock_lock:  # submit_batch sends directly only once this round is out
            self._drain_commands_locked()
        if self._to_fail:
            self._fail_refused()

    def _drain_commands_locked(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        self._wake_pending = False
        commands = self._commands
        while commands:
            command = commands.popleft()
            op = command[0]
            if op == "submit":
                self._submit(command[1])
            elif op == "store":
                self._store(command[1])
            elif op == "cancel":
                self._cancel(command[1])
            elif op == "cancel_tasks":
                self._cancel_tasks(command[1])
            elif op == "fetch":
                _, future, object_id, failed = command
                self._fetch(future, object_id, failed)
            elif op == "release":
                self._release(command[1])
                self._owned.difference_update(command[1])
            elif op == "clear":
                self._clear(command[1], command[2])
            elif op == "disconnect":
                self._disconnect(command[1])
            elif op == "shutdown":
                self._shutdown_waiter = [command[1], command[2]]
                self._send_after_outbox(w.encode(w.CLIENT_DISCONNECT, {"type": w.DISCONNECT_SHUTDOWN}))
        self._flush_outbox()

    def _submit(self, batch: Batch) -> None:
        if batch.depends and (self._in_flight or self._refused):
            for object_id in batch.depends:
                error = self._refused.get(object_id)
                if error is not None:  # nothing of it is sent: its tasks could never run
                    self._refuse_batch(batch, error)
                    return
                dependents = self._in_flight.get(object_id)
                if dependents is not None:
                    dependents.append(batch)
        self._tasks.update(zip(batch.task_ids, batch.entries))
        if batch.graph is not None:
            graph = batch.graph
            self._graphs[graph.graph_id] = graph
            for node in graph.nodes:
                self._graph_nodes[node] = graph.graph_id
        self._owned.update(batch.owned)
        # Object storage parks a get until the object exists, so a task may go out before its
        # objects are acknowledged: sets and task messages are pipelined. A refused set fails the
        # batch's futures and cancels their tasks (see _drain_storage).
        in_flight = self._in_flight
        for request_id, object_id, header, payload in batch.sets:
            self._storage_requests[request_id] = ("set", batch, object_id)
            in_flight[object_id] = []
            self._storage_send(header, payload)
        batch.sets = []
        self._outbox.append(batch)
        # Sent by _drain_commands once every command of this cycle is handled, so that many
        # submits go out together (see _flush_outbox).

    def _flush_outbox(self) -> None:
        outbox = self._outbox
        frames: List[bytes] = []
        while outbox and outbox[0].remaining <= 0:
            frames.extend(outbox.popleft().frames)
        # Several frames (a map's tasks) go out as Batch messages: one send and one wake-up each.
        for frame in w.batched(frames):
            self._send(frame)

    def _send_after_outbox(self, frame: bytes) -> None:
        if self._outbox:
            batch = Batch()
            batch.frames.append(frame)
            self._outbox.append(batch)
        else:
            self._send(frame)

    def _cancel(self, future) -> None:
        target = future._group_task_id if future._group_task_id is not None else future.task_id
        if target in self._tasks or target in self._graphs:
            self._send_after_outbox(w.encode(w.TASK_CANCEL, {"task_id": target, "force": True}))
        elif any(future is entry for b in self._outbox for entry in b.entries):
            self._send_after_outbox(w.encode(w.TASK_CANCEL, {"task_id": target, "force": True}))

    def _cancel_tasks(self, task_ids) -> None:
        """Cancel tasks of a map that the caller gave up on (those not finished yet)."""
        tasks = self._tasks
        for task_id in task_ids:
            if task_id in tasks:
                self._send_after_outbox(w.encode(w.TASK_CANCEL, {"task_id": task_id, "force": True}))

    def _release_result(self, graph_id: Optional[bytes], object_id: bytes) -> None:
        """A graph target's result may still feed other nodes: release it with the graph."""
        graph = self._graphs.get(graph_id) if graph_id is not None else None
        if graph is not None:
            graph.release.append(object_id)
        else:
            self._release((object_id,))

    def _release(self, object_ids) -> None:
        # Under the socket lock: a user thread reading results flushes (swaps) this list too.
        with self._sock_lock:
            self._to_release.extend(object_ids)

    def _flush_release(self) -> None:
        ids, self._to_release = self._to_release, []
        self._send_after_outbox(
            w.encode(w.OBJECT_INSTRUCTION, {"type": w.INSTRUCTION_DELETE, "object_user": self.client_id,
                                            "metadata": {"object_ids": ids, "content_types": [], "names": [], "contents": []}})
        )

    def _pending_futures(self) -> list:
        futures = [(tid, e) for tid, e in self._tasks.items() if e._group_task_id is None]
        futures.extend((g.graph_id, g.umbrella) for g in self._graphs.values())
        return futures

    def _clear(self, done: threading.Event, pending: list) -> None:
        for task_id, future in self._pending_futures():
            pending.append(future)
            self._send_after_outbox(w.encode(w.TASK_CANCEL, {"task_id": task_id, "force": True}))
        if self._owned:
            self._release(list(self._owned))
            self._owned.clear()
        done.set()

    def _disconnect(self, done: threading.Event) -> None:
        try:
            self._flush_outbox()  # what was submitted before the disconnect goes out first
            # Announce objects that were stored but not yet announced, so the scheduler deletes them.
            for batch in self._outbox:
                if batch.frames and batch.create_ids:
                    self._send(batch.frames[0])
            self._outbox.clear()
            for request in list(self._storage_requests.values()):
                batch = request[1] if request[0] == "set" else None
                if batch is not None and batch.stored is not None and batch.frames:
                    self._send(batch.frames[0])  # its set may still land
                    batch.frames = []
            if self._to_release:
                self._flush_release()
            self._send(w.encode(w.CLIENT_DISCONNECT, {"type": w.DISCONNECT_CLIENT}))
        finally:
            done.set()
        raise _Stop(ClientQuitException("client is already stopped."), True)
