import atexit
import functools
import logging
import os
import shutil
import socket
import tempfile
from typing import Dict, Optional, Tuple

from scaler.cluster._process import address_string
from scaler.cluster.cluster import Cluster
from scaler.cluster.object_storage_server import ObjectStorageServerProcess
from scaler.cluster.scheduler import SchedulerProcess
from scaler.utility.network_util import (
    get_available_tcp_port,
    register_local_endpoint,
    unregister_local_endpoint,
    wait_until_listening,
)

logger = logging.getLogger("scaler.cluster")
_MAX_SOCKET_PATH = 100  # bytes; Linux allows 107 in a Unix socket address


class _HostedCluster(Cluster):
    """The combo's workers, which run inside the scheduler's process (``scaler combo``): upstream's
    ``Cluster`` attributes, and the process methods of that process, which they cannot outlive."""

    _host = None  # the SchedulerProcess that runs the workers

    def start(self) -> None:
        pass  # started with the scheduler

    @property
    def pid(self):
        return self._host.pid

    @property
    def exitcode(self):
        return self._host.exitcode

    def is_alive(self) -> bool:
        return self._host.is_alive()

    def terminate(self) -> None:
        self._host.terminate()

    def kill(self) -> None:
        self._host.kill()

    def join(self, timeout=None) -> None:
        self._host.join(timeout)

    def stop(self, grace_seconds: float = 10.0) -> None:
        self._host.stop(grace_seconds)


