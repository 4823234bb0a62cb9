"""``scaler up -c FILE``: the seed's Scenario 1 file as one command.

Real processes: the supervisor starts object storage, scheduler, an 8-worker cluster and the web
UI from a copy of testdata/example_config.toml (ports changed to free ones, the scheduler's log
file moved into the test's directory). A client maps 1,000 tasks; SIGTERM stops the stack within
5 s with no process of its tree left; a scheduler killed with -9 stops the stack with a message
naming the role and how it ended.
"""

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from _scaler_binary import REPO, free_port, scaler_binary  # noqa: E402

ROLES = ("object_storage_server", "scheduler", "cluster", "webui")


def _stack_file(tmp_path, workers=8):
    """testdata/example_config.toml with its ports replaced by free ones."""
    with open(os.path.join(REPO, "testdata", "example_config.toml")) as f:
        text = f.read()
    sched = free_port(3)  # scheduler, storage, monitor: the file's 6378, 6379, 6380
    web = free_port(1)
    for old, new in (("6378", sched), ("6379", sched + 1), ("6380", sched + 2), ("8081", web)):
        assert old in text, old
        text = text.replace(old, str(new))
    text = text.replace("/var/log/scaler", str(tmp_path / "log"))
    text = text.replace("num_of_workers = 8", f"num_of_workers = {workers}")
    path = tmp_path / "example_config.toml"
    path.write_text(text)
    return path, sched, web


class Stack:
    def __init__(self, tmp_path, config):
        binary = scaler_binary()
        if binary is None:
            pytest.skip("no scaler binary and no go to build one")
        self.out = open(tmp_path / "up.out", "w+")
        self.err = open(tmp_path / "up.err", "w+")
        env = dict(os.environ, SCALER_PYTHON=os.environ.get("SCALER_PYTHON", sys.executable))
        # A session of its own, so the test can look for leftovers by process group too.
        self.proc = subprocess.Popen([binary, "up", "-c", str(config)], stdout=self.out, stderr=self.err,
                                     env=env, start_new_session=True)

    def output(self):
        self.out.flush()
        self.err.flush()
        with open(self.out.name) as o, open(self.err.name) as e:
            return o.read(), e.read()

    def wait_running(self, deadline_s=120):
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            out, err = self.output()
            if re.search(r"^scaler up: \d+ roles? running", out, re.M):
                return out
            if self.proc.poll() is not None:
                pytest.fail(f"scaler up exited with {self.proc.returncode} before running:\n{out}\n{err}")
            time.sleep(0.2)
        pytest.fail(f"scaler up did not report running within {deadline_s}s:\n{self.output()}")

    def tree(self):
        """Every process under the supervisor, with its process group."""
        me = psutil.Process(self.proc.pid)
        procs = me.children(recursive=True)
        return {p.pid: (p.create_time(), os.getpgid(p.pid)) for p in procs if p.is_running()}

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for pid, pgid in getattr(self, "_seen_groups", {}).items():
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _role_pids(out):
    pids = {}
    for role in ROLES:
        m = re.search(rf"^scaler up: {role} +(.*)\(pid (\d+)\)$", out, re.M)
        assert m, f"no ready line for {role}:\n{out}"
        pids[role] = int(m.group(2))
    return pids


def _workers(cluster_pid):
    """The cluster's worker agents: its direct children (a worker's own child is, between fork
    and exec, a copy of the worker, command line included)."""
    workers = []
    for p in psutil.Process(cluster_pid).children():
        try:
            if p.cmdline()[1:2] == ["worker"]:
                workers.append(p)
        except psutil.NoSuchProcess:
            pass
    return workers


def _leftovers(tree):
    """Processes of tree that still run (same pid and start time), and groups not empty."""
    alive = []
    for pid, (created, pgid) in tree.items():
        try:
            if psutil.Process(pid).create_time() == created:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    groups = []
    for pgid in {g for _, g in tree.values()}:
        try:
            os.killpg(pgid, 0)
            groups.append(pgid)
        except ProcessLookupError:
            pass
    return alive, groups


