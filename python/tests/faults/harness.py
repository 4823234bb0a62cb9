"""Fault-injection harness: real scaler processes on 127.0.0.1, killed and restarted on purpose.

One place for everything the scenarios in this directory need (docs/reliability.md lists them):

- ``Stack``: starts roles of ``$SCALER_BINARY`` (scheduler, object storage server, clusters) as
  subprocesses, each in its own process group (``start_new_session``) with stdout and stderr in one
  log file per role under a tmp dir; waits until a role listens; kills (-9), terminates or restarts
  a role; and on ``close()`` stops everything and raises if any process it started (or any of
  their descendants) survives.
- Process tree helpers from /proc: ``children``, ``descendants``, ``rss_bytes``, ``alive``.
  A cluster's tree is ``cluster -> worker agents -> processors`` (worker/cluster.go starts every
  agent as ``<scaler binary> worker`` with its configuration as JSON on stdin; worker/processor.go
  has each agent start its processors as ``<python> -m scaler.worker.processor --fd 3 ...``).
  So an agent is a child of the cluster whose argv[1] is ``worker``; a processor is a child of an
  agent whose argv contains ``scaler.worker.processor``. ``Role.agents()`` / ``Role.processors()``
  use exactly that.
- ``RawPeer``: a plain pyzmq DEALER that speaks docs/protocol.md (one frame = kind byte + msgpack
  map, built with ``scaler.protocol``), for well-framed bogus messages; ``random_message`` fills
  any message class with random values of the right wire types.
- ``long_form(short, long)``: the bigger size when ``SCALER_FAULTS_LONG=1``.

Every wait here has a deadline; nothing depends on tight timing.
"""

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from typing import Callable, Dict, List, Optional, Sequence

import zmq

from scaler import protocol as p
from scaler.protocol import messages as wire_types  # the field type tags B, S, Z, I, F, M

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _scaler_binary import free_port  # noqa: E402  (one port chooser for every test)

HOST = "127.0.0.1"


# ---------------------------------------------------------------- sizes and waits

def sleep_for(seconds):
    """A task that sleeps, for the tests that need one running while they break something.

    Here, in an importable module, so that processors load it by reference (their PYTHONPATH has
    this package, see Stack)."""
    time.sleep(seconds)
    return seconds


def long_form(short, long):
    """``long`` when the long form is asked for (env SCALER_FAULTS_LONG=1), else ``short``."""
    return long if os.environ.get("SCALER_FAULTS_LONG", "") not in ("", "0") else short


def is_long() -> bool:
    return long_form(False, True)


def wait_until(predicate: Callable[[], object], timeout: float, what: str = "condition", interval: float = 0.05):
    """Poll predicate until it returns something truthy (returned); AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


class Background:
    """A test's watcher thread: calls ``step`` until ``stop``. Subclasses set their state, then
    call ``Background.__init__``, which starts the thread."""

    def __init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            self.step()

    def step(self):
        raise NotImplementedError

    def stop(self, timeout: float = 10):
        self._stop.set()
        self._thread.join(timeout)


def scheduler_ports() -> int:
    """A port P with P, P+1 and P+2 free (scheduler, its in-process storage, its monitor)."""
    return free_port(3)


def listening(port: int, host: str = HOST) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------- /proc

def _stat(pid: int) -> Optional[List[str]]:
    """Fields of /proc/pid/stat after the command name (index 0 = state), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(")") + 2:].split()


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def start_time(pid: int) -> Optional[int]:
    """Start time in clock ticks since boot (to tell a pid from a later reuse of it)."""
    st = _stat(pid)
    return int(st[19]) if st else None


