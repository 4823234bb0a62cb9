"""Programs written for Scaler 1.12.5's public modules run unchanged (issue 13).

Every module of python/README.md's list is imported, its listed names resolved, and its main
entry used the way 1.12.5's documentation and tests use it. The parts that start servers use the
real binary and are skipped, with the reason, when there is none.
"""

import argparse
import dataclasses
import glob
import importlib
import logging
import os
import re
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from _scaler_binary import REPO, free_port, scaler_binary  # noqa: E402

README = os.path.join(REPO, "python", "README.md")


def readme_modules():
    """(module, [names]) of every row of python/README.md's module table."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    table = text.split("<!-- module list", 1)[1].split("\n\n", 1)[0]
    rows = []
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0].startswith("`scaler"):
            continue
        module = cells[0].strip("`")
        # the names themselves; what is in parentheses (methods, aliases, arguments) is not a name
        listed, previous = cells[1], None
        while listed != previous:  # innermost parentheses first
            listed, previous = re.sub(r"\([^()]*\)", "", listed), listed
        names = [n for n in re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", listed) if not n.startswith("scaler")]
        rows.append((module, names))
    return rows


def run_python(code, *args, timeout=60, env=None):
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=REPO)


# ---------------------------------------------------------------------------------------------
# Defects of issue 13, one test each


def test_setup_logger_the_1_12_5_way(tmp_path):
    """``setup_logger()`` raised UnboundLocalError (a function-level ``import logging.config``)."""
    log_file = tmp_path / "logs" / "x.log"
    os.makedirs(log_file.parent)
    done = run_python(
        "import logging, sys\n"
        "from scaler.utility.logging.utility import setup_logger, get_logger_info\n"
        "setup_logger()\n"
        "logging.info('hello from setup_logger')\n"
        "setup_logger(('/dev/stdout', sys.argv[1]), None, 'DEBUG')\n"
        "logging.debug('to both')\n"
        "logging.warning('careful')\n"
        "print(get_logger_info(logging.getLogger()))\n",
        str(log_file),
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^\[INFO\]\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d{4}: hello from setup_logger$", done.stdout, re.M)
    assert done.stdout.count("hello from setup_logger") == 1
    assert done.stdout.count("to both") == 1  # the second call replaced the console handler, no doubling
    assert "to both" in log_file.read_text()
    assert re.search(r"^\[WARN\]\S+ \S+: careful$", done.stdout, re.M)
    assert "'DEBG'" in done.stdout and str(log_file) in done.stdout  # 1.12.5's level tag


@pytest.fixture
def preload_module(tmp_path, monkeypatch):
    (tmp_path / "compat_preload_mod.py").write_text(
        "VALUE = None\n"
        "not_callable = 42\n"
        "def setup_value(value='default', suffix=''):\n"
        "    global VALUE\n"
        "    VALUE = value + suffix\n"
        "def get_value():\n"
        "    return VALUE\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("compat_preload_mod", None)
    yield "compat_preload_mod"
    sys.modules.pop("compat_preload_mod", None)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("compat_preload_mod:not_callable", "Preload target must be callable."),
        ("compat_preload_mod:missing", "Failed to find attribute 'missing' in 'compat_preload_mod'."),
        ("compat_preload_mod:setup_value(1, 2, 3)", "TypeError: setup_value() takes from 0 to 2 positional arguments"),
        ("compat_preload_mod:setup_value(nope=1)", "TypeError: setup_value() got an unexpected keyword argument 'nope'"),
        ("compat_preload_mod", "preload must be in 'module.sub:func(...)' format"),
        ("compat_preload_mod:setup_value(x)", "Failed to parse arguments as literal values"),
        ("compat_preload_mod:a.b()", "Function reference must be a simple name"),
        ("compat_preload_mod:1 +", "Failed to parse"),
    ],
)
def test_preload_errors_are_1_12_5s(preload_module, spec, message):
    from scaler.worker.preload import PreloadSpecError, execute_preload

    with pytest.raises(PreloadSpecError) as raised:
        execute_preload(spec)
    assert str(raised.value).startswith(message), str(raised.value)


def test_preload_runs_and_logs_1_12_5s_line(preload_module, caplog):
    from scaler.worker.preload import _parse_preload_spec, execute_preload

    assert _parse_preload_spec("compat_preload_mod:setup_value('a', suffix='b')") == (
        "compat_preload_mod", "setup_value", ["a"], {"suffix": "b"})
    assert _parse_preload_spec("pkg.mod:init") == ("pkg.mod", "init", None, None)
    with caplog.at_level(logging.INFO):
        execute_preload("compat_preload_mod:setup_value('a', suffix='b')")
    assert importlib.import_module("compat_preload_mod").get_value() == "ab"
    assert "preloading: compat_preload_mod:setup_value with args=['a'] kwargs={'suffix': 'b'}" in caplog.text
    with pytest.raises(ImportError):
        execute_preload("no_such_module_xyz:f")


# 1.12.5's scaler/config/defaults.py (the names and values are an interface).
UPSTREAM_DEFAULTS = {
    "CLEANUP_INTERVAL_SECONDS": 1,
    "STATUS_REPORT_INTERVAL_SECONDS": 1,
    "PROFILING_INTERVAL_SECONDS": 1,
    "CAPNP_DATA_SIZE_LIMIT": 2**29 - 1,
    "CAPNP_MESSAGE_SIZE_LIMIT": 2**64 - 1,
    "DEFAULT_IO_THREADS": 1,
    "DEFAULT_MAX_NUMBER_OF_TASKS_WAITING": -1,
    "DEFAULT_WORKER_TIMEOUT_SECONDS": 60,
    "DEFAULT_CLIENT_TIMEOUT_SECONDS": 60,
    "DEFAULT_LOAD_BALANCE_SECONDS": 1,
    "DEFAULT_LOAD_BALANCE_TRIGGER_TIMES": 2,
    "DEFAULT_PER_WORKER_QUEUE_SIZE": 1000,
    "DEFAULT_HEARTBEAT_INTERVAL_SECONDS": 2,
    "DEFAULT_OBJECT_RETENTION_SECONDS": 60,
    "DEFAULT_GARBAGE_COLLECT_INTERVAL_SECONDS": 30,
    "DEFAULT_TRIM_MEMORY_THRESHOLD_BYTES": 1024 * 1024 * 1024,
    "DEFAULT_TASK_TIMEOUT_SECONDS": 0,
    "DEFAULT_PROCESSOR_KILL_DELAY_SECONDS": 3,
    "DEFAULT_WORKER_DEATH_TIMEOUT": 5 * 60,
    "DEFAULT_HARD_PROCESSOR_SUSPEND": False,
    "DEFAULT_LOGGING_LEVEL": "INFO",
    "DEFAULT_LOGGING_PATHS": ("/dev/stdout",),
}


def test_config_defaults_are_1_12_5s():
    from scaler.config import defaults

    for name, value in UPSTREAM_DEFAULTS.items():
        assert getattr(defaults, name) == value, name
    assert defaults.DEFAULT_NUMBER_OF_WORKER == max((os.cpu_count() or 1) - 1, 1)


def test_config_types():
    from scaler.config.types.object_storage_server import ObjectStorageConfig
    from scaler.config.types.worker import WorkerCapabilities, WorkerNames
    from scaler.config.types.zmq import ZMQConfig, ZMQType

    tcp = ZMQConfig.from_string("tcp://127.0.0.1:2345")
    assert (tcp.type, tcp.host, tcp.port) == (ZMQType.tcp, "127.0.0.1", 2345)
    assert tcp.to_address() == str(tcp) == repr(tcp) == "tcp://127.0.0.1:2345"
    assert ZMQConfig.from_string("ipc:///tmp/s.sock").to_address() == "ipc:///tmp/s.sock"
    assert ZMQConfig(ZMQType.inproc, "x").to_address() == "inproc://x"
    for bad in ("this-is-not-a-valid-address", "tcp://127.0.0.1", "badprotocol://127.0.0.1:1234", "tcp://h:port"):
        with pytest.raises(ValueError):
            ZMQConfig.from_string(bad)
    with pytest.raises(ValueError):
        ZMQConfig(ZMQType.ipc, "x", 1)
    with pytest.raises(TypeError):
        ZMQConfig("tcp", "x", 1)

    storage = ObjectStorageConfig.from_string("tcp://127.0.0.1:5678")
    assert (storage.host, storage.port, storage.identity) == ("127.0.0.1", 5678, "ObjectStorageServer")
    assert storage.to_string() == str(storage) == "tcp://127.0.0.1:5678"
    with pytest.raises(ValueError):
        ObjectStorageConfig.from_string("ipc://x")
    with pytest.raises(TypeError):
        ObjectStorageConfig("localhost", 1)

    names = WorkerNames.from_string(" worker1 , worker2 ")
    assert names.names == ["worker1", "worker2"] and str(names) == "worker1,worker2" and len(names) == 2
    assert WorkerNames.from_string("").names == []
    capabilities = WorkerCapabilities.from_string(" gpu=2, linux ")
    assert capabilities.capabilities == {"gpu": 2, "linux": -1} and str(capabilities) == "gpu=2,linux"
    with pytest.raises(ValueError, match="Expected an integer, but got 'MostPowerful'"):
        WorkerCapabilities.from_string("linux,cpu=MostPowerful")


def test_load_config_as_1_12_5(tmp_path):
    from scaler.config import defaults
    from scaler.config.loader import load_config
    from scaler.config.section.cluster import ClusterConfig
    from scaler.config.section.scheduler import SchedulerConfig
    from scaler.config.types.object_storage_server import ObjectStorageConfig
    from scaler.scheduler.allocate_policy.allocate_policy import AllocatePolicy

    flat = tmp_path / "scheduler.toml"
    flat.write_text('scheduler_address = "tcp://127.0.0.1:9999"\nio_threads = 2\nallocate_policy = "even"\n')
    config = load_config(SchedulerConfig, str(flat), argparse.Namespace())
    assert str(config.scheduler_address) == "tcp://127.0.0.1:9999" and config.io_threads == 2
    assert config.allocate_policy == AllocatePolicy.even and config.protected
    assert config.client_timeout_seconds == defaults.DEFAULT_CLIENT_TIMEOUT_SECONDS
    assert config.object_storage_address is None
    override = load_config(SchedulerConfig, str(flat), argparse.Namespace(scheduler_address="tcp://localhost:1111",
                                                                       io_threads=5, logging_paths=["a", "b"]))
    assert str(override.scheduler_address) == "tcp://localhost:1111" and override.io_threads == 5
    assert override.logging_paths == ("a", "b")

    sectioned = tmp_path / "all.toml"
    sectioned.write_text(
        '[scheduler]\nscheduler_address = "tcp://127.0.0.1:1234"\nobject_storage_address = "tcp://127.0.0.1:5678"\n'
        '[cluster]\nscheduler_address = "tcp://127.0.0.1:1234"\nnum_of_workers = 2\nworker_names = "a,b"\n'
        'per_worker_capabilities = "linux,gpu=2"\n'
    )
    scheduler = load_config(SchedulerConfig, str(sectioned), argparse.Namespace(), section_name="scheduler")
    assert isinstance(scheduler.object_storage_address, ObjectStorageConfig)
    assert scheduler.object_storage_address.port == 5678
    cluster = load_config(ClusterConfig, str(sectioned), argparse.Namespace(config=str(sectioned)), "cluster")
    assert cluster.worker_names.names == ["a", "b"] and cluster.per_worker_capabilities.capabilities["gpu"] == 2

    bad = tmp_path / "bad.toml"
    for text, error in [
        ("this_is_not_a_real_field = true", ValueError),
        ('scheduler_address = "tcp://127.0.0.1:1"\nallocate_policy = "invalid_policy"', ValueError),
        ("io_threads = 2", ValueError),  # the address is missing
        ('scheduler_address = "tcp://127.0.0.1:1"\nio_threads = 0', ValueError),
        ("not toml [", ValueError),
    ]:
        bad.write_text(text)
        with pytest.raises(error):
            load_config(SchedulerConfig, str(bad), argparse.Namespace())
    with pytest.raises(FileNotFoundError):
        load_config(SchedulerConfig, str(tmp_path / "missing.toml"), argparse.Namespace())
    with pytest.raises(ValueError, match="must match num_of_workers"):
        load_config(ClusterConfig, None, argparse.Namespace(scheduler_address="tcp://127.0.0.1:1", num_of_workers=3,
                                                            worker_names="a,b"))


def test_config_sections_have_1_12_5s_fields():
    """Field names and defaults of each section (1.12.5's dataclasses are constructed by keyword)."""
    from scaler.config.section.native_worker_adapter import NativeWorkerAdapterConfig
    from scaler.config.section.object_storage_server import ObjectStorageServerConfig
    from scaler.config.section.symphony_worker_adapter import SymphonyWorkerConfig
    from scaler.config.section.top import TopConfig
    from scaler.config.section.webui import WebUIConfig
    from scaler.config.types.zmq import ZMQConfig

    address = ZMQConfig.from_string("tcp://127.0.0.1:2347")
    assert TopConfig(monitor_address=address).timeout == 5
    assert (WebUIConfig(address).web_host, WebUIConfig(address).web_port) == ("0.0.0.0", 50001)
    native = NativeWorkerAdapterConfig(scheduler_address=address)
    assert (native.adapter_web_host, native.adapter_web_port, native.worker_task_queue_size) == ("localhost", 8080, 1000)
    symphony = SymphonyWorkerConfig(address, None, "svc")
    assert symphony.server_http_port == 0 and symphony.heartbeat_interval == 2
    with pytest.raises(ValueError):
        SymphonyWorkerConfig(address, None, "")
    assert [f.name for f in dataclasses.fields(ObjectStorageServerConfig)] == ["object_storage_address"]
    with pytest.raises(ValueError):
        TopConfig(address, timeout=0)


def test_config_sections_keep_1_12_5s_positional_order():
    """The sections are built by ``section`` from a list of names (shared options defined once):
    1.12.5's positional order holds, and a factory default is made for every instance."""
    from scaler.config.section.cluster import ClusterConfig
    from scaler.config.section.native_worker_adapter import NativeWorkerAdapterConfig
    from scaler.config.section.scheduler import SchedulerConfig
    from scaler.config.section.symphony_worker_adapter import SymphonyWorkerConfig
    from scaler.config.types.zmq import ZMQConfig

    address = ZMQConfig.from_string("tcp://127.0.0.1:2347")
    cluster = ClusterConfig(address, None, "pkg.mod:setup()", 3)
    assert (cluster.preload, cluster.worker_io_threads, cluster.heartbeat_interval_seconds) == ("pkg.mod:setup()", 3, 2)
    native = NativeWorkerAdapterConfig(address, None, "host", 9000)
    assert (native.adapter_web_host, native.adapter_web_port) == ("host", 9000)
    assert SchedulerConfig(address, None, None, None, False).protected is False
    assert SymphonyWorkerConfig(address, None, "svc", 4).base_concurrency == 4
    assert ClusterConfig(address).per_worker_capabilities is not ClusterConfig(address).per_worker_capabilities
    with pytest.raises(ValueError):
        ClusterConfig(address, worker_io_threads=0)


def test_process_wrappers_take_1_12_5s_positional_order():
    """1.12.5's SchedulerProcess takes adapter_webhook_url fourth; it was last here."""
    import inspect

    from scaler.cluster.object_storage_server import ObjectStorageServerProcess
    from scaler.cluster.scheduler import SchedulerProcess

    assert list(inspect.signature(SchedulerProcess.__init__).parameters)[1:18] == [
        "address", "storage_address", "monitor_address", "adapter_webhook_url", "io_threads",
        "max_number_of_tasks_waiting", "client_timeout_seconds", "worker_timeout_seconds",
        "object_retention_seconds", "load_balance_seconds", "load_balance_trigger_times", "protected",
        "allocate_policy", "event_loop", "logging_paths", "logging_config_file", "logging_level",
    ]
    assert list(inspect.signature(ObjectStorageServerProcess.__init__).parameters)[1:] == [
        "storage_address", "logging_paths", "logging_level", "logging_config_file"]


# ---------------------------------------------------------------------------------------------
# Every module of python/README.md's list, used as 1.12.5 uses it


def square(x):
    return x * x


class Plain:
    """A custom serializer the way 1.12.5's docs write one (Serializer subclass, static methods)."""


def exercise_unit(module_name, module):
    """Use the module without servers; returns True when handled here."""
    if module_name == "scaler.about":
        assert module.__version__ == importlib.import_module("scaler").__version__
    elif module_name == "scaler.client.serializer.default":
        serializer = module.DefaultSerializer()
        assert serializer.deserialize(serializer.serialize({"a": [1, 2]})) == {"a": [1, 2]}
    elif module_name == "scaler.client.serializer.mixins":
        class Custom(module.Serializer):
            @staticmethod
            def serialize(obj):
                return repr(obj).encode()

            @staticmethod
            def deserialize(payload):
                return eval(payload.decode())  # noqa: S307 - test data only

        assert Custom.deserialize(Custom.serialize([1, "a"])) == [1, "a"]
    elif module_name == "scaler.config.defaults":
        assert module.DEFAULT_LOGGING_PATHS == ("/dev/stdout",)
    elif module_name == "scaler.config.mixins":
        assert isinstance(module.ConfigType, type)
        with pytest.raises(TypeError):
            module.ConfigType()
    elif module_name.startswith("scaler.config."):
        pass  # test_config_types, test_load_config_as_1_12_5, test_config_sections_have_1_12_5s_fields
    elif module_name == "scaler.scheduler.allocate_policy.allocate_policy":
        assert module.AllocatePolicy["even"] is module.AllocatePolicy.even
        assert {p.name for p in module.AllocatePolicy} == {"even", "capability"}
    elif module_name == "scaler.utility.exceptions":
        for name in ("ClientQuitException", "ClientShutdownException", "MissingObjects", "WorkerDiedError",
                     "ProcessorDiedError", "ObjectStorageException"):
            assert issubclass(getattr(module, name), Exception)
    elif module_name == "scaler.utility.graph.optimization":
        graph = {"a": 1, "b": (square, "a"), "c": 2}
        assert set(module.cull_graph(graph, ["b"])) == {"a", "b"}
    elif module_name == "scaler.utility.logging.utility":
        assert module.LoggingLevel["INFO"].value == logging.INFO
    elif module_name == "scaler.utility.logging.scoped_logger":
        with module.ScopedLogger("compat check"):
            pass
    elif module_name == "scaler.utility.metadata.profile_result":
        assert module.ProfileResult().duration_s == 0.0
    elif module_name == "scaler.utility.network_util":
        port = module.get_available_tcp_port()
        assert isinstance(port, int) and 0 < port < 65536
    elif module_name == "scaler.utility.formatter":
        assert [module.format_bytes(n) for n in (512, 2048, 3 * 2**20)] == ["512B", "2K", "3.0M"]
        assert module.format_integer(1234567) == "1,234,567"
        assert module.format_percentage(505) == "50.5%"
        assert [module.format_microseconds(n) for n in (500, 5000, 5 * 10**6)] == ["0.5ms", "5ms", "5s"]
        assert module.format_seconds(61) == "60+s"
    elif module_name == "scaler.utility.debug":
        with pytest.raises(SystemExit) as exited:
            module.pdb_wrapped(lambda: 3)()
        assert exited.value.code == 3
    elif module_name == "scaler.worker.preload":
        assert module._parse_preload_spec("m:f") == ("m", "f", None, None)
    else:
        return False
    return True


NEEDS_BINARY = {
    "scaler", "scaler.client.client", "scaler.client.future", "scaler.client.object_reference",
    "scaler.cluster.combo", "scaler.cluster.cluster", "scaler.cluster.scheduler",
    "scaler.cluster.object_storage_server", "scaler.object_storage.object_storage_server",
    "scaler.entry_points.scheduler",
}


def test_readme_module_list_imports_and_names():
    rows = readme_modules()
    assert len(rows) >= 30, rows
    for module_name, names in rows:
        module = importlib.import_module(module_name)
        for name in names:
            assert hasattr(module, name), f"{module_name} has no {name} (python/README.md lists it)"
        handled = exercise_unit(module_name, module)
        assert handled or module_name in NEEDS_BINARY, f"{module_name}: no exercise in this test"


@pytest.fixture(scope="module")
def binary():
    path = scaler_binary()
    if path is None:
        pytest.skip("no scaler binary and no go toolchain")
    os.environ.setdefault("SCALER_BINARY", path)
    return path


def test_entry_points_run_the_binarys_roles(binary):
    for role, program in [("scheduler", "scaler_scheduler"), ("cluster", "scaler_cluster"),
                          ("object_storage_server", "scaler_object_storage_server"), ("top", "scaler_top"),
                          ("webui", "scaler_ui"), ("worker_adapter_native", "scaler_worker_adapter_native"),
                          ("worker_adapter_symphony", "scaler_worker_adapter_symphony")]:
        done = run_python(f"from scaler.entry_points.{role} import main; main()", "-h",
                          env=dict(os.environ, SCALER_BINARY=binary))
        assert done.returncode == 0 and done.stdout.startswith(f"usage: {program} "), (role, done.stdout, done.stderr)
    done = run_python("from scaler.entry_points.scheduler import main; main()", "--bogus",
                      env=dict(os.environ, SCALER_BINARY=binary))
    assert done.returncode == 2 and "unrecognized option --bogus" in done.stderr


def test_servers_started_the_1_12_5_way(binary, preload_module, tmp_path):
    """test_scaling.py's way: ObjectStorageServerProcess + SchedulerProcess + Cluster with config
    objects, every argument by keyword, a preload; then a client with profiling and send_object."""
    from scaler import Client, ScalerFuture
    from scaler.client.object_reference import ObjectReference
    from scaler.cluster.cluster import Cluster
    from scaler.cluster.object_storage_server import ObjectStorageServerProcess
    from scaler.cluster.scheduler import SchedulerProcess
    from scaler.config import defaults
    from scaler.config.types.object_storage_server import ObjectStorageConfig
    from scaler.config.types.zmq import ZMQConfig
    from scaler.scheduler.allocate_policy.allocate_policy import AllocatePolicy
    from scaler.utility.metadata.profile_result import ProfileResult
    from scaler.utility.network_util import get_available_tcp_port

    storage_config = ObjectStorageConfig("127.0.0.1", get_available_tcp_port())
    address = f"tcp://127.0.0.1:{get_available_tcp_port(consecutive=3)}"
    log = str(tmp_path / "cluster.log")
    object_storage = ObjectStorageServerProcess(storage_address=storage_config, logging_paths=("/dev/null",),
                                                logging_config_file=None, logging_level="INFO")
    scheduler = SchedulerProcess(
        address=ZMQConfig.from_string(address), storage_address=storage_config, monitor_address=None,
        adapter_webhook_url=None, io_threads=defaults.DEFAULT_IO_THREADS,
        max_number_of_tasks_waiting=defaults.DEFAULT_MAX_NUMBER_OF_TASKS_WAITING,
        client_timeout_seconds=defaults.DEFAULT_CLIENT_TIMEOUT_SECONDS,
        worker_timeout_seconds=defaults.DEFAULT_WORKER_TIMEOUT_SECONDS,
        object_retention_seconds=defaults.DEFAULT_OBJECT_RETENTION_SECONDS,
        load_balance_seconds=defaults.DEFAULT_LOAD_BALANCE_SECONDS,
        load_balance_trigger_times=defaults.DEFAULT_LOAD_BALANCE_TRIGGER_TIMES, protected=False,
        allocate_policy=AllocatePolicy.even, event_loop="builtin", logging_paths=("/dev/null",),
        logging_config_file=None, logging_level="INFO",
    )
    cluster = Cluster(
        address=ZMQConfig.from_string(address), storage_address=storage_config,
        preload="compat_preload_mod:setup_value('preloaded')", worker_io_threads=defaults.DEFAULT_IO_THREADS,
        worker_names=["compat_worker"], per_worker_capabilities={},
        per_worker_task_queue_size=defaults.DEFAULT_PER_WORKER_QUEUE_SIZE,
        heartbeat_interval_seconds=defaults.DEFAULT_HEARTBEAT_INTERVAL_SECONDS,
        task_timeout_seconds=defaults.DEFAULT_TASK_TIMEOUT_SECONDS, death_timeout_seconds=30,
        garbage_collect_interval_seconds=defaults.DEFAULT_GARBAGE_COLLECT_INTERVAL_SECONDS,
        trim_memory_threshold_bytes=defaults.DEFAULT_TRIM_MEMORY_THRESHOLD_BYTES,
        hard_processor_suspend=defaults.DEFAULT_HARD_PROCESSOR_SUSPEND, event_loop="builtin",
        logging_paths=(log,), logging_config_file=None, logging_level="INFO",
    )
    try:
        object_storage.start()
        object_storage.wait_until_ready()
        scheduler.start()
        cluster.start()
        with Client(address=address, profiling=True, timeout_seconds=60) as client:
            future = client.submit(importlib.import_module("compat_preload_mod").get_value)
            assert isinstance(future, ScalerFuture)
            assert future.result(timeout=60) == "preloaded"
            assert isinstance(future.profiling_info(), ProfileResult)
            reference = client.send_object(7, name="seven")
            assert isinstance(reference, ObjectReference)
            assert client.submit(square, reference).result(timeout=60) == 49
        lines = "".join(open(p).read() for p in glob.glob(log + "-*"))
        assert "preloading: compat_preload_mod:setup_value with args=['preloaded'] kwargs={}" in lines, lines
    finally:
        for process in (cluster, scheduler, object_storage):
            process.terminate()
        for process in (cluster, scheduler, object_storage):
            process.stop()
    assert not any(p.is_alive() for p in (cluster, scheduler, object_storage))


def test_object_storage_server_run_as_1_12_5(binary):
    """``ObjectStorageServer().run(host, port, identity, level, format, paths)`` blocks; another
    thread waits until it is ready."""
    from scaler.object_storage.object_storage_server import ObjectStorageServer

    server = ObjectStorageServer()
    port = free_port()
    runner = threading.Thread(target=server.run, args=("127.0.0.1", port, "ObjectStorageServer", "INFO",
                                                       "%(levelname)s: %(message)s", ("/dev/null",)), daemon=True)
    runner.start()
    try:
        server.wait_until_ready()
        import socket

        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        server.shutdown()
        runner.join(15)
    assert not runner.is_alive()


def test_combo_as_1_12_5s_readme(binary):
    """1.12.5's README: ``SchedulerClusterCombo(address=..., n_workers=...)``, then a Client."""
    import scaler
    from scaler.client.client import Client
    from scaler.cluster.combo import SchedulerClusterCombo

    assert scaler.SchedulerClusterCombo is SchedulerClusterCombo and scaler.Client is Client
    address = f"tcp://127.0.0.1:{scaler.utility.network_util.get_available_tcp_port(consecutive=3)}"
    cluster = SchedulerClusterCombo(address=address, n_workers=1, logging_paths=("/dev/null",))
    try:
        with scaler.Client(address=cluster.get_address()) as client:
            assert client.map(square, [(i,) for i in range(5)]) == [0, 1, 4, 9, 16]
            assert client.get({"a": 3, "b": (square, "a")}, keys=["b"]) == {"b": 9}
    finally:
        cluster.shutdown()
