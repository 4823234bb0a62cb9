"""The Symphony worker: a scaler worker whose tasks run as IBM Spectrum Symphony tasks.

``scaler_worker_adapter_symphony`` (adapter/symphony) starts it as
``python -m scaler.worker_adapter.symphony.worker --service-name S --base-concurrency N`` with the
worker configuration as JSON on stdin (worker.Config: WorkerID, SchedulerAddress, ...).

It registers with the scheduler like the Go worker agent (docs/protocol.md §7.2: heartbeats after
each echo, listing the tasks it holds, with the echo's seq). For each task it fetches the function
and arguments, sends ``cloudpickle.dumps((fn, *args))`` to the Symphony service through ``soamapi``
(the service runs ``fn, *args = cloudpickle.loads(input); output = cloudpickle.dumps(fn(*args))``, as
upstream's example service does), and reports the outcome. ``--base-concurrency`` tasks run at once;
a task whose priority is strictly higher than that of every task holding a slot runs anyway, which
lets nested tasks (priority = parent's + 1) proceed. The function is wrapped so that a client made
inside it submits at the parent's priority + 1.

A cancel of a queued task cancels it; a forced cancel of a running one drops its result (the
Symphony task itself is not cancelled, as in 1.12.5); without force a running task reports
cancelFailed.

Exit statuses are those of the Go worker (worker/cluster.go): 0 stopped by a signal, 3 the
scheduler asked workers to shut down, 4 death timeout, 5 cannot work (soamapi missing, no session).
This worker has been run against a stand-in ``soamapi`` (python/tests/symphony_standin), never
against a real Symphony cluster.
"""

import argparse
import concurrent.futures
import contextlib
import functools
import hashlib
import heapq
import itertools
import json
import logging
import os
import signal
import sys
import threading
import time
from typing import Dict, List, Optional

import cloudpickle
import zmq

from scaler import protocol as p
from scaler.utility.network_util import pending_frames
from scaler.utility.task_context import reset_current_task, set_current_task

logger = logging.getLogger("scaler.symphony")

INLINE_LIMIT = 4096  # outcomes up to this size travel in TaskResult.inline only (as the processor's)
# Tasks that run above --base-concurrency through the priority bypass, each on a thread of its own: a
# bound on those threads (nested tasks deeper than this wait for a slot).
MAX_BYPASS = 64
LOG_EVERY = 60.0  # seconds: a warning that repeats is logged at most this often, with the count held back
SERIALIZER_SUFFIX = hashlib.md5(b"serializer").digest()
EXIT_SIGNAL, EXIT_SHUTDOWN, EXIT_DEATH, EXIT_FATAL = 0, 3, 4, 5


def _in_task(priority, function, *args):
    """Runs on the Symphony service: the task function, inside a task of ``priority``."""
    token = set_current_task(priority)
    try:
        return function(*args)
    finally:
        reset_current_task(token)