def cmdline(pid: int) -> List[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def children(pid: int) -> List[int]:
    """Live direct children of pid (scans /proc/*/stat for the parent pid)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = _stat(int(name))
        if st and int(st[1]) == pid and st[0] not in ("Z", "X"):
            out.append(int(name))
    return sorted(out)


def descendants(pid: int) -> List[int]:
    """Live children, grandchildren, ... of pid."""
    out, todo = [], [pid]
    while todo:
        for c in children(todo.pop()):
            out.append(c)
            todo.append(c)
    return out


def rss_bytes(pid: int) -> int:
    """Resident set size of pid from /proc/pid/status (VmRSS), bytes; 0 if gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def is_agent(pid: int) -> bool:
    """A worker agent: the scaler binary run as ``<binary> worker`` (worker/cluster.go)."""
    argv = cmdline(pid)
    return len(argv) >= 2 and argv[1] == "worker"


def is_processor(pid: int) -> bool:
    """A processor: ``<python> -m scaler.worker.processor ...`` (worker/processor.go)."""
    return "scaler.worker.processor" in cmdline(pid)


# ---------------------------------------------------------------- roles

def scaler_binary() -> str:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from _scaler_binary import scaler_binary as find  # python/tests/_scaler_binary.py

    binary = find()
    if not binary:
        raise RuntimeError("no scaler binary: set SCALER_BINARY or install go")
    return binary


class Role:
    """One process of the stack: started in its own process group, logging to ``log_path``."""

    def __init__(self, stack: "Stack", name: str, argv: List[str], port: Optional[int]):
        self.stack = stack
        self.name = name
        self.argv = argv
        self.port = port  # the TCP port it listens on, if any
        self.log_path = os.path.join(stack.log_dir, f"{name}.log")
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0

    # -- life cycle
    def start(self, wait: bool = True, timeout: float = 30.0) -> "Role":
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} is running"
        log = open(self.log_path, "ab")
        try:
            log.write(f"==== harness: start #{self.starts + 1}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=self.stack.env, start_new_session=True)
        finally:
            log.close()
        self.starts += 1
        self.stack._remember(self.proc.pid)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> "Role":
        """Until the role listens on its port (or, for a cluster, all its agents are up)."""
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode} while starting:\n{self.tail()}")
            if self.port is not None:
                return listening(self.port)
            return self.ready_check()
        wait_until(ready, timeout, f"{self.name} to be ready")
        return self

    def ready_check(self) -> bool:
        return True

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send sig to the role's main process only (its children react as they would in production)."""
        self.stack._remember_tree(self.pid)
        os.kill(self.pid, sig)

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        """Send sig to the role's whole process group."""
        self.stack._remember_tree(self.pid)
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def wait_exit(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 20.0) -> Optional[int]:
        """SIGTERM, then SIGKILL of the group after timeout; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill_group(signal.SIGKILL)
                self.proc.wait(10)
        self.kill_group(signal.SIGKILL)  # whatever of its group is left
        return self.proc.returncode

    def restart(self, sig: int = signal.SIGKILL, wait: bool = True, timeout: float = 30.0) -> "Role":
        """Kill with sig (SIGKILL by default), wait for the exit, start again with the same argv."""
        if self.running():
            self.kill(sig)
            self.proc.wait(30)
        return self.start(wait=wait, timeout=timeout)

    # -- logs
    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_lines(self, needle: Optional[str] = None) -> List[str]:
        lines = self.log().splitlines()
        return [line for line in lines if needle is None or needle in line]

    def count(self, needle: str) -> int:
        """Number of log lines containing needle."""
        return len(self.log_lines(needle))

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.log().splitlines()[-n:])

    # -- process tree
    def children(self) -> List[int]:
        return children(self.pid) if self.running() else []

    def descendants(self) -> List[int]:
        return descendants(self.pid) if self.running() else []

    def rss(self) -> int:
        return rss_bytes(self.pid)


class Cluster(Role):
    """A ``cluster -n N`` role; knows its agents and processors."""

    def __init__(self, stack, name, argv, n_workers):
        super().__init__(stack, name, argv, None)
        self.n_workers = n_workers

    def ready_check(self) -> bool:
        # Every agent up with at least one initialised processor child; the scenario then waits for
        # the scheduler to see the workers if it needs to (Stack.wait_workers).
        agents = self.agents()
        return len(agents) == self.n_workers and all(processors_of(a) for a in agents)

    def agents(self) -> List[int]:
        """Pids of the worker agents (children of the cluster run as ``<binary> worker``)."""
        return [c for c in self.children() if is_agent(c)]

    def processors(self) -> List[int]:
        """Pids of all processors of all agents."""
        return [q for a in self.agents() for q in processors_of(a)]


class Adapter(Role):
    """A ``worker_adapter_native`` role: its HTTP API and the worker agents it started."""

    def post(self, body, path: str = "/", method: str = "POST", timeout: float = 30.0):
        """One HTTP request; returns (status, parsed JSON body or raw text). body: dict (sent as JSON) or bytes."""
        import json
        import urllib.error
        import urllib.request

        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        req = urllib.request.Request(f"http://{HOST}:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def start_group(self):
        return self.post({"action": "start_worker_group"})

    def shutdown_group(self, group_id: str):
        return self.post({"action": "shutdown_worker_group", "worker_group_id": group_id})

    def agents(self) -> List[int]:
        """Pids of the worker agents it runs (children run as ``<binary> worker``)."""
        return [c for c in self.children() if is_agent(c)]


def processors_of(agent_pid: int) -> List[int]:
    """Pids of the processors an agent runs (its children running ``scaler.worker.processor``)."""
    return [c for c in children(agent_pid) if is_processor(c)]


class Stack:
    """The processes of one scenario. Use as the ``stack`` fixture (conftest.py) or a context manager."""

    def __init__(self, log_dir: str, binary: Optional[str] = None, python: Optional[str] = None):
        self.log_dir = log_dir
        os.makedirs(log_dir, exist_ok=True)
        self.binary = binary or scaler_binary()
        self.env = dict(os.environ)
        self.env["SCALER_BINARY"] = self.binary
        self.env["SCALER_PYTHON"] = python or os.environ.get("SCALER_PYTHON") or sys.executable
        # Processors import functions pickled by reference (this directory's test modules are the
        # package ``faults``), so they get this interpreter's sys.path, as scaler.Cluster does.
        paths = [os.path.abspath(e) for e in sys.path if e and os.path.isdir(e)]
        self.env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        self.roles: Dict[str, Role] = {}
        self.scheduler: Optional[Role] = None
        self.storage: Optional[Role] = None
        self._known: Dict[int, Optional[int]] = {}  # pid -> start time, every process we saw
        self._clients: list = []

    # -- roles
    def _add(self, role: Role) -> Role:
        assert role.name not in self.roles, f"role {role.name} exists"
        self.roles[role.name] = role
        return role

    def _add_listener(self, subcommand: str, name: str, port: int, args) -> Role:
        """A role that listens on tcp://127.0.0.1:port: ``scaler subcommand tcp://127.0.0.1:port args``."""
        return self._add(Role(self, name, [self.binary, subcommand, f"tcp://{HOST}:{port}", *args], port))

    def start_scheduler(self, *args: str, port: Optional[int] = None, name: str = "scheduler",
                        wait: bool = True) -> Role:
        """``scheduler tcp://127.0.0.1:P args``; P (and P+1, P+2 for its storage and monitor) free."""
        role = self._add_listener("scheduler", name, port or scheduler_ports(), args)
        if self.scheduler is None:
            self.scheduler = role
        return role.start(wait=wait)

    def start_storage(self, *args: str, port: Optional[int] = None, name: str = "storage", wait: bool = True) -> Role:
        """``object_storage_server tcp://127.0.0.1:P args`` (pass its address to the scheduler with -osa)."""
        role = self._add_listener("object_storage_server", name, port or free_port(), args)
        if self.storage is None:
            self.storage = role
        return role.start(wait=wait)

    def start_cluster(self, n: int = 1, *args: str, scheduler: Optional[Role] = None, name: Optional[str] = None,
                      wait: bool = True, timeout: float = 60.0) -> Cluster:
        """``cluster -n N tcp://<scheduler> args``; waits until every agent runs a processor."""
        scheduler = scheduler or self.scheduler
        assert scheduler is not None, "start the scheduler first"
        name = name or f"cluster{sum(isinstance(r, Cluster) for r in self.roles.values()) + 1}"
        argv = [self.binary, "cluster", "-n", str(n), f"tcp://{HOST}:{scheduler.port}", *args]
        role = self._add(Cluster(self, name, argv, n))
        return role.start(wait=wait, timeout=timeout)

    def start_adapter(self, *args: str, scheduler: Optional[Role] = None, name: str = "adapter",
                      port: Optional[int] = None, wait: bool = True) -> Adapter:
        """``worker_adapter_native tcp://<scheduler> --adapter-web-host 127.0.0.1 -p PORT args``."""
        scheduler = scheduler or self.scheduler
        assert scheduler is not None, "start the scheduler first (or give its role)"
        port = port or free_port()
        argv = [self.binary, "worker_adapter_native", f"tcp://{HOST}:{scheduler.port}",
                "--adapter-web-host", HOST, "--adapter-web-port", str(port), *args]
        role = self._add(Adapter(self, name, argv, port))
        return role.start(wait=wait)

    def start_python(self, name: str, code: str, *args: str, wait_for_line: Optional[str] = None,
                     timeout: float = 60.0) -> Role:
        """``python -c code args`` as a role of its own (a client process to kill, say); with
        wait_for_line, waits until its log has a line containing it."""
        argv = [self.env["SCALER_PYTHON"], "-c", code, *args]
        role = self._add(Role(self, name, argv, None)).start()
        if wait_for_line:
            def seen():
                if not role.running() and not role.count(wait_for_line):
                    raise AssertionError(f"{name} exited with {role.proc.returncode}:\n{role.tail()}")
                return role.count(wait_for_line)
            wait_until(seen, timeout, f"{name} to print {wait_for_line!r}")
        return role

    def storage_stats(self, address: Optional[str] = None):
        """Object storage statistics (objects, bytes, waiting_requests, max_memory) of the stack's
        storage: the external one if started, else the scheduler's in-process one at P+1."""
        from scaler.io.storage import ObjectStorageClient

        if address is None:
            address = self.storage_address if self.storage else f"tcp://{HOST}:{self.scheduler.port + 1}"
        with ObjectStorageClient(address, timeout_s=30) as client:
            return client.stats()

    @property
    def address(self) -> str:
        """The scheduler's address for clients."""
        return f"tcp://{HOST}:{self.scheduler.port}"

    @property
    def storage_address(self) -> str:
        return f"tcp://{HOST}:{self.storage.port}"

    # -- clients
    def client(self, timeout_seconds: float = 30, **kwargs):
        """A scaler.Client of this stack's scheduler (use as a context manager); closed in close()."""
        from scaler import Client

        c = Client(self.address, timeout_seconds=timeout_seconds, **kwargs)
        self._clients.append(c)
        return c

    def raw_peer(self, identity: Optional[bytes] = None, address: Optional[str] = None) -> "RawPeer":
        peer = RawPeer(address or self.address, identity)
        self._clients.append(peer)
        return peer

    # -- bookkeeping and teardown
    def _remember(self, pid: int) -> None:
        self._known[pid] = start_time(pid)

    def _remember_tree(self, pid: int) -> None:
        for q in [pid] + descendants(pid):
            if q not in self._known:
                self._remember(q)

    def snapshot(self) -> None:
        """Remember every descendant of every role now (close() checks they are all gone)."""
        for role in self.roles.values():
            if role.running():
                self._remember_tree(role.pid)

    def survivors(self) -> List[int]:
        """Processes this stack started (or saw under its roles) that still run."""
        out = []
        for pid, started in self._known.items():
            if alive(pid) and start_time(pid) == started:
                out.append(pid)
        return out

    def close(self, grace: float = 15.0) -> None:
        """Stop clients, then clusters, the scheduler and storage; raise if anything survives
        ``grace`` seconds after its role stopped (it is then killed)."""
        for c in reversed(self._clients):
            try:
                c.disconnect() if hasattr(c, "disconnect") else c.close()
            except Exception:
                pass
        self._clients.clear()
        self.snapshot()
        order = [r for r in self.roles.values() if isinstance(r, (Cluster, Adapter))]
        order += [r for r in self.roles.values() if not isinstance(r, (Cluster, Adapter))]
        for role in order:
            try:
                role.stop()
            except Exception:
                role.kill_group(signal.SIGKILL)
        # Reparented grandchildren may take a moment to die (Pdeathsig, then reaping by init).
        deadline = time.monotonic() + grace
        while self.survivors() and time.monotonic() < deadline:
            time.sleep(0.1)
        left = self.survivors()
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if left:
            desc = ", ".join(f"{pid} ({' '.join(cmdline(pid))[:80]})" for pid in left)
            raise AssertionError(f"processes survived the stack's teardown: {desc}")

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def logs(self) -> str:
        """Every role's log tail, for a failure message."""
        return "\n".join(f"---- {r.name} ({r.log_path})\n{r.tail()}" for r in self.roles.values())


