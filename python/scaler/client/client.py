import atexit
import graphlib
import hashlib
import inspect
import itertools
import logging
import os
import sys
import threading
import time
import uuid
import weakref
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from scaler.protocol import wire as w
from scaler.client.agent import Batch, ClientAgent, GraphEntry
from scaler.client.future import MapCall, MapTask, ScalerFuture
from scaler.client.object_reference import ObjectReference
from scaler.client.serializer._function_cache import serialize_function
from scaler.client.serializer.default import DefaultSerializer
from scaler.client.serializer.mixins import Serializer
from scaler.utility.exceptions import ClientQuitException, MissingObjects
from scaler.utility.graph.optimization import cull_graph
from scaler.utility.metadata.profile_result import ProfileResult
from scaler.utility.network_util import local_endpoint
from scaler.utility.task_context import current_task_priority

import cloudpickle

logger = logging.getLogger("scaler.client")

DEFAULT_CLIENT_TIMEOUT_SECONDS = 60
DEFAULT_HEARTBEAT_INTERVAL_SECONDS = 2

_SERIALIZER_NAME_DIGEST = hashlib.md5(b"serializer").digest()
_FUNCTION_CACHE_LIMIT = 4096
# Serialized arguments up to this size travel inline in the Task message instead of through
# object storage (docs/protocol.md §7.1). 64 KiB is a first choice, not yet measured against
# scheduler memory for deep queues of large-argument tasks.
INLINE_ARGUMENT_LIMIT = 64 * 1024
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
# send_object waits for object storage's acknowledgement at most timeout_seconds plus this long
# per byte (1 s per 10 MiB), so that a large object on a slow link is not given up on early.
_STORE_SECONDS_PER_BYTE = 1.0 / (10 * 1024 * 1024)


def _check_address(address: str) -> None:
    if not isinstance(address, str):
        raise TypeError(f"address must be a str like tcp://127.0.0.1:2345, got {type(address).__name__}")
    scheme, sep, rest = address.partition("://")
    if scheme == "inproc":
        # The scheduler is always another process (the Go binary): inproc cannot reach it.
        raise ValueError(f"invalid address {address!r}: the scheduler runs in its own process; "
                         f"use tcp://host:port or ipc://path")
    if not sep or scheme not in ("tcp", "ipc") or not rest:
        raise ValueError(f"invalid address {address!r}: expected tcp://host:port or ipc://path")
    if scheme == "tcp":
        host, colon, port = rest.rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"invalid address {address!r}: expected tcp://host:port")


# Weak keys: caching must not keep submitted closures (and what they capture) alive.
_parameter_cache: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

# Clients still connected. At interpreter exit they leave while their agent threads can still run
# (atexit runs before finalization): a client left at module level, whose __del__ would run only
# during finalization, when its daemon agent thread can no longer answer, made every such script
# wait 10 s before it ended.
_live_clients: "weakref.WeakSet" = weakref.WeakSet()


@atexit.register
def _disconnect_live_clients() -> None:
    for client in list(_live_clients):
        try:
            client.disconnect()
        except Exception:
            pass


def _positional_parameters(fn: Callable) -> Optional[tuple]:
    try:
        return _parameter_cache[fn]
    except (KeyError, TypeError):  # not cached yet, or not weak-referenceable/hashable
        pass
    try:
        signature = inspect.signature(fn)
    except (ValueError, TypeError):
        params = None
    else:
        params = tuple(p for p in signature.parameters.values() if p.kind in _POSITIONAL)
    try:
        _parameter_cache[fn] = params
    except TypeError:
        pass
    return params


def _fold_arguments(fn: Callable, args: Tuple, kwargs: Dict[str, Any]) -> Tuple:
    """Turn ``fn(*args, **kwargs)`` into positional arguments only, following Scaler 1.12.5.

    Keyword arguments fill the positional parameters not given positionally, then defaults do;
    keyword-only parameters and unknown keywords are not passed; when enough positional arguments
    are given every keyword is dropped.
    """
    params = _positional_parameters(fn)
    if params is None:
        if kwargs:
            inspect.signature(fn)  # raises ValueError like upstream
        return tuple(args)
    if len(args) >= len(params):
        return tuple(args)
    folded = list(args)
    missing = []
    for param in params[len(args):]:
        if param.name in kwargs:
            folded.append(kwargs[param.name])
        elif param.default is not inspect.Parameter.empty:
            folded.append(param.default)
        else:
            missing.append(param.name)
    if missing:
        raise TypeError(f"{fn} missing {len(missing)} arguments: {tuple(missing)}")
    return tuple(folded)