class SchedulerClusterCombo:
    """A local scheduler (with its object storage) and ``n_workers`` workers, in a child process.

    Takes upstream's keyword arguments. ``shutdown()`` (also run at interpreter exit) stops
    everything it started.

    The workers' agents run inside the scheduler's process (``scaler combo``), connected to it over
    ``inproc://``; their processors are that process's children. ``_cluster`` is still the
    ``Cluster`` of upstream's attributes, but not a process of its own: its ``pid``, ``is_alive()``,
    ``terminate()``, ``kill()`` and ``join()`` are the scheduler process's, since the workers cannot
    outlive it, nor it them.
    """

    def __init__(
        self,
        n_workers: int,
        address: Optional[str] = None,
        storage_address: Optional[str] = None,
        monitor_address: Optional[str] = None,
        per_worker_capabilities: Optional[Dict[str, int]] = None,
        worker_io_threads: int = 1,
        scheduler_io_threads: int = 1,
        max_number_of_tasks_waiting: int = -1,
        heartbeat_interval_seconds: int = 2,
        client_timeout_seconds: int = 60,
        worker_timeout_seconds: int = 60,
        object_retention_seconds: int = 60,
        task_timeout_seconds: int = 0,
        death_timeout_seconds: int = 300,
        load_balance_seconds: int = 1,
        load_balance_trigger_times: int = 2,
        garbage_collect_interval_seconds: int = 30,
        trim_memory_threshold_bytes: int = 1024 * 1024 * 1024,
        per_worker_task_queue_size: int = 1000,
        hard_processor_suspend: bool = False,
        protected: bool = True,
        allocate_policy="even",
        event_loop: str = "builtin",
        logging_paths: Tuple[str, ...] = ("/dev/stdout",),
        logging_level: str = "INFO",
        logging_config_file: Optional[str] = None,
    ):
        self._stopped = False
        self._local_dir = None
        self._remove_local_dir = None
        self._object_storage = None
        self._cluster = None
        self._scheduler = None
        if address is None:
            # the scheduler also binds port + 1 (object storage) and port + 2 (monitor)
            address = f"tcp://127.0.0.1:{get_available_tcp_port(consecutive=3)}"
        self._address = address_string(address)
        self._storage_address = address_string(storage_address)
        self._monitor_address = address_string(monitor_address)
        # Every process it starts logs alike.
        logging_settings = dict(
            logging_paths=logging_paths, logging_level=logging_level, logging_config_file=logging_config_file
        )

        try:
            # Clients created in this process reach the scheduler over a Unix socket, which costs
            # less per message than TCP loopback (`docs/performance.md`); get_address() and
            # everything else use ``address`` as before.
            self._local_dir = tempfile.mkdtemp(prefix="scaler-combo-")
            # Removed by shutdown(), or at interpreter exit if shutdown() never ran.
            self._remove_local_dir = functools.partial(shutil.rmtree, self._local_dir, ignore_errors=True)
            atexit.register(self._remove_local_dir)
            local_address = f"ipc://{os.path.join(self._local_dir, 'scheduler.sock')}"
            if len(local_address.encode()) - len("ipc://") >= _MAX_SOCKET_PATH:
                local_address = None  # a long $TMPDIR: TCP only
            if self._storage_address is not None:
                self._object_storage = ObjectStorageServerProcess(self._storage_address, **logging_settings)
                self._object_storage.start()
                self._object_storage.wait_until_ready()  # as 1.12.5: storage is up before the rest
            hostname = socket.gethostname().split(".")[0]
            self._cluster = (_HostedCluster if n_workers > 0 else Cluster)(
                address=self._address,
                storage_address=self._storage_address,
                preload=None,
                worker_io_threads=worker_io_threads,
                worker_names=[f"{hostname}_{i}" for i in range(n_workers)],
                per_worker_capabilities=per_worker_capabilities or {},
                per_worker_task_queue_size=per_worker_task_queue_size,
                heartbeat_interval_seconds=heartbeat_interval_seconds,
                task_timeout_seconds=task_timeout_seconds,
                death_timeout_seconds=death_timeout_seconds,
                garbage_collect_interval_seconds=garbage_collect_interval_seconds,
                trim_memory_threshold_bytes=trim_memory_threshold_bytes,
                hard_processor_suspend=hard_processor_suspend,
                event_loop=event_loop,
                **logging_settings,
            )
            self._n_workers = n_workers
            self._scheduler = SchedulerProcess(
                self._address,
                storage_address=self._storage_address,
                monitor_address=self._monitor_address,
                io_threads=scheduler_io_threads,
                max_number_of_tasks_waiting=max_number_of_tasks_waiting,
                client_timeout_seconds=client_timeout_seconds,
                worker_timeout_seconds=worker_timeout_seconds,
                object_retention_seconds=object_retention_seconds,
                load_balance_seconds=load_balance_seconds,
                load_balance_trigger_times=load_balance_trigger_times,
                protected=protected,
                allocate_policy=allocate_policy,
                event_loop=event_loop,
                local_address=local_address,
                # The workers run in the scheduler's process, over inproc:// (docs/performance.md).
                _workers=self._cluster if n_workers > 0 else None,
                **logging_settings,
            )
            if n_workers > 0:
                self._cluster._host = self._scheduler
            self._scheduler.start()  # and with it the workers
            host, _, port = self._address[len("tcp://"):].rpartition(":")
            wait_until_listening(host.strip("[]"), int(port), self._scheduler.is_alive)
            if local_address is not None:
                register_local_endpoint(self._address, local_address)  # clients of this process use it
        except BaseException:
            self.shutdown()
            raise
        logger.info(f"{self.__get_prefix()} started")

    def __get_prefix(self) -> str:
        return f"{self.__class__.__name__}:"

    def get_address(self) -> str:
        return self._address

    def shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        unregister_local_endpoint(self._address)
        for process in (self._cluster, self._scheduler):
            if process is not None:
                process.terminate()
        for process in (self._cluster, self._scheduler, self._object_storage):
            if process is not None:
                process.stop()
        if self._remove_local_dir is not None:
            self._remove_local_dir()
            atexit.unregister(self._remove_local_dir)
        logger.info(f"{self.__get_prefix()} shut down")

    def __del__(self):
        try:
            self.shutdown()
        except Exception:
            pass
