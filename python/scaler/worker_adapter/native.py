"""``NativeWorkerAdapter``: the native worker adapter for programs that embed it.

Upstream 1.12.5's class ran an aiohttp web app in the caller's process and started ``Worker``
processes itself. Here the adapter is the scaler binary's ``worker_adapter_native`` role, started as a
child process with the constructor's options (like ``scaler.Cluster``): ``start(host, port)`` (or
``run(host, port)``, which blocks like ``aiohttp.web.run_app``) serves the webhook at
``http://host:port/`` for the scheduler's ``--adapter-webhook-url``; ``shutdown()`` stops it and every
worker it started. ``start_worker_group`` and ``shutdown_worker_group`` are upstream's coroutines; they
call the running adapter's webhook.
"""

import asyncio
import json
import socket
import time
import urllib.error
import urllib.request
from typing import Dict, Optional, Tuple

from scaler.cluster._process import RoleProcess, address_string, child_environment, logging_options, role_options
from scaler.cluster.cluster import _capabilities_text
from scaler.worker_adapter.common import CapacityExceededError, WorkerGroupID, WorkerGroupNotFoundError


class NativeWorkerAdapter:
    def __init__(
        self,
        address,
        storage_address=None,
        capabilities: Optional[Dict[str, int]] = None,
        io_threads: int = 1,
        task_queue_size: int = 10,
        max_workers: Optional[int] = None,
        heartbeat_interval_seconds: int = 2,
        task_timeout_seconds: int = 0,
        death_timeout_seconds: int = 300,
        garbage_collect_interval_seconds: int = 30,
        trim_memory_threshold_bytes: int = 1024 * 1024 * 1024,
        hard_processor_suspend: bool = False,
        event_loop: str = "builtin",
        logging_paths: Tuple[str, ...] = ("/dev/stdout",),
        logging_level: str = "INFO",
        logging_config_file: Optional[str] = None,
        object_storage_address=None,
        preload: Optional[str] = None,
    ):
        # object_storage_address: the keyword's later upstream name; preload: not in 1.12.5 (its
        # adapter started workers without a preload hook).
        self._address = address
        self._options = role_options(
            ("-osa", address_string(storage_address or object_storage_address)),
            ("-pwc", _capabilities_text(capabilities)),
            ("--io-threads", io_threads),
            ("-wtqs", task_queue_size),
            ("-mw", max_workers),
            ("-hi", heartbeat_interval_seconds),
            ("-tt", task_timeout_seconds),
            ("-dt", death_timeout_seconds),
            ("-gc", garbage_collect_interval_seconds),
            ("-tm", trim_memory_threshold_bytes),
            ("-hps", bool(hard_processor_suspend)),
            ("-e", event_loop),
            ("--preload", preload),
            *logging_options(logging_paths, logging_level, logging_config_file),
        )
        self._process: Optional[RoleProcess] = None
        self._host: Optional[str] = None
        self._port: Optional[int] = None

    # ------------------------------------------------------------ the adapter process

    def start(self, host: str = "localhost", port: int = 8080, timeout_seconds: float = 60.0) -> "NativeWorkerAdapter":
        """Start the adapter serving ``http://host:port/``; returns once it accepts connections."""
        if self._process is not None and self._process.is_alive():
            raise RuntimeError("the adapter is already running")
        self._host, self._port = host, int(port)
        arguments = [address_string(self._address), "--adapter-web-host", host, "--adapter-web-port", self._port]
        self._process = RoleProcess("worker_adapter_native", arguments + self._options, env=child_environment())
        self._process.start()
        deadline = time.monotonic() + timeout_seconds
        while True:
            if not self._process.is_alive():
                raise RuntimeError(f"scaler worker_adapter_native exited with status {self._process.exitcode}")
            try:
                with socket.create_connection((host, self._port), timeout=0.5):
                    return self
            except OSError:
                if time.monotonic() >= deadline:
                    self.shutdown()
                    raise TimeoutError(f"the adapter did not listen on {host}:{self._port} within {timeout_seconds}s")
                time.sleep(0.05)

    def run(self, host: str = "localhost", port: int = 8080) -> None:
        """Serve until interrupted (KeyboardInterrupt) or the adapter exits, then stop it."""
        self.start(host, port)
        try:
            while self._process.is_alive():
                self._process.join(0.5)
        finally:
            self.shutdown()

    def shutdown(self, grace_seconds: float = 20.0) -> None:
        """Stop the adapter; it stops every worker it started first."""
        if self._process is not None:
            self._process.stop(grace_seconds)

    def is_alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    @property
    def pid(self) -> Optional[int]:
        return self._process.pid if self._process is not None else None

    @property
    def webhook_url(self) -> str:
        """The URL to give the scheduler as ``--adapter-webhook-url`` / ``adapter_webhook_url``."""
        if self._port is None:
            raise RuntimeError("the adapter is not started")
        return f"http://{self._host}:{self._port}/"

    def create_app(self):
        raise NotImplementedError(
            "this NativeWorkerAdapter is the scaler binary's worker_adapter_native role, not an aiohttp app: "
            "call adapter.start(host, port) (or run(host, port)) and give the scheduler adapter.webhook_url"
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()

    # ------------------------------------------------------------ upstream's coroutines

    def _post(self, body: dict) -> Tuple[int, dict]:
        request = urllib.request.Request(self.webhook_url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            try:
                return e.code, json.loads(e.read())
            except ValueError:
                return e.code, {"error": str(e)}

    async def start_worker_group(self) -> WorkerGroupID:
        status, body = await asyncio.get_running_loop().run_in_executor(
            None, self._post, {"action": "start_worker_group"})
        if status == 429:
            raise CapacityExceededError(body.get("error", "maximum number of workers reached"))
        if status != 200:
            raise RuntimeError(body.get("error", f"HTTP {status}"))
        return body["worker_group_id"].encode()

    async def shutdown_worker_group(self, worker_group_id: WorkerGroupID) -> None:
        group = worker_group_id.decode() if isinstance(worker_group_id, bytes) else str(worker_group_id)
        status, body = await asyncio.get_running_loop().run_in_executor(
            None, self._post, {"action": "shutdown_worker_group", "worker_group_id": group})
        if status == 404:
            raise WorkerGroupNotFoundError(body.get("error", f"Worker group with ID {group} does not exist."))
        if status != 200:
            raise RuntimeError(body.get("error", f"HTTP {status}"))
