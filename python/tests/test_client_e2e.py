"""The client against the real Go scheduler and cluster (skipped, with the reason, until they run)."""

import concurrent.futures
import graphlib
import math
import os
import pickle
import socket
import subprocess
import sys
import threading
import time

import pytest

from scaler import Client, Cluster, SchedulerClusterCombo
from scaler.utility.exceptions import ClientQuitException, MissingObjects, ProcessorDiedError

from conftest import make_combo, wait_for


def noop(x):
    return x


def add(a, b):
    return a + b


def sleep_and_return(seconds, value=None):
    time.sleep(seconds)
    return value


def raise_value_error(message):
    raise ValueError(message)


def die():
    os._exit(1)


def factorial(client, n):
    if n <= 1:
        return 1
    return n * client.submit(factorial, client, n - 1).result()


def fibonacci(client, n):
    if n < 2:
        return n
    a = client.submit(fibonacci, client, n - 1)
    b = client.submit(fibonacci, client, n - 2)
    return a.result() + b.result()


def index(sequence, i):
    return sequence[i]


def whoami():
    return os.getpid()


# Upstream could hang in the constructor and in disconnect(); these bounds only catch hangs (speed
# is measured in bench/, never asserted here).
HANG = 15


def test_combo_workers_run_in_the_scheduler_process(scaler_bin):
    """The combo's workers run inside the scheduler's process (``scaler combo``, over inproc://),
    so their processors are its children; a client of the combo's own process reaches the
    scheduler over the local Unix socket, everything else over TCP."""
    combo = make_combo(scaler_bin, n_workers=2)
    local_dir = combo._local_dir
    try:
        assert combo._cluster._address == combo.get_address()  # upstream's attribute: the TCP address
        assert combo._cluster.pid == combo._scheduler.pid and combo._cluster.is_alive()
        with open(f"/proc/{combo._scheduler.pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        assert argv[1] == b"combo" and b"--" in argv
        local = f"ipc://{local_dir}/scheduler.sock".encode()
        # The scheduler listens on the local socket; the workers' half names no address but TCP's.
        assert local in argv[: argv.index(b"--")] and local not in argv[argv.index(b"--"):]
        with Client(combo.get_address(), timeout_seconds=10) as client:
            # A client in the combo's process connects to the local socket.
            assert client._agent._scheduler.address == local.decode()
            assert client.map(add, [(i, 1) for i in range(20)]) == list(range(1, 21))
            parents = set(client.map(os.getppid, [() for _ in range(40)]))
            assert parents == {combo._scheduler.pid}  # processors of in-process agents
            # A pickled client (a nested task's) keeps the TCP address.
            clone = pickle.loads(pickle.dumps(client))
            assert clone._address == combo.get_address()
            clone.disconnect()
    finally:
        combo.shutdown()
    assert not os.path.exists(local_dir)
    assert not combo._cluster.is_alive()
    from scaler.utility.network_util import local_endpoint

    assert local_endpoint(combo.get_address()) == combo.get_address()


def test_combo_processors_die_with_its_process(scaler_bin):
    """The in-process agents' processors get SIGKILL when the combo's process dies, even by
    SIGKILL (PR_SET_PDEATHSIG from the thread that started them), not only through shutdown()."""
    import signal

    combo = make_combo(scaler_bin, n_workers=2)
    try:
        with Client(combo.get_address(), timeout_seconds=10) as client:
            processors = set(client.map(whoami, [() for _ in range(40)]))
        assert processors and combo._scheduler.pid not in processors
        os.kill(combo._scheduler.pid, signal.SIGKILL)  # no group kill, no clean stop
        assert wait_for(lambda: not combo._scheduler.is_alive(), 10)
        for pid in processors:
            assert wait_for(lambda: not os.path.exists(f"/proc/{pid}") or _is_zombie(pid), 10), f"processor {pid} runs"
    finally:
        combo.shutdown()


def test_combo_with_a_long_tmpdir_stays_on_tcp(scaler_bin, tmp_path, monkeypatch):
    import tempfile

    long_dir = tmp_path / ("d" * 60) / ("e" * 60)
    long_dir.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(long_dir))  # too long for a Unix socket path
    combo = make_combo(scaler_bin, n_workers=1)
    try:
        with open(f"/proc/{combo._scheduler.pid}/cmdline", "rb") as f:
            assert not any(arg.startswith(b"ipc://") for arg in f.read().split(b"\0"))
        with Client(combo.get_address(), timeout_seconds=10) as client:
            assert client._agent._scheduler.address == combo.get_address()
            assert client.submit(add, 1, 2).result(timeout=HANG) == 3
    finally:
        combo.shutdown()


