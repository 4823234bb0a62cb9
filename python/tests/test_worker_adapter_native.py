"""scaler.worker_adapter.native.NativeWorkerAdapter: upstream 1.12.5's embeddable adapter class.

Like upstream's tests/test_scaling.py: a scheduler whose adapter_webhook_url is the adapter's
webhook, no cluster; the client's work makes the scheduler start workers through the adapter. Then
upstream's coroutines against the running adapter, and shutdown() leaves no process behind.
"""

import asyncio
import os
import time

import pytest

from scaler import Client
from scaler.cluster.scheduler import SchedulerProcess
from scaler.worker_adapter.common import CapacityExceededError, WorkerGroupNotFoundError
from scaler.worker_adapter.native import NativeWorkerAdapter

from _scaler_binary import free_port


def square(x):
    time.sleep(0.01)
    return x * x


def _descendants(pid):
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as f:
                    data = f.read()
            except OSError:
                continue
            fields = data[data.rindex(")") + 2:].split()
            if int(fields[1]) == parent and fields[0] not in ("Z", "X"):
                out.append(int(name))
                todo.append(int(name))
    return out


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_native_worker_adapter_scales_workers(scaler_bin, monkeypatch):
    monkeypatch.setenv("SCALER_BINARY", scaler_bin)
    port, web_port = free_port(3), free_port(1)
    address = f"tcp://127.0.0.1:{port}"
    adapter = NativeWorkerAdapter(address, capabilities={}, io_threads=1, task_queue_size=10, max_workers=2,
                                  heartbeat_interval_seconds=1, task_timeout_seconds=0, death_timeout_seconds=60,
                                  garbage_collect_interval_seconds=30, trim_memory_threshold_bytes=1 << 30,
                                  hard_processor_suspend=False, event_loop="builtin", logging_paths=("/dev/stdout",),
                                  logging_level="INFO", logging_config_file=None)
    with pytest.raises(NotImplementedError, match="start"):
        adapter.create_app()
    scheduler = SchedulerProcess(address, adapter_webhook_url=f"http://127.0.0.1:{web_port}/")
    scheduler.start()
    tree = []
    try:
        adapter.start("127.0.0.1", web_port)
        assert adapter.webhook_url == f"http://127.0.0.1:{web_port}/"
        with Client(address, timeout_seconds=60) as client:
            assert client.map(square, [(i,) for i in range(50)]) == [i * i for i in range(50)]
        tree = _descendants(adapter.pid)
        assert tree, "the adapter started no worker"

        async def coroutines():
            groups = []
            try:
                while True:  # up to its maximum
                    groups.append(await adapter.start_worker_group())
            except CapacityExceededError as e:
                assert "Maximum number of workers (2) reached." in str(e)
            for group in groups:
                assert group.startswith(b"native-")
                await adapter.shutdown_worker_group(group)
            with pytest.raises(WorkerGroupNotFoundError):
                await adapter.shutdown_worker_group(b"native-unknown")

        asyncio.run(coroutines())
        tree += _descendants(adapter.pid)
    finally:
        adapter.shutdown()
        scheduler.stop()
    assert not adapter.is_alive()
    _wait(lambda: not any(_alive(p) for p in tree), 30, "every worker the adapter started to be gone")


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rindex(")") + 2:].split()[0] not in ("Z", "X")