def test_up_seed_file_maps_and_stops_on_sigterm(tmp_path):
    config, sched, web = _stack_file(tmp_path)
    stack = Stack(tmp_path, config)
    try:
        out = stack.wait_running()
        pids = _role_pids(out)
        # One ready line per role, in dependency order, with its address.
        order = [out.index(f"scaler up: {r} ") for r in ROLES]
        assert order == sorted(order), out
        assert f"tcp://127.0.0.1:{sched}" in out and f":{web}/" in out and "8 workers" in out
        # Every role is a child of the supervisor, each leading a process group of its own.
        for role, pid in pids.items():
            assert psutil.Process(pid).ppid() == stack.proc.pid, role
            assert os.getpgid(pid) == pid, role

        deadline = time.monotonic() + 60
        while len(_workers(pids["cluster"])) < 8 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_workers(pids["cluster"])) == 8

        from scaler import Client

        offset = 7

        def shifted_square(x):  # by value: the workers cannot import this test module
            return x * x + offset

        with Client(address=f"tcp://127.0.0.1:{sched}") as client:
            results = client.map(shifted_square, [(i,) for i in range(1000)])
        assert results == [i * i + 7 for i in range(1000)]
        assert urllib.request.urlopen(f"http://127.0.0.1:{web}/", timeout=10).status == 200
        # Every role's log lines carry its name (the cluster, not waited for, has logged by now).
        out, _ = stack.output()
        for role in ROLES:
            assert re.search(rf"^{role} +\| \[INFO\]", out, re.M), f"no labelled log line of {role}:\n{out}"

        tree = stack.tree()
        assert len(tree) >= 4 + 8  # roles and workers, and their processors
        stack._seen_groups = {pid: g for pid, (_, g) in tree.items()}
        start = time.monotonic()
        stack.proc.send_signal(signal.SIGTERM)
        stack.proc.wait(timeout=30)
        took = time.monotonic() - start
        out, err = stack.output()
        assert stack.proc.returncode == 0, (out, err)
        assert took < 5, f"SIGTERM took {took:.1f}s to stop the stack:\n{out}"
        print(f"scaler up: {len(tree)} processes, 1,000 tasks mapped, SIGTERM stopped all in {took:.2f}s")
        # Stopped in reverse order, each named with how it ended.
        stops = [out.index(f"scaler up: stopped {r} ") for r in reversed(ROLES)]
        assert stops == sorted(stops), out
        alive, groups = _leftovers(tree)
        assert not alive and not groups, f"left running: {alive}, non-empty groups {groups}"
    finally:
        stack.kill()


def test_up_stops_when_the_scheduler_dies(tmp_path):
    config, sched, _ = _stack_file(tmp_path, workers=2)
    stack = Stack(tmp_path, config)
    try:
        pids = _role_pids(stack.wait_running())
        tree = stack.tree()
        stack._seen_groups = {pid: g for pid, (_, g) in tree.items()}
        os.kill(pids["scheduler"], signal.SIGKILL)
        stack.proc.wait(timeout=30)
        out, err = stack.output()
        assert stack.proc.returncode == 1, (out, err)
        want = f"scaler up: error: scheduler (pid {pids['scheduler']}) ended by itself: killed by signal SIGKILL (9); stopping the stack"
        assert want in err, err
        for role in ("webui", "cluster", "object_storage_server"):
            assert f"scaler up: stopped {role} " in out, out
        alive, groups = _leftovers(tree)
        assert not alive and not groups, f"left running: {alive}, non-empty groups {groups}"
    finally:
        stack.kill()


def test_up_refuses_a_port_someone_else_listens_on(tmp_path):
    """A scheduler port that already answers is another process's: taking its connect for the
    scheduler would leave a stack without one."""
    import socket

    config, sched, _ = _stack_file(tmp_path, workers=1)
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", sched))
    squatter.listen()
    try:
        stack = Stack(tmp_path, config)
        try:
            stack.proc.wait(timeout=60)
            out, err = stack.output()
            assert stack.proc.returncode == 1, (out, err)
            assert f"cannot start scheduler: 127.0.0.1:{sched} already accepts connections" in err, err
            assert "scaler up: stopped object_storage_server " in out, out
            assert "scaler up: cluster" not in out, out
        finally:
            stack.kill()
    finally:
        squatter.close()