# ---------------------------------------------------------------- raw wire peer

class RawPeer:
    """A pyzmq DEALER speaking docs/protocol.md: one frame per message (kind byte + msgpack map)."""

    def __init__(self, address: str, identity: Optional[bytes] = None):
        self.identity = identity or f"{os.getpid()}|Client|{uuid.uuid4().hex}".encode()
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, self.identity)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDTIMEO, 5000)
        self.sock.connect(address)

    def send(self, message: p.Message) -> None:
        self.sock.send(p.encode(message))

    def send_raw(self, frame: bytes) -> None:
        """Send bytes as one frame, whatever they are."""
        self.sock.send(frame)

    def recv(self, timeout: float = 5.0) -> Optional[p.Message]:
        """The next message decoded, or None after timeout."""
        if not self.sock.poll(int(timeout * 1000)):
            return None
        return p.decode(self.sock.recv())

    def recv_all(self, timeout: float = 0.5) -> List[p.Message]:
        """Every message that arrives until timeout passes with nothing new."""
        out = []
        while True:
            m = self.recv(timeout)
            if m is None:
                return out
            out.append(m)

    def close(self) -> None:
        self.sock.close(0)

    disconnect = close


def random_id(rng: random.Random, n: int = 16) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(n))


def _random_value(typ, rng: random.Random, depth: int = 0):
    if isinstance(typ, list):
        return [_random_value(typ[0], rng, depth + 1) for _ in range(rng.randint(0, 2 if depth < 2 else 0))]
    if isinstance(typ, type) and issubclass(typ, p.Struct):
        return random_struct(typ, rng, depth + 1)
    if typ == wire_types.B:
        return random_id(rng, rng.choice((16, 32, rng.randint(0, 40))))
    if typ == wire_types.S:
        return "".join(rng.choice("abcxyz|01") for _ in range(rng.randint(0, 12)))
    if typ == wire_types.Z:
        return rng.random() < 0.5
    if typ == wire_types.I:
        return rng.choice((0, 1, 2, rng.randint(0, 255), rng.randint(0, 2 ** 32)))
    if typ == wire_types.F:
        return rng.random() * 10
    if typ == wire_types.M:
        return {rng.choice(("cpu", "gpu", "x")): rng.randint(0, 4) for _ in range(rng.randint(0, 2))}
    raise TypeError(typ)