def test_combo_without_workers_is_a_plain_scheduler(scaler_bin):
    combo = make_combo(scaler_bin, n_workers=0)
    try:
        with open(f"/proc/{combo._scheduler.pid}/cmdline", "rb") as f:
            assert f.read().split(b"\0")[1] == b"scheduler"
        assert combo._cluster.pid is None and not combo._cluster.is_alive()
        with Client(combo.get_address(), timeout_seconds=10) as client:
            worker = Cluster(address=combo.get_address(), worker_names=["late"], logging_level="WARNING")
            worker.start()
            try:
                assert client.submit(add, 2, 2).result(timeout=60) == 4
            finally:
                worker.stop()
    finally:
        combo.shutdown()


def test_submit_map_and_no_hangs(combo):
    start = time.monotonic()
    client = Client(combo.get_address())
    assert time.monotonic() - start < HANG
    try:
        client.map(noop, [(1,)])  # warm
        assert client.submit(noop, 1).result(timeout=HANG) == 1
        assert client.map(math.sqrt, [(x,) for x in range(100)]) == [math.sqrt(x) for x in range(100)]
        assert sum(client.map(math.sqrt, [(x,) for x in range(100)])) == pytest.approx(661.4629471031477)
        assert client.map(noop, []) == []
        assert client.map(add, [(i, i) for i in range(1000)]) == [2 * i for i in range(1000)]
    finally:
        start = time.monotonic()
        client.disconnect()
        assert time.monotonic() - start < HANG


def test_arguments_and_exceptions(client):
    with pytest.raises(TypeError, match="missing 1 arguments"):
        client.submit(add, 1)
    assert client.submit(add, 1, b=2).result(timeout=10) == 3
    with pytest.raises(ValueError, match="remote message"):
        client.submit(raise_value_error, "remote message").result(timeout=10)
    fut = client.submit(math.sqrt, "16")
    assert isinstance(fut.exception(timeout=10), TypeError)
    with pytest.raises(ValueError, match="in map"):
        client.map(raise_value_error, [("in map",)])
    assert client.submit(noop, 2).result(timeout=10) == 2  # the client survives a failed map
    with pytest.raises(ProcessorDiedError):
        client.submit(die).result(timeout=30)
    assert fut.profiling_info().duration_s >= 0


def test_futures_cancel_callback(client):
    fut = client.submit(sleep_and_return, 30)
    time.sleep(0.2)
    assert fut.cancel(timeout=10) is True
    assert fut.cancelled()
    with pytest.raises(concurrent.futures.CancelledError):
        fut.result()
    done = client.submit(noop, 4)
    assert done.result(timeout=10) == 4
    assert done.cancel() is False
    event = threading.Event()
    seen = []
    cb = client.submit(noop, 5)
    cb.add_done_callback(lambda f: (seen.append(f.result()), event.set()))
    assert event.wait(10) and seen == [5]
    futures = [client.submit(noop, i) for i in range(20)]
    assert sorted(f.result() for f in concurrent.futures.as_completed(futures, timeout=20)) == list(range(20))


def test_graph(client):
    graph = {"a": 2, "b": 2, "c": (lambda x: x + 1, "a"), "d": (add, "a", "b"), "e": (lambda d, c: d - c, "d", "c"), "f": add}
    result = client.get(graph, keys=["a", "b", "c", "d", "e", "f"])
    assert [result[k] for k in "abcde"] == [2, 2, 3, 4, 1] and result["f"] is add
    with pytest.raises(KeyError):
        client.get(graph, keys=["nope"])
    with pytest.raises(KeyError):
        client.get({"a": (noop, "missing")}, keys=["a"])
    with pytest.raises(graphlib.CycleError):
        client.get({"a": (noop, "b"), "b": (noop, "a")}, keys=["a"])
    failing = {"x": "boom", "e": (raise_value_error, "x"), "f": (noop, "e"), "g": (noop, "f")}
    futures = client.get(failing, keys=["e", "f", "g"], block=False)
    for key in "efg":
        with pytest.raises(ValueError):
            futures[key].result(timeout=20)
    with pytest.raises(ValueError):
        client.get(failing, keys=["g"])
    assert client.get({"n": None, "m": (noop, "n")}, keys=["m"]) == {"m": None}


def test_send_object_reused(client):
    ref = client.send_object(list(range(100)), name="shared")
    assert client.map(index, [(ref, i) for i in range(100)]) == list(range(100))
    assert client.submit(index, ref, 5).result(timeout=10) == 5
    assert client.get({"r": ref, "x": (len, "r")}, keys=["x"]) == {"x": 100}
    client.clear()
    with pytest.raises(MissingObjects):
        client.submit(index, ref, 1)
    assert client.submit(noop, 1).result(timeout=10) == 1


def test_large_payload(client):
    data = os.urandom(100 * 1024 * 1024)
    assert client.submit(noop, data).result(timeout=120) == data


