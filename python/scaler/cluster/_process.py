"""Start and stop the scaler Go binary's roles as child processes."""

import atexit
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import weakref
from typing import Dict, List, Optional, Sequence

BINARY_ENV = "SCALER_BINARY"


def installed_binary() -> Optional[str]:
    """Where ``pip install`` put the binary: the environment's scripts directory (``bin/``)."""
    candidates = [sysconfig.get_path("scripts")]
    try:
        candidates.append(sysconfig.get_path("scripts", f"{os.name}_user"))  # pip install --user
    except KeyError:
        pass
    for directory in candidates:
        if directory:
            path = os.path.join(directory, "scaler")
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return path
    return None


def find_binary() -> str:
    """The scaler binary: $SCALER_BINARY, else the one pip installed, else ``scaler`` on PATH."""
    path = os.environ.get(BINARY_ENV)
    if path:
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise FileNotFoundError(f"{BINARY_ENV}={path!r} is not an executable file")
        return path
    installed = installed_binary()
    if installed:
        return installed
    found = shutil.which("scaler")
    if found:
        return found
    scripts = sysconfig.get_path("scripts")
    raise FileNotFoundError(
        f"cannot find the scaler binary: ${BINARY_ENV} is not set, there is no {os.path.join(scripts, 'scaler')} "
        f"(pip install ./python builds and installs it when Go and libzmq are present), and no `scaler` on PATH; "
        f"build it with `go build -o bin/scaler .` in the repository and set {BINARY_ENV}"
    )


def child_environment(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The caller's environment plus its sys.path (as PYTHONPATH) and interpreter, for processors."""
    env = dict(os.environ)
    cwd = os.getcwd()
    entries = []
    for entry in sys.path:
        entry = entry or cwd
        if entry not in entries:
            entries.append(entry)
    env["PYTHONPATH"] = os.pathsep.join(entries)
    env.setdefault("SCALER_PYTHON", sys.executable)
    if extra:
        env.update(extra)
    return env


def _die_with_parent() -> None:
    """Runs in the child before exec: get SIGTERM when the parent dies (Linux)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


_live: "weakref.WeakSet[RoleProcess]" = weakref.WeakSet()
_live_lock = threading.Lock()


class RoleProcess:
    """One role of the binary (``scaler <role> ...``) running as a child process.

    It has the parts of ``multiprocessing.Process`` that upstream's tests and examples use:
    ``start``, ``terminate``, ``kill``, ``join``, ``is_alive``, ``pid`` and ``exitcode``.
    """

    def __init__(self, role: str, arguments: Sequence[str], env: Optional[Dict[str, str]] = None):
        self._role = role
        self._arguments = [str(a) for a in arguments]
        self._env = env
        self._popen: Optional[subprocess.Popen] = None

    @property
    def command(self) -> List[str]:
        return [find_binary(), self._role, *self._arguments]

    def start(self) -> None:
        if self._popen is not None:
            raise RuntimeError(f"scaler {self._role} already started")
        self._popen = subprocess.Popen(
            self.command,
            env=self._env if self._env is not None else child_environment(),
            cwd=os.getcwd(),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        with _live_lock:
            _live.add(self)

    @property
    def pid(self) -> Optional[int]:
        return self._popen.pid if self._popen is not None else None

    @property
    def exitcode(self) -> Optional[int]:
        return self._popen.poll() if self._popen is not None else None

    def is_alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def _signal(self, signum: int) -> None:
        if self._popen is None or self._popen.poll() is not None:
            return
        try:
            self._popen.send_signal(signum)
        except ProcessLookupError:
            pass

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        self._kill_group()

    def join(self, timeout: Optional[float] = None) -> None:
        if self._popen is None:
            return
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def _kill_group(self) -> None:
        if self._popen is None:
            return
        try:
            os.killpg(self._popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, grace_seconds: float = 10.0) -> None:
        """SIGTERM, wait, then SIGKILL the whole process group; leaves nothing running."""
        if self._popen is None:
            return
        self.terminate()
        self.join(grace_seconds)
        if self._popen.poll() is None:
            self._popen.kill()
            self.join(5)
        self._kill_group()  # processors a killed agent could not stop


def _stop_all_at_exit() -> None:
    with _live_lock:
        processes = list(_live)
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + 5
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()
        process._kill_group()


atexit.register(_stop_all_at_exit)


def address_string(address) -> Optional[str]:
    """Accept a str or upstream-style config objects (ZMQConfig/ObjectStorageConfig)."""
    if address is None:
        return None
    if isinstance(address, str):
        return address
    to_address = getattr(address, "to_address", None)
    if callable(to_address):
        return to_address()
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    if host is not None and port is not None:
        return f"tcp://{host}:{port}"
    return str(address)