class Client:
    """Connects to a scaler scheduler and runs Python functions on its workers.

    The constructor blocks until the scheduler answers (at most ``timeout_seconds``). One
    background thread owns the connections; every public method is safe to call from any thread.
    """

    def __init__(
        self,
        address: str,
        profiling: bool = False,
        timeout_seconds: int = DEFAULT_CLIENT_TIMEOUT_SECONDS,
        heartbeat_interval_seconds: int = DEFAULT_HEARTBEAT_INTERVAL_SECONDS,
        serializer: Serializer = DefaultSerializer(),
        stream_output: bool = False,
    ):
        self.__initialize(address, profiling, timeout_seconds, heartbeat_interval_seconds, serializer, stream_output)

    def __initialize(self, address, profiling, timeout_seconds, heartbeat_interval_seconds, serializer, stream_output):
        self._agent = None
        _check_address(address)
        self._address = address
        self._profiling = bool(profiling)
        self._timeout_seconds = timeout_seconds
        self._heartbeat_interval_seconds = heartbeat_interval_seconds
        self._serializer = serializer
        self._stream_output = bool(stream_output)

        self._identity = f"{os.getpid()}|Client|{uuid.uuid4().hex}".encode()
        self._owner_digest = hashlib.md5(self._identity).digest()
        self._serializer_id = self._owner_digest + _SERIALIZER_NAME_DIGEST
        self._lock = threading.Lock()
        self._function_cache: Dict[bytes, bytes] = {}  # blake2b of a function's bytes -> object id
        self._function_ids: Dict[int, tuple] = {}  # id(bytes) -> (bytes, object id), for reused bytes
        self._task_pieces_cache: Dict[tuple, tuple] = {}
        # Task ids of submit(): a random prefix per client and a counter (no system call, which
        # would also hand the GIL to the agent thread mid-submission).
        self._task_id_prefix = os.urandom(8)
        self._task_counter = itertools.count(1)
        self._valid_references: set = set()

        agent = ClientAgent(self._identity, address, heartbeat_interval_seconds, timeout_seconds,
                            connect_address=local_endpoint(address))
        # Weakly: the running agent thread must not keep the client alive (__del__ disconnects).
        agent.on_refused = weakref.WeakMethod(self.__forget_refused)
        agent.start()
        if not agent.storage_ready.wait(timeout_seconds) or agent.storage_address is None:
            reason = agent.exit_reason
            self._agent = agent
            self.__stop_agent()
            if isinstance(reason, BaseException) and not isinstance(reason, ClientQuitException):
                raise reason
            problem = agent.connect_error()
            if problem is not None:
                raise TimeoutError(f"no scheduler reached at {address} within {timeout_seconds} seconds ({problem})")
            raise TimeoutError(f"no answer from the scheduler at {address} within {timeout_seconds} seconds")
        self._agent = agent
        _live_clients.add(self)

        # Store the serializer first: workers load it to read every object of this client. Its
        # acknowledgement is awaited: without it no task of this client could ever run.
        batch = Batch()
        payload = cloudpickle.dumps(serializer)
        self.__add_object(batch, self._serializer_id, payload, b"serializer", w.CONTENT_SERIALIZER)
        self.__finish_batch(batch, [])
        try:
            self.__store(batch, len(payload))
        except BaseException:
            self.__stop_agent()
            raise

    # ------------------------------------------------------------------ dunder and properties

    @property
    def identity(self) -> bytes:
        return self._identity

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        self.disconnect()

    def __del__(self):
        if sys.is_finalizing():
            return  # the agent thread cannot run any more; the exit hook disconnected this client
        try:
            if getattr(self, "_agent", None) is not None and not self._agent.stopped.is_set():
                self.disconnect()
        except Exception:
            pass

    def __getstate__(self) -> dict:
        return {
            "address": self._address,
            "profiling": self._profiling,
            "stream_output": self._stream_output,
            "timeout_seconds": self._timeout_seconds,
            "heartbeat_interval_seconds": self._heartbeat_interval_seconds,
        }

    def __setstate__(self, state: dict) -> None:
        # A client passed into a task connects again, as a new client, from the worker.
        self.__initialize(
            state["address"],
            state["profiling"],
            state["timeout_seconds"],
            state["heartbeat_interval_seconds"],
            DefaultSerializer(),
            state["stream_output"],
        )

    # ------------------------------------------------------------------ tasks

    def submit(self, fn: Callable, *args, **kwargs) -> ScalerFuture:
        """Run ``fn(*args, **kwargs)`` on a worker; keyword arguments are folded into positions."""
        return self.submit_verbose(fn, args, kwargs)

    def submit_verbose(
        self, fn: Callable, args: Tuple[Any, ...], kwargs: Dict[str, Any], capabilities: Optional[Dict[str, int]] = None
    ) -> ScalerFuture:
        self.__check_alive()
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        folded = _fold_arguments(fn, tuple(args), dict(kwargs or {}))
        batch = Batch()
        arguments, release = self.__argument_objects(batch, folded)
        function_id = self.__function_object(batch, fn)  # last: only cache what gets sent
        batch.depends.add(function_id)
        task_id = self._task_id_prefix + next(self._task_counter).to_bytes(8, "big")
        future = ScalerFuture(task_id, True, None, self._serializer, self._agent)
        future._release = release
        head, middle, tail = self.__task_pieces(function_id, capabilities, self.__priority())
        batch.task_ids.append(task_id)
        batch.entries.append(future)
        self.__finish_batch(batch, [b"".join((head, task_id, middle, w.encode_arguments(arguments), tail))])
        self._agent.submit_batch(batch)
        return future

    def map(self, fn: Callable, iterable: Iterable[Union[Tuple, List]], capabilities: Optional[Dict[str, int]] = None) -> List[Any]:
        """Run ``fn(*item)`` for every item (a tuple or list of positional arguments); results in order.

        If a task fails, the remaining tasks of this call are cancelled and the first failure in
        input order is raised; the client stays usable.
        """
        self.__check_alive()
        items = iterable if type(iterable) is list else list(iterable)
        for item in items:
            if not isinstance(item, (tuple, list)):
                raise TypeError("iterable should be list of arguments(list or tuple-like) of function")
        if not items:
            return []
        n = len(items)
        batch = Batch()
        encoded_arguments, releases = self.__map_arguments(batch, items)
        function_id = self.__function_object(batch, fn)  # last: only cache what gets sent
        batch.depends.add(function_id)
        head, middle, tail = self.__task_pieces(function_id, capabilities, self.__priority())
        ids = os.urandom(16 * n)  # one system call for all task ids
        task_ids = [ids[i : i + 16] for i in range(0, 16 * n, 16)]
        call = MapCall(self._serializer, task_ids)
        join = b"".join
        batch.task_ids = task_ids
        batch.entries = [MapTask(call, i, release) for i, release in enumerate(releases)]
        self.__finish_batch(
            batch,
            [join((head, task_id, middle, arguments, tail)) for task_id, arguments in zip(task_ids, encoded_arguments)],
        )
        self._agent.submit_batch(batch)
        try:
            call.wait()
            return call.results()
        except BaseException:
            # The first failure in input order decides; the tasks not done yet are cancelled.
            pending = call.pending_task_ids()
            if pending:
                try:
                    self._agent.post(("cancel_tasks", pending))
                except ClientQuitException:
                    pass
            raise

    def __map_arguments(self, batch: Batch, items: list) -> Tuple[List[bytes], list]:
        """The encoded ``arguments`` field of each item's Task, and the objects to release after it."""
        serialize = self._serializer.serialize
        inline_prefix = w.ONE_INLINE_ARGUMENT_PREFIX
        bin_header = w.bin_header
        encoded: List[bytes] = []
        releases: list = []
        no_release = ()
        for item in items:
            if len(item) == 1:
                arg = item[0]
                if not isinstance(arg, ObjectReference):
                    payload = serialize(arg)
                    if len(payload) <= INLINE_ARGUMENT_LIMIT:
                        encoded.append(inline_prefix + bin_header(len(payload)) + payload)
                        releases.append(no_release)
                        continue
            arguments, release = self.__argument_objects(batch, item)
            encoded.append(w.encode_arguments(arguments))
            releases.append(release or no_release)
        return encoded, releases

    # ------------------------------------------------------------------ graphs

    def get(
        self,
        graph: Dict[str, Any],
        keys: List[str],
        block: bool = True,
        capabilities: Optional[Dict[str, int]] = None,
    ) -> Dict[str, Any]:
        """Compute the nodes ``keys`` of a task graph.

        A node is either a call ``(fn, "dep1", "dep2", ...)`` whose arguments name other nodes, or
        any other value (data, returned as is). ``block=False`` returns futures.
        """
        self.__check_alive()
        keys = list(keys)
        if len(set(keys)) != len(keys):
            raise KeyError(f"duplicate keys in {keys!r}")
        for key in keys:
            if key not in graph:
                raise KeyError(f"key {key!r} is not in the graph")
        culled = cull_graph(graph, keys)
        calls: Dict[str, tuple] = {}
        for key, node in culled.items():
            if isinstance(node, tuple) and len(node) > 0 and callable(node[0]):
                for dep in node[1:]:
                    if not isinstance(dep, str):
                        raise TypeError(f"graph node {key!r}: arguments must be names of other nodes, got {dep!r}")
                    if dep not in culled:
                        raise KeyError(f"graph node {key!r} depends on {dep!r}, which is not in the graph")
                calls[key] = node
        graphlib.TopologicalSorter({key: set(node[1:]) for key, node in calls.items()}).prepare()

        results: Dict[str, ScalerFuture] = {}
        data_values = {key: value for key, value in culled.items() if key not in calls}
        if not calls:
            for key in keys:
                future = ScalerFuture(os.urandom(16), False, None, self._serializer, self._agent)
                future._set_value(data_values[key], ProfileResult())
                results[key] = future
            return {key: f.result() for key, f in results.items()} if block else results

        batch = Batch()
        data_ids: Dict[str, bytes] = {}
        release: List[bytes] = []
        for key, value in data_values.items():
            if isinstance(value, ObjectReference):
                data_ids[key] = value.object_id
                batch.depends.add(value.object_id)
                continue
            object_id = self.__new_object_id()
            self.__add_object(batch, object_id, self._serializer.serialize(value), key.encode(), w.CONTENT_OBJECT)
            data_ids[key] = object_id
            release.append(object_id)
        graph_id = os.urandom(16)
        task_ids = {key: os.urandom(16) for key in calls}
        priority = self.__priority()
        caps = dict(capabilities or {})
        nodes = []
        for key, node in calls.items():
            function_id = self.__function_object(batch, node[0])
            batch.depends.add(function_id)
            arguments = [
                {"type": w.ARG_TASK, "data": task_ids[dep]} if dep in calls else {"type": w.ARG_OBJECT, "data": data_ids[dep]}
                for dep in node[1:]
            ]
            nodes.append(self.__task_body(task_ids[key], function_id, arguments, caps, priority))
        delayed = not block
        umbrella = ScalerFuture(graph_id, delayed, None, self._serializer, self._agent)
        targets: Dict[bytes, ScalerFuture] = {}
        for key in keys:
            if key in calls:
                future = ScalerFuture(task_ids[key], delayed, graph_id, self._serializer, self._agent)
                targets[task_ids[key]] = future
                batch.task_ids.append(task_ids[key])
                batch.entries.append(future)
            else:
                future = ScalerFuture(os.urandom(16), False, None, self._serializer, self._agent)
                future._set_value(data_values[key], ProfileResult())
            results[key] = future
        batch.graph = GraphEntry(graph_id, umbrella, targets, list(task_ids.values()), release)
        frame = w.encode(
            w.GRAPH_TASK,
            {"task_id": graph_id, "source": self._identity, "targets": list(targets.keys()), "graph": nodes},
        )
        self.__finish_batch(batch, [frame])
        self._agent.post(("submit", batch))
        if not block:
            return results
        try:
            return {key: future.result() for key, future in results.items()}
        except BaseException:
            if not umbrella.done():
                umbrella._cancel_sent = True
                try:
                    self._agent.cancel_future(umbrella)
                except ClientQuitException:
                    pass
            raise

    # ------------------------------------------------------------------ objects

    def send_object(self, obj: Any, name: Optional[str] = None) -> ObjectReference:
        """Store ``obj`` once; pass the returned reference as an argument to many tasks.

        Waits until object storage has acknowledged the object (at most ``timeout_seconds``,
        plus 1 s per 10 MiB), and raises ``ObjectStorageException`` if storage refuses it (the
        message gives storage's reason, e.g. its memory limit); a refused object is not
        announced to the scheduler. Called in the client's background thread (from a
        done-callback) it cannot wait: it returns at once and a refusal is only logged.
        """
        self.__check_alive()
        payload = self._serializer.serialize(obj)
        object_id = self.__new_object_id()
        if name is None:
            name_bytes = f"<obj {object_id.hex()}>".encode()
        else:
            name_bytes = name.encode() if isinstance(name, str) else bytes(name)
        batch = Batch()
        self.__add_object(batch, object_id, payload, name_bytes, w.CONTENT_OBJECT)
        self.__finish_batch(batch, [])
        if self._agent is threading.current_thread():
            with self._lock:  # tasks using it fail if storage refuses it (agent: _in_flight)
                self._valid_references.add(object_id)
            self._agent.post(("store", batch))
        else:
            self.__store(batch, len(payload))
            with self._lock:
                self._valid_references.add(object_id)
        return ObjectReference(name_bytes, len(payload), object_id)

    def __store(self, batch: Batch, size: int) -> None:
        """Store the objects of ``batch`` and wait for the acknowledgement (see send_object)."""
        batch.stored = threading.Event()
        self._agent.post(("store", batch))
        self._agent.store_wait(batch, float(self._timeout_seconds) + size * _STORE_SECONDS_PER_BYTE)

    def __forget_refused(self, object_ids: List[bytes]) -> None:
        """Object storage refused these objects (client agent thread): no cache may hand them out."""
        refused = set(object_ids)
        with self._lock:
            self._valid_references.difference_update(refused)
            for digest in [d for d, oid in self._function_cache.items() if oid in refused]:
                del self._function_cache[digest]
            for key in [k for k, (_, oid) in self._function_ids.items() if oid in refused]:
                del self._function_ids[key]

    def clear(self) -> None:
        """Cancel every unfinished future and release every object this client stored."""
        if self._agent is None or self._agent.stopped.is_set():
            return
        with self._lock:
            self._valid_references.clear()
            self._function_cache.clear()
            self._function_ids.clear()
        done = threading.Event()
        pending: List[ScalerFuture] = []
        try:
            self._agent.post(("clear", done, pending))
        except ClientQuitException:
            return
        done.wait(self._agent.cancel_timeout)
        deadline = time.monotonic() + self._agent.cancel_timeout
        for future in pending:
            future._wait_done(max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------------ lifetime

    def disconnect(self) -> None:
        """Leave the scheduler: unfinished futures are cancelled. Safe to call more than once."""
        agent = getattr(self, "_agent", None)
        if agent is None:
            return
        if not agent.stopped.is_set():
            done = threading.Event()
            try:
                agent.post(("disconnect", done))
                done.wait(10)
            except ClientQuitException:
                pass
        if agent is not threading.current_thread():
            agent.join(10)

    def shutdown(self) -> None:
        """Ask the scheduler to stop itself and its workers.

        Raises ValueError when the scheduler is protected; the client then stays connected.
        """
        agent = getattr(self, "_agent", None)
        if agent is None or agent.stopped.is_set():
            return
        answer: list = []
        event = threading.Event()
        agent.post(("shutdown", answer, event))
        if not event.wait(self._timeout_seconds):
            raise TimeoutError(f"the scheduler did not answer the shutdown request within {self._timeout_seconds} s")
        accepted, reason = answer[0] if answer else (False, "")
        if not accepted:
            if agent.stopped.is_set():
                raise ClientQuitException(f"client stopped before the scheduler answered: {reason}")
            raise ValueError("Scheduler is in protected mode. Can't shutdown")
        agent.join(10)

    # ------------------------------------------------------------------ internals

    def __stop_agent(self) -> None:
        agent = self._agent
        if agent is None:
            return
        if not agent.stopped.is_set():
            try:
                agent.post(("disconnect", threading.Event()))
            except ClientQuitException:
                pass
        agent.join(5)

    def __check_alive(self) -> None:
        if self._agent is None or self._agent.stopped.is_set():
            raise ClientQuitException("client is already stopped.")

    def __new_object_id(self) -> bytes:
        return self._owner_digest + os.urandom(16)

    def __priority(self) -> int:
        processor = sys.modules.get("scaler.worker.processor")
        if processor is not None:
            task = processor.current_task()
            if task is not None:
                return int(task.priority) + 1
        parent = current_task_priority()
        return 0 if parent is None else int(parent) + 1

    def __add_object(self, batch: Batch, object_id: bytes, payload, name: bytes, content_type: int) -> None:
        request_id = next(self._agent.request_ids)
        header = w.encode(
            w.OBJECT_REQUEST,
            {"request_id": request_id, "type": w.OBJ_SET, "object_id": object_id, "payload_length": len(payload)},
        )
        batch.sets.append((request_id, object_id, header, payload))
        batch.create_ids.append((object_id, name, content_type))
        if content_type == w.CONTENT_OBJECT:
            batch.owned.append(object_id)

    def __finish_batch(self, batch: Batch, frames: List[bytes]) -> None:
        if batch.create_ids:
            ids, names, types = zip(*batch.create_ids)
            create = w.encode(
                w.OBJECT_INSTRUCTION,
                {
                    "type": w.INSTRUCTION_CREATE,
                    "object_user": self._identity,
                    "metadata": {"object_ids": list(ids), "content_types": list(types), "names": list(names), "contents": []},
                },
            )
            batch.frames.append(create)
        batch.frames.extend(frames)

    def __function_object(self, batch: Batch, fn: Callable) -> bytes:
        reused = False
        if type(self._serializer) is DefaultSerializer:
            payload, reused = serialize_function(fn, self._serializer.serialize)
            if reused:  # the very bytes object of an earlier submission: its id is known
                known = self._function_ids.get(id(payload))
                if known is not None and known[0] is payload:
                    return known[1]
        else:
            payload = self._serializer.serialize(fn)
        digest = hashlib.blake2b(payload, digest_size=20).digest()
        with self._lock:
            object_id = self._function_cache.get(digest)
            if object_id is not None:
                if reused:  # keyed by id(), holding the bytes so that the id stays theirs
                    if len(self._function_ids) >= _FUNCTION_CACHE_LIMIT:
                        self._function_ids.clear()
                    self._function_ids[id(payload)] = (payload, object_id)
                return object_id
            if len(self._function_cache) >= _FUNCTION_CACHE_LIMIT:
                self._function_cache.clear()
                self._function_ids.clear()
            object_id = self.__new_object_id()
            self._function_cache[digest] = object_id
        name = getattr(fn, "__name__", None) or f"<func {object_id.hex()}>"
        self.__add_object(batch, object_id, payload, str(name).encode(), w.CONTENT_OBJECT)
        return object_id

    def __argument_objects(self, batch: Batch, args) -> Tuple[List[tuple], List[bytes]]:
        """[(argument type, data)] for ``args``, storing large ones, and the object ids to release."""
        arguments = []
        release = []
        serialize = self._serializer.serialize
        for arg in args:
            if isinstance(arg, ObjectReference):
                with self._lock:
                    known = arg.object_id in self._valid_references
                if not known:
                    raise MissingObjects(f"object {arg!r} is unknown to this client (cleared or never sent)")
                arguments.append((w.ARG_OBJECT, arg.object_id))
                batch.depends.add(arg.object_id)
                continue
            payload = serialize(arg)
            if len(payload) <= INLINE_ARGUMENT_LIMIT:
                # Small arguments travel inside the Task (docs/protocol.md §7.1): no object to
                # store, fetch or release.
                arguments.append((w.ARG_INLINE, payload))
                continue
            object_id = self._owner_digest + os.urandom(16)
            self.__add_object(batch, object_id, payload, b"", w.CONTENT_OBJECT)
            arguments.append((w.ARG_OBJECT, object_id))
            release.append(object_id)
        return arguments, release

    def __task_body(self, task_id, function_id, arguments, capabilities, priority) -> dict:
        return {
            "task_id": task_id,
            "source": self._identity,
            "metadata": b"",
            "func_object_id": function_id,
            "arguments": arguments,
            "capabilities": dict(capabilities or {}),
            "priority": priority,
            "stream_output": self._stream_output,
            "profiling": self._profiling,
            # Small results come back inline only; nothing here needs them as storage objects
            # (the scheduler keeps graph results that feed other nodes).
            "keep_result": False,
        }

    def __task_pieces(self, function_id: bytes, capabilities, priority: int) -> tuple:
        """Pre-encoded Task frame pieces for tasks of one function (see _wire.task_frame_pieces)."""
        key = (function_id, priority, tuple(sorted(capabilities.items())) if capabilities else None)
        pieces = self._task_pieces_cache.get(key)
        if pieces is None:
            pieces = w.task_frame_pieces(self._identity, function_id, dict(capabilities or {}), priority,
                                         self._stream_output, self._profiling)
            if len(self._task_pieces_cache) >= _FUNCTION_CACHE_LIMIT:
                self._task_pieces_cache.clear()
            self._task_pieces_cache[key] = pieces
        return pieces