class _BytesOnly:
    """A custom serializer that insists on bytes, as the Serializer interface promises: large
    payloads reach it as bytes although the default serializer gets views of the frames."""

    @staticmethod
    def serialize(obj):
        return b"B" + pickle.dumps(obj)

    @staticmethod
    def deserialize(payload):
        if type(payload) is not bytes:
            raise TypeError(f"deserialize got {type(payload).__name__}")
        return pickle.loads(payload[1:])


def test_large_payloads_reach_a_custom_serializer_as_bytes(combo):
    from scaler.client.serializer.mixins import Serializer

    serializer = type("BytesOnly", (Serializer,), dict(_BytesOnly.__dict__))()
    data = os.urandom(1 << 20)  # through object storage both ways
    with Client(combo.get_address(), serializer=serializer, timeout_seconds=30) as c:
        assert c.submit(noop, data).result(timeout=60) == data
        assert c.map(noop, [(data,), (data[::-1],)]) == [data, data[::-1]]


def test_nested_recursion(client):
    assert client.submit(factorial, client, 5).result(timeout=120) == 120
    assert client.submit(fibonacci, client, 5).result(timeout=120) == 5


def test_disconnect_with_work_in_flight(combo):
    with Client(combo.get_address()) as client:
        futures = [client.submit(sleep_and_return, 5) for _ in range(4)]
        time.sleep(0.3)
    for fut in futures:
        with pytest.raises(concurrent.futures.CancelledError):
            fut.result(timeout=10)
    with pytest.raises(ClientQuitException):
        client.submit(noop, 1)
    client.disconnect()
    # the cluster is free again
    with Client(combo.get_address()) as client:
        assert client.map(noop, [(i,) for i in range(10)]) == list(range(10))


def test_capabilities_routing(scaler_bin):
    combo = make_combo(scaler_bin, n_workers=1)
    gpu = None
    try:
        with Client(combo.get_address()) as client:
            fut = client.submit_verbose(round, (3.6,), {}, capabilities={"gpu": 1})
            with pytest.raises(concurrent.futures.TimeoutError):
                fut.result(timeout=1.5)
            gpu = Cluster(address=combo.get_address(), worker_names=["gpu_worker"], per_worker_capabilities={"gpu": -1},
                          logging_level="WARNING")
            gpu.start()
            assert fut.result(timeout=30) == 4
            assert client.submit(round, 2.2).result(timeout=10) == 2
    finally:
        if gpu is not None:
            gpu.stop()
        combo.shutdown()


def test_protected_shutdown(scaler_bin):
    combo = make_combo(scaler_bin, n_workers=1)
    try:
        client = Client(combo.get_address())
        with pytest.raises(ValueError, match="protected"):
            client.shutdown()
        assert client.submit(noop, 1).result(timeout=10) == 1  # refused shutdown leaves the client usable
        client.disconnect()
    finally:
        combo.shutdown()


def test_unprotected_shutdown(scaler_bin):
    combo = make_combo(scaler_bin, n_workers=1, protected=False)
    try:
        client = Client(combo.get_address())
        assert client.submit(noop, 1).result(timeout=10) == 1
        client.shutdown()
        assert wait_for(lambda: not combo._scheduler.is_alive(), 10)
        with pytest.raises(ClientQuitException):
            client.submit(noop, 1)
    finally:
        combo.shutdown()
    assert not combo._cluster.is_alive() and not combo._scheduler.is_alive()


def test_scheduler_crash_times_out(scaler_bin):
    combo = make_combo(scaler_bin, n_workers=1)
    try:
        client = Client(combo.get_address(), timeout_seconds=3, heartbeat_interval_seconds=1)
        fut = client.submit(sleep_and_return, 30)
        time.sleep(0.5)
        combo._scheduler.kill()
        with pytest.raises(TimeoutError):
            fut.result(timeout=20)
        client.disconnect()
    finally:
        combo.shutdown()


def mark_and_return(marker, value):
    """Marks each start; the first run sleeps long enough that its worker cannot finish it while
    the test stops that worker (a 2 s sleep did, under load, and the task never ran again)."""
    with open(marker, "a") as f:
        f.write("started\n")
    with open(marker) as f:
        first = f.read().count("started") == 1
    if first:
        time.sleep(120)
    return value