def random_struct(cls, rng: random.Random, depth: int = 0):
    """An instance of a protocol Struct/Message class with random field values of the right wire types."""
    return cls(**{name: _random_value(typ, rng, depth) for name, typ in cls.FIELDS})


# Kinds a client or worker may send to the scheduler (docs/protocol.md §6).
TO_SCHEDULER = (p.Task, p.TaskCancel, p.TaskCancelConfirm, p.TaskResult, p.TaskLog, p.GraphTask,
                p.ObjectInstruction, p.ClientHeartbeat, p.WorkerHeartbeat, p.DisconnectRequest,
                p.ClientDisconnect)


def random_message(rng: random.Random, kinds: Sequence = TO_SCHEDULER) -> p.Message:
    """A well-framed message of a random kind among ``kinds`` with random ids and values."""
    return random_struct(rng.choice(kinds), rng)


# ---------------------------------------------------------------- counting what a client receives

class ResultCounter:
    """Counts the TaskResult messages a scaler.Client receives, per task id.

    The client settles a future once and drops a second result for it silently, so duplicates are
    invisible in the futures; this wraps the two places the client's agent reads a TaskResult
    (scaler/client/agent.py: ``_plain_result`` for inline outcomes, ``_on_task_result`` for the
    rest) to count every one that arrives. ``duplicates()`` lists task ids received more than once.
    """

    def __init__(self, client):
        import collections
        import threading

        self.counts = collections.Counter()
        self._lock = threading.Lock()
        agent = client._agent
        plain, generic = agent._plain_result, agent._on_task_result

        def counted_plain(frame):
            result = plain(frame)
            if result is not None:
                self._add(bytes(result[0]))
            return result

        def counted_generic(body):
            self._add(bytes(body.get("task_id", b"")))
            return generic(body)

        agent._plain_result = counted_plain
        agent._on_task_result = counted_generic

    def _add(self, task_id: bytes) -> None:
        with self._lock:
            self.counts[task_id] += 1

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def duplicates(self) -> Dict[bytes, int]:
        with self._lock:
            return {t: n for t, n in self.counts.items() if n > 1}

    def summary(self, results: Sequence, expected: Sequence) -> str:
        """How the results compare with the expected ones, and what arrived, in one phrase."""
        lost = sum(r != e for r, e in zip(results, expected)) + len(expected) - len(results)
        return (f"{len(expected) - lost} correct, {lost} lost, {len(self.duplicates())} duplicated, "
                f"{self.total()} results received")

    def assert_exactly_once(self, results: Sequence, expected: Sequence) -> None:
        """Every task's result is right and the client received exactly one result per task."""
        assert list(results) == list(expected), self.summary(results, expected)
        assert not self.duplicates(), self.summary(results, expected)
        assert self.total() == len(expected), self.summary(results, expected)


class ExecutionLog:
    """A file tasks append one line to per execution (O_APPEND: lines do not interleave), to count
    how often each task really ran (at-least-once execution allows a re-run after a worker died)."""

    def __init__(self, path: str):
        self.path = path
        open(path, "w").close()

    def counts(self) -> Dict[str, int]:
        import collections

        with open(self.path) as f:
            return dict(collections.Counter(line.strip() for line in f if line.strip()))