class Symphony:
    """One Symphony session; ``submit(payload)`` returns a concurrent.futures.Future of the
    unpickled output."""

    def __init__(self, soamapi, service_name: str):
        self._soamapi = soamapi
        self._lock = threading.Lock()
        self._futures: Dict[object, concurrent.futures.Future] = {}
        outer = self

        class Message(soamapi.Message):
            def __init__(self, payload: bytes = b""):
                super().__init__()
                self.payload = payload

            def on_serialize(self, stream):
                stream.write_bytearray(bytearray(self.payload))

            def on_deserialize(self, stream):
                self.payload = bytes(stream.read_bytearray())

        class Callback(soamapi.SessionCallback):
            def on_response(self, task_output_handle):
                outer._on_response(task_output_handle)

            def on_exception(self, exception):
                outer._on_exception(exception)

        self._message = Message
        soamapi.initialize()
        self._connection = soamapi.connect(service_name, soamapi.DefaultSecurityCallback("Guest", "Guest"))
        attributes = soamapi.SessionCreationAttributes()
        attributes.set_session_type("RecoverableAllHistoricalData")
        attributes.set_session_name("ScalerSession")
        attributes.set_session_flags(soamapi.SessionFlags.PARTIAL_ASYNC)
        attributes.set_session_callback(Callback())
        self._session = self._connection.create_session(attributes)

    def submit(self, payload: bytes) -> concurrent.futures.Future:
        attributes = self._soamapi.TaskSubmissionAttributes()
        attributes.set_task_input(self._message(payload))
        future: concurrent.futures.Future = concurrent.futures.Future()
        # Under the lock, so that a response cannot arrive before the future is known.
        with self._lock:
            handle = self._session.send_task_input(attributes)
            self._futures[handle.get_id()] = future
        return future

    def _on_response(self, handle):
        with self._lock:
            future = self._futures.pop(handle.get_id(), None)
        if future is None:
            return
        try:
            if handle.is_successful():
                output = self._message()
                handle.populate_task_output(output)
                future.set_result(cloudpickle.loads(output.payload))
            else:
                error = handle.get_exception()
                embedded = getattr(error, "get_embedded_exception", None)
                future.set_exception((embedded() if embedded else None) or RuntimeError(str(error)))
        except BaseException as exc:  # a broken output must still end the task
            if not future.done():
                future.set_exception(exc)

    def _on_exception(self, exception):
        with self._lock:
            futures, self._futures = list(self._futures.values()), {}
        for future in futures:
            if not future.done():
                future.set_exception(exception if isinstance(exception, BaseException) else RuntimeError(str(exception)))

    def close(self):
        for what in (getattr(self, "_session", None), getattr(self, "_connection", None)):
            close = getattr(what, "close", None)
            if close:
                try:
                    close()
                except Exception:
                    pass
        uninitialize = getattr(self._soamapi, "uninitialize", None)
        if uninitialize:
            try:
                uninitialize()
            except Exception:
                pass


class _Repeats:
    """Rate limit of one log line: ``allow()`` is (log it, how many were held back since the last)."""

    def __init__(self, every: float = LOG_EVERY):
        self.every = every
        self.logged = None
        self.quiet = 0

    def allow(self):
        now = time.monotonic()
        if self.logged is not None and now - self.logged < self.every:
            self.quiet += 1
            return False, 0
        repeated, self.logged, self.quiet = self.quiet, now, 0
        return True, repeated


class _Entry:
    __slots__ = ("task", "priority", "seq", "state", "holds", "dropped")

    def __init__(self, task, seq):
        self.task = task
        self.priority = int(task.priority)
        self.seq = seq
        self.state = "queued"  # queued, running
        self.holds = False  # holds one of the base_concurrency slots (else it bypassed them)
        self.dropped = False  # force-cancelled while running: its outcome is not reported