def test_inline_argument_survives_worker_loss(scaler_bin, tmp_path):
    """A task whose argument travels inline (docs/protocol.md §7.1) is re-placed intact when its
    worker leaves while running it."""
    from scaler.client.client import INLINE_ARGUMENT_LIMIT

    value = ("inline", os.urandom(2048))
    assert len(value[1]) < INLINE_ARGUMENT_LIMIT
    combo = make_combo(scaler_bin, n_workers=1)
    first = second = None
    try:
        with Client(combo.get_address()) as client:
            marker = str(tmp_path / "started")
            fut = client.submit_verbose(mark_and_return, (marker, value), {}, capabilities={"inline_test": 1})
            first = Cluster(address=combo.get_address(), worker_names=["first"],
                            per_worker_capabilities={"inline_test": -1}, logging_level="WARNING")
            first.start()
            assert wait_for(lambda: os.path.exists(marker), 30)  # running on the first worker
            first.stop()
            first = None
            assert not fut.done()
            second = Cluster(address=combo.get_address(), worker_names=["second"],
                             per_worker_capabilities={"inline_test": -1}, logging_level="WARNING")
            second.start()
            assert fut.result(timeout=60) == value
            with open(marker) as f:
                assert f.read().count("started") == 2  # it ran again, on the second worker
            # A plain small-argument task on the regular worker works too.
            assert client.submit(add, 2, 3).result(timeout=10) == 5
    finally:
        for cluster in (first, second):
            if cluster is not None:
                cluster.stop()
        combo.shutdown()


def big_result(n):
    return b"x" * n


def test_small_results_are_inline_only(client):
    """Small results (and exceptions) of plain tasks travel inline with no storage object; large
    results and graph results that feed other nodes still go through object storage."""
    from scaler.io.storage import ObjectStorageClient

    assert client.map(noop, [(i,) for i in range(10)]) == list(range(10))  # function + serializer stored
    with ObjectStorageClient(client._agent.storage_address, timeout_s=5) as storage:
        before = storage.stats().objects
        assert client.map(noop, [(i,) for i in range(500)]) == list(range(500))
        assert [client.submit(noop, i).result() for i in range(20)] == list(range(20))
        with pytest.raises(ValueError, match="boom"):
            client.submit(raise_value_error, "boom").result()
        # At most raise_value_error's function object is new (a previous test's objects may still
        # be expiring, so the count can also drop); stored results would add 521 objects.
        assert storage.stats().objects <= before + 1

        assert client.submit(big_result, 100_000).result() == b"x" * 100_000  # stored, then released
        graph = {"a": 1, "b": (noop, "a"), "c": (add, "b", "a"), "d": (add, "c", "b")}
        assert client.get(graph, keys=["c", "d"]) == {"c": 2, "d": 3}
        failing = {"x": "boom", "e": (raise_value_error, "x"), "f": (noop, "e")}
        futures = client.get(failing, keys=["e", "f"], block=False)
        for key in "ef":
            with pytest.raises(ValueError, match="boom"):
                futures[key].result(timeout=20)
        # Intermediate graph results and the fetched large result are released again.
        assert wait_for(lambda: storage.stats().objects <= before + 3, timeout=10), storage.stats().objects - before


def hold_memory(mib, seconds):
    data = b"\x01" * (mib << 20)  # written, so resident
    time.sleep(seconds)
    return len(data)


def test_profiling_info(client):
    """Every finished future has a profile: wall time, CPU time, and the growth of its processor's
    memory, sampled while the task runs (a task holding 64 MiB for 1.5 s shows it)."""
    quick = client.submit(noop, 1)
    assert quick.result() == 1
    profile = quick.profiling_info()
    assert 0 < profile.duration_s < 10 and profile.cpu_time_s >= 0
    big = client.submit(hold_memory, 64, 1.5)
    assert big.result() == 64 << 20
    profile = big.profiling_info()
    assert profile.duration_s >= 1.5
    assert profile.memory_peak >= 32 << 20, profile


_NO_SHUTDOWN_SCRIPT = """
import os, sys
sys.path.insert(0, sys.argv[1])
from scaler import Client, SchedulerClusterCombo
combo = SchedulerClusterCombo(n_workers=1, logging_level="WARNING")
with Client(combo.get_address(), timeout_seconds=10) as client:
    assert client.submit(abs, -3).result(timeout=30) == 3
print(combo._scheduler.pid, combo._cluster.pid, combo._local_dir, flush=True)
# exits without combo.shutdown()
"""


def test_interpreter_exit_without_shutdown_leaves_nothing(scaler_bin):
    package = os.path.join(os.path.dirname(__file__), "..")
    result = subprocess.run([sys.executable, "-c", _NO_SHUTDOWN_SCRIPT, package], capture_output=True, text=True,
                            timeout=60, env=dict(os.environ))
    assert result.returncode == 0, result.stderr[-3000:]
    scheduler_pid, cluster_pid, local_dir = result.stdout.split()[-3:]
    for pid in (int(scheduler_pid), int(cluster_pid)):
        assert wait_for(lambda: not os.path.exists(f"/proc/{pid}") or _is_zombie(pid), 10), f"pid {pid} still runs"
    assert not os.path.exists(local_dir)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
