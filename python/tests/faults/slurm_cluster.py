"""A single-host Slurm cluster in a temporary directory, for the Slurm adapter's tests.

``SlurmCluster(dir).start()`` writes a slurm.conf (this host as the one node ``localhost`` with its CPUs
and memory, one partition, no cgroups, no accounting, ``auth/none`` so that no munge key or daemon is
needed, ports picked free on 127.0.0.1, every state and log file under ``dir``), starts ``slurmctld``
and ``slurmd`` as root in process groups of their own and waits until ``sinfo`` shows the node idle.
``stop()`` cancels every job, waits for them to leave the queue, stops both daemons and kills any
``slurmstepd`` they left. Commands see the cluster through ``env["SLURM_CONF"]``.

Where Slurm cannot start (not installed: ``.ci/setup`` installs Debian's ``slurm-wlm``; not root; a
daemon exits), ``start()`` raises ``SlurmUnavailable`` with the reason, which the tests turn into a skip.

Run by hand: ``python python/tests/faults/slurm_cluster.py -- COMMAND ...`` starts a cluster, runs the
command with SLURM_CONF set (e.g. ``bash`` to try sbatch and squeue), then stops the cluster.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _scaler_binary import free_port  # noqa: E402  python/tests/_scaler_binary.py

COMMANDS = ("slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the process that started it dies, so that a test run
    killed with SIGKILL leaves no controller or node daemon behind (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except Exception:
        pass


class SlurmUnavailable(Exception):
    """Slurm cannot run here; the message says why."""


def _memory_mib() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 1024


class SlurmCluster:
    def __init__(self, directory: str):
        self.dir = os.path.abspath(directory)
        self.conf = os.path.join(self.dir, "slurm.conf")
        self.env: Dict[str, str] = dict(os.environ, SLURM_CONF=self.conf)
        self.procs: Dict[str, subprocess.Popen] = {}
        self.cpus = os.cpu_count() or 1

    # -- configuration
    def write_conf(self) -> None:
        d = self.dir
        for sub in ("state", "spool"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        ctld_port = free_port(1)
        slurmd_port = free_port(1)
        # Less than the machine has, so that slurmd's check of RealMemory never drains the node.
        memory = max(256, int(_memory_mib() * 0.9))
        lines = [
            "ClusterName=scalertest",
            "SlurmctldHost=localhost(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            # No munge daemon or key: this Slurm (22.05) still ships auth/none and cred/none.
            "AuthType=auth/none",
            "CredType=cred/none",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"StateSaveLocation={d}/state",
            f"SlurmdSpoolDir={d}/spool",
            f"SlurmctldPidFile={d}/slurmctld.pid",
            f"SlurmdPidFile={d}/slurmd.pid",
            f"SlurmctldLogFile={d}/slurmctld.log",
            f"SlurmdLogFile={d}/slurmd.log",
            # No cgroups in containers: processes are tracked by parentage, tasks are not bound.
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "SchedulerType=sched/backfill",
            "MpiDefault=none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "ReturnToService=2",
            "SlurmdTimeout=60",
            "InactiveLimit=0",
            # Finished jobs leave the controller's memory soon; squeue never lists them anyway.
            "MinJobAge=10",
            # scancel: SIGTERM, then SIGKILL after this long; scaler's cluster stops its workers within it.
            "KillWait=10",
            "MailProg=/bin/true",
            f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={memory} State=UNKNOWN",
            "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
        ]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    # -- life cycle
    def start(self, timeout: float = 60.0) -> "SlurmCluster":
        # The daemons live in /usr/sbin, which a user's PATH may lack.
        found = {c: shutil.which(c) or shutil.which(c, path="/usr/sbin:/sbin") for c in COMMANDS}
        missing = [c for c, path in found.items() if path is None]
        if missing:
            raise SlurmUnavailable(f"Slurm is not installed (no {', '.join(missing)}); .ci/setup installs Debian's slurm-wlm")
        if os.geteuid() != 0:
            raise SlurmUnavailable("slurmd must run as root to start jobs, and these tests do not run as root")
        self.write_conf()
        for name, argv in (("slurmctld", [found["slurmctld"], "-D", "-f", self.conf]),
                           ("slurmd", [found["slurmd"], "-D", "-N", "localhost", "-f", self.conf])):
            out = open(os.path.join(self.dir, f"{name}.out"), "ab")
            try:
                self.procs[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                                    stdin=subprocess.DEVNULL, env=self.env,
                                                    start_new_session=True, preexec_fn=_die_with_parent)
            finally:
                out.close()
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    tail = self.tail(name)
                    self.stop()
                    raise SlurmUnavailable(f"{name} exited with {p.returncode} at start:\n{tail}")
            r = subprocess.run(["sinfo", "-h", "-n", "localhost", "-o", "%T"], env=self.env,
                               capture_output=True, text=True, timeout=30)
            state = r.stdout.strip()
            if r.returncode == 0 and state == "idle":
                return self
            time.sleep(0.3)
        tails = "\n".join(self.tail(n) for n in self.procs)
        self.stop()
        raise SlurmUnavailable(f"the node did not become idle within {timeout:.0f} s (sinfo: {state!r}):\n{tails}")

    def tail(self, name: str, n: int = 15) -> str:
        lines: List[str] = []
        for suffix in (".out", ".log"):
            try:
                with open(os.path.join(self.dir, name + suffix), errors="replace") as f:
                    lines += f.read().splitlines()[-n:]
            except OSError:
                pass
        return "\n".join(f"  {name}: {line}" for line in lines)

    # -- queries
    def run(self, *argv: str, check: bool = True) -> str:
        r = subprocess.run(list(argv), env=self.env, capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}")
        return r.stdout

    def jobs(self, name_prefix: str = "") -> Dict[str, str]:
        """Jobs squeue lists (job id -> state), those whose name starts with name_prefix."""
        out = self.run("squeue", "-h", "-o", "%i|%j|%T")
        jobs = {}
        for line in out.splitlines():
            parts = line.strip().split("|")
            if len(parts) == 3 and parts[1].startswith(name_prefix):
                jobs[parts[0]] = parts[2]
        return jobs

    def _stepds(self) -> List[int]:
        """slurmstepd processes started by this cluster's slurmd (they carry its SLURM_CONF)."""
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if not f.read().startswith(b"slurmstepd"):
                        continue
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if f"SLURM_CONF={self.conf}".encode() in f.read().split(b"\0"):
                        out.append(int(entry))
            except OSError:
                pass
        return out

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel every job (bounded wait), stop both daemons, kill what they left."""
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            try:
                ids = list(self.jobs())
                if ids:
                    self.run("scancel", *ids, check=False)
                deadline = time.monotonic() + timeout
                while self.jobs() and time.monotonic() < deadline:
                    time.sleep(0.3)
            except Exception:
                pass
        for name in ("slurmd", "slurmctld"):
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                continue
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
            except ProcessLookupError:
                pass
        for pid in self._stepds():
            try:
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            except OSError:
                pass
        self.procs.clear()


def main(argv: List[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1:]
    d = tempfile.mkdtemp(prefix="scaler-slurm-")
    cluster = SlurmCluster(d)
    try:
        cluster.start()
    except SlurmUnavailable as e:
        print(f"slurm_cluster: cannot start Slurm: {e}", file=sys.stderr)
        return 1
    print(f"slurm_cluster: running in {d}; SLURM_CONF={cluster.conf}", file=sys.stderr)
    try:
        return subprocess.call(argv or ["sinfo"], env=cluster.env)
    finally:
        cluster.stop()
        print("slurm_cluster: stopped", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