class SymphonyWorker:
    def __init__(self, cfg: dict, symphony, base_concurrency: int):
        self.worker_id = cfg["WorkerID"].encode()
        self.address = cfg["SchedulerAddress"]
        self.storage_address: Optional[str] = cfg.get("ObjectStorageAddress") or None
        self.capabilities = {k: int(v) for k, v in (cfg.get("Capabilities") or {}).items()}
        self.queue_size = int(cfg.get("QueueSize") or 1000)
        self.heartbeat_interval = (cfg.get("HeartbeatInterval") or 2e9) / 1e9
        self.death_timeout = (cfg.get("DeathTimeout") or 300e9) / 1e9
        self.symphony = symphony
        self.base = max(1, base_concurrency)
        self.lock = threading.Lock()
        self.tasks: Dict[bytes, _Entry] = {}  # every task held: queued and running
        self.queue: List = []  # heap of (-priority, seq, task_id)
        self.holders = set()  # entries holding one of the base_concurrency slots (dropped ones too, until Symphony answers)
        self.bypassing = set()  # entries running above the slots (dropped ones too), at most MAX_BYPASS
        self.malformed = _Repeats()
        self.seq = itertools.count()
        self.outbox: List[bytes] = []  # frames for the scheduler, sent by the main thread
        self.wake_w, self.wake_r = None, None
        self.serializers: Dict[bytes, object] = {}
        self.functions: Dict[bytes, object] = {}
        self.clients: list = []  # idle object storage clients
        self.stop = threading.Event()
        self.exit = EXIT_SIGNAL
        self.instance = b""

    # -------------------------------------------------------------- sending (any thread)

    def send(self, message) -> None:
        with self.lock:
            self.outbox.append(p.encode(message))
        self._wake()

    def _wake(self):
        try:
            os.write(self.wake_w, b"x")
        except (BlockingIOError, OSError, TypeError):
            pass

    # -------------------------------------------------------------- main loop (socket owner)

    def run(self) -> int:
        context = zmq.Context()
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, self.worker_id)
        sock.setsockopt(zmq.LINGER, 1000)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.connect(self.address)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self.wake_r, zmq.POLLIN)
        started = time.monotonic()
        last_echo = started
        echo_seq = 0
        waiting_echo = False
        sent_at = 0.0
        latency_us = 0
        next_beat = started
        logger.info("Symphony worker %s started (scheduler %s, base concurrency %d)",
                    self.worker_id.decode(), self.address, self.base)
        try:
            while not self.stop.is_set():
                now = time.monotonic()
                if not waiting_echo and now >= next_beat:
                    sock.send(p.encode(self._heartbeat(latency_us, echo_seq)))
                    waiting_echo, sent_at = True, now
                if now - last_echo >= self.death_timeout:
                    logger.error("no echo from the scheduler for %.0fs: death timeout", self.death_timeout)
                    self.exit = EXIT_DEATH
                    break
                for item, _ in poller.poll(100):
                    if item == self.wake_r:
                        try:
                            os.read(self.wake_r, 4096)
                        except BlockingIOError:
                            pass
                        continue
                    for frame in pending_frames(sock):
                        for message in self._decode(frame):
                            if isinstance(message, p.WorkerHeartbeatEcho):
                                if waiting_echo:
                                    now = time.monotonic()
                                    latency_us = int((now - sent_at) * 5e5)
                                    waiting_echo, last_echo = False, now
                                    next_beat = sent_at + self.heartbeat_interval
                                echo_seq = max(echo_seq, int(message.seq))
                                self._on_echo(message)
                            else:
                                self._handle(message)
                with self.lock:
                    frames, self.outbox = self.outbox, []
                for frame in frames:
                    sock.send(frame)
        finally:
            with self.lock:
                frames, self.outbox = self.outbox, []
            for frame in frames:
                sock.send(frame)
            sock.send(p.encode(p.DisconnectRequest(worker=self.worker_id)))
            sock.close()
            context.term()
            for client in self.clients:
                client.close()
            self.symphony.close()
            logger.info("Symphony worker %s stopped", self.worker_id.decode())
        return self.exit

    def _decode(self, frame: bytes):
        try:
            message = p.decode(frame)
        except p.DecodeError as exc:
            self._malformed("dropped malformed message from the scheduler: %s", exc)
            return []
        if isinstance(message, p.Batch):
            out = []
            for inner, error in p.unbatch(message):
                if error is not None:
                    self._malformed("dropped malformed message in a batch: %s", error)
                else:
                    out.append(inner)
            return out
        return [message]

    def _malformed(self, text: str, error) -> None:
        """One warning a minute for malformed messages (a broken peer may send many), with the count."""
        loud, repeated = self.malformed.allow()
        if not loud:
            logger.debug(text, error)
        elif repeated:
            logger.warning(text + " (and %d more since the last warning)", error, repeated)
        else:
            logger.warning(text, error)

    def _heartbeat(self, latency_us: int, echo_seq: int):
        with self.lock:
            ids = list(self.tasks)
            queued = len(self.queue)
            free = len(self.holders) < self.base
        return p.WorkerHeartbeat(
            agent=p.Resource(cpu=int(time.process_time() * 10) % (1 << 31), rss=_rss()),
            rss_free=_rss_free(), queued_tasks=queued, queue_size=self.queue_size, latency_us=latency_us,
            task_lock=free, processors=[], capabilities=self.capabilities, tasks=ids, echo_seq=echo_seq,
        )

    def _on_echo(self, echo):
        if self.storage_address is None and echo.object_storage.port:
            self.storage_address = f"tcp://{echo.object_storage.host}:{echo.object_storage.port}"
            logger.info("object storage address learnt from the scheduler: %s", self.storage_address)
        instance = bytes(echo.instance_id)
        if instance and self.instance and instance != self.instance:
            # A restarted scheduler: nothing it holds came from us; drop every task silently.
            with self.lock:
                for entry in self.tasks.values():
                    entry.dropped = True
                self.tasks.clear()
                self.queue.clear()
            logger.warning("the scheduler was restarted; dropped every task of the previous instance")
        if instance:
            self.instance = instance

    def _handle(self, message):
        if isinstance(message, p.Task):
            with self.lock:
                if message.task_id in self.tasks:
                    return
                full = len(self.tasks) >= self.queue_size
                if not full:
                    entry = _Entry(message, next(self.seq))
                    self.tasks[message.task_id] = entry
                    heapq.heappush(self.queue, (-entry.priority, entry.seq, message.task_id))
            if full:
                # The scheduler sends no more than the queue size it is told; a peer that does gets the
                # task back failed rather than growing the table without bound.
                self.send(p.TaskResult(
                    task_id=message.task_id, type=p.TaskResultType.Failed, profile=p.TaskProfile(),
                    message=f"the Symphony worker already holds its queue size of {self.queue_size} tasks"))
                return
            self._dispatch()
        elif isinstance(message, p.TaskCancel):
            self._cancel(bytes(message.task_id), bool(message.force))
        elif isinstance(message, p.ObjectInstruction):
            if message.type == p.ObjectInstructionType.Delete:
                for object_id in message.metadata.object_ids:
                    self.functions.pop(bytes(object_id), None)
        elif isinstance(message, p.ClientDisconnect):
            if message.type == p.DisconnectType.Shutdown:
                logger.info("the scheduler asked its workers to shut down")
                self.exit = EXIT_SHUTDOWN
                self.stop.set()
        elif isinstance(message, p.DisconnectResponse):
            pass
        else:
            logger.debug("ignored %s from the scheduler", type(message).__name__)

    def _cancel(self, task_id: bytes, force: bool) -> None:
        with self.lock:
            entry = self.tasks.get(task_id)
            if entry is None:
                confirm = p.TaskCancelConfirmType.CancelNotFound
            elif entry.state == "queued":
                del self.tasks[task_id]
                self.queue = [item for item in self.queue if item[2] != task_id]
                heapq.heapify(self.queue)
                confirm = p.TaskCancelConfirmType.Canceled
            elif force:
                del self.tasks[task_id]
                entry.dropped = True
                confirm = p.TaskCancelConfirmType.Canceled
            else:
                confirm = p.TaskCancelConfirmType.CancelFailed
        self.send(p.TaskCancelConfirm(task_id=task_id, type=confirm))

    def _dispatch(self) -> None:
        start = []
        with self.lock:
            while self.queue:
                _, _, task_id = self.queue[0]
                entry = self.tasks.get(task_id)
                if entry is None or entry.state != "queued":
                    heapq.heappop(self.queue)
                    continue
                if len(self.holders) < self.base:
                    entry.holds = True
                    self.holders.add(entry)
                elif entry.priority <= max(e.priority for e in self.holders) or len(self.bypassing) >= MAX_BYPASS:
                    break
                else:
                    self.bypassing.add(entry)
                heapq.heappop(self.queue)
                entry.state = "running"
                start.append(entry)
        for entry in start:
            threading.Thread(target=self._run_task, args=(entry,), daemon=True,
                             name=f"task-{entry.task.task_id.hex()[:8]}").start()

    # -------------------------------------------------------------- one task (its own thread)

    @contextlib.contextmanager
    def _storage(self):
        """An object storage client for this thread's use: clients are not shared between
        threads at once, and are kept for reuse (at most one per task running at a time)."""
        with self.lock:
            client = self.clients.pop() if self.clients else None
        if client is None or client.address != self.storage_address:
            if client is not None:
                client.close()
            from scaler.io.storage import ObjectStorageClient

            client = ObjectStorageClient(self.storage_address)
        try:
            yield client
        except BaseException:
            client.close()  # its state after a failure is unknown
            raise
        with self.lock:
            self.clients.append(client)

    def _load(self, task):
        source = bytes(task.source)
        serializer = self.serializers.get(source)
        function = self.functions.get(bytes(task.func_object_id))
        wanted = []
        if serializer is None:
            wanted.append(hashlib.md5(source).digest() + SERIALIZER_SUFFIX)
        if function is None:
            wanted.append(bytes(task.func_object_id))
        by_id = [a for a in task.arguments if a.type != p.ArgumentType.Inline]
        wanted += [bytes(a.data) for a in by_id]
        fetched = []
        if wanted:
            with self._storage() as storage:
                fetched = storage.get_many(wanted)
        pos = 0
        if serializer is None:
            serializer = self.serializers[source] = cloudpickle.loads(fetched[pos])
            pos += 1
        if function is None:
            function = self.functions[bytes(task.func_object_id)] = serializer.deserialize(fetched[pos])
            pos += 1
        args = []
        for argument in task.arguments:
            if argument.type == p.ArgumentType.Inline:
                args.append(serializer.deserialize(bytes(argument.data)))
            else:
                args.append(serializer.deserialize(fetched[pos]))
                pos += 1
        return serializer, function, args

    def _run_task(self, entry: _Entry) -> None:
        task = entry.task
        began, cpu = time.monotonic(), time.process_time()
        serializer = None
        try:
            serializer, function, args = self._load(task)
            payload = cloudpickle.dumps((functools.partial(_in_task, entry.priority, function), *args))
            result = self.symphony.submit(payload).result()
            outcome, result_type = serializer.serialize(result), p.TaskResultType.Success
        except Exception as exc:
            from scaler.worker.processor import _pickle_exception

            outcome, result_type = _pickle_exception(exc), p.TaskResultType.Failed
        if type(outcome) is not bytes:
            outcome = bytes(outcome)
        profile = p.TaskProfile(duration_s=time.monotonic() - began, cpu_time_s=time.process_time() - cpu)
        with self.lock:
            self.holders.discard(entry)
            self.bypassing.discard(entry)
            report = not entry.dropped and self.tasks.pop(task.task_id, None) is entry
        try:
            if report:
                self._report(task, result_type, outcome, profile)
        finally:
            self._dispatch()

    def _report(self, task, result_type, outcome: bytes, profile) -> None:
        if len(outcome) <= INLINE_LIMIT and not task.keep_result:
            self.send(p.TaskResult(task_id=task.task_id, type=result_type, profile=profile, inline=outcome))
            return
        source = bytes(task.source)
        result_id = hashlib.md5(source).digest() + os.urandom(16)
        try:
            with self._storage() as storage:
                storage.set_object(result_id, outcome)
        except Exception as exc:
            message = f"storing the result failed: {type(exc).__name__}: {exc}"
            self.send(p.TaskResult(task_id=task.task_id, type=p.TaskResultType.Failed, profile=profile, message=message))
            return
        self.send(p.ObjectInstruction(
            type=p.ObjectInstructionType.Create, object_user=source,
            metadata=p.ObjectMetadata(object_ids=[result_id], content_types=[p.ObjectContentType.Object],
                                      names=[b"<res " + result_id.hex()[:6].encode() + b">"]),
        ))
        inline = outcome if len(outcome) <= INLINE_LIMIT else b""
        self.send(p.TaskResult(task_id=task.task_id, type=result_type, profile=profile, results=[result_id],
                               inline=inline))


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _rss_free() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="scaler Symphony worker")
    parser.add_argument("--service-name", required=True)
    parser.add_argument("--base-concurrency", type=int, default=1)
    options = parser.parse_args(argv)
    try:
        cfg = json.load(sys.stdin)
    except ValueError as exc:
        print(f"scaler Symphony worker: error: reading the worker configuration from stdin: {exc}", file=sys.stderr)
        return 2
    from scaler.worker.processor import setup_logging

    setup_logging(cfg.get("LoggingPaths") or ["/dev/stdout"], cfg.get("LoggingLevel") or "INFO")
    try:
        import soamapi
    except ImportError as exc:
        logger.error("IBM Spectrum Symphony's Python API (soamapi) cannot be imported (%s): install it from your "
                     "Symphony installation (upstream says: pip install soamapi)", exc)
        return EXIT_FATAL
    try:
        symphony = Symphony(soamapi, options.service_name)
    except Exception as exc:
        logger.error("cannot open a Symphony session for service %r: %s: %s", options.service_name,
                     type(exc).__name__, exc)
        return EXIT_FATAL
    worker = SymphonyWorker(cfg, symphony, options.base_concurrency)

    def on_signal(signum, frame):
        worker.stop.set()
        worker._wake()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())
