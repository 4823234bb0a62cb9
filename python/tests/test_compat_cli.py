"""Command-line steps a new user takes: a cluster started by hand, and finding the binary."""

import os
import re
import signal
import stat
import subprocess
import sys
import sysconfig
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from _scaler_binary import REPO, free_port, scaler_binary  # noqa: E402

from scaler.cluster import _process  # noqa: E402


def executable(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


def stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def test_cluster_on_an_interpreter_without_scaler_says_which_and_how_to_choose(tmp_path):
    """A cluster started with a Python that lacks the scaler package (the system python3 for
    most users) stops at once, naming the interpreter and --python / SCALER_PYTHON; it used to
    start workers whose processors all exited 1 while clients waited."""
    binary = scaler_binary()
    if binary is None:
        pytest.skip("no scaler binary and no go toolchain")
    # -I -S: no PYTHONPATH, no site-packages, so no scaler package, whatever is installed.
    bare = executable(tmp_path / "bare-python", f'#!/bin/sh\nexec "{sys.executable}" -I -S "$@"\n')
    env = {k: v for k, v in os.environ.items() if k != "SCALER_PYTHON"}
    started = time.monotonic()
    try:
        done = subprocess.run(
            [binary, "cluster", f"tcp://127.0.0.1:{free_port()}", "-n", "1", "--python", bare],
            env=env, capture_output=True, text=True, timeout=60, start_new_session=True,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the cluster kept running with an interpreter that cannot run processors: {e.stdout!r}")
    took = time.monotonic() - started
    print(f"cluster exited {done.returncode} after {took:.2f}s: {done.stderr.strip()}")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert bare in last and "--python" in last and "SCALER_PYTHON" in last and "no scaler package" in last


def test_cluster_with_a_missing_interpreter_says_so():
    binary = scaler_binary()
    if binary is None:
        pytest.skip("no scaler binary and no go toolchain")
    done = subprocess.run(
        [binary, "cluster", f"tcp://127.0.0.1:{free_port()}", "-n", "1", "--python", "no-such-python-3.99"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert "no-such-python-3.99" in done.stderr and "SCALER_PYTHON" in done.stderr


def readme_hand_started_block():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        text = f.read()
    found = re.search(r"<!-- hand-started example[^\n]*-->\n```sh\n(.*?)```", text, re.S)
    assert found, "README.md has no hand-started example block"
    return [line for line in found.group(1).splitlines() if line.strip()]


def test_readme_hand_started_example_works_as_written(tmp_path):
    """README's scheduler, cluster and client lines, run as written (only the port is changed so
    that parallel runs do not collide): the client prints 1024."""
    binary = scaler_binary()
    if binary is None:
        pytest.skip("no scaler binary and no go toolchain")
    lines = readme_hand_started_block()
    assert len(lines) == 3 and lines[0].startswith("bin/scaler_scheduler") and lines[1].startswith("bin/scaler_cluster")
    # The layout the README's build steps leave: bin/ with the scaler_* links, .venv/bin/python.
    os.makedirs(tmp_path / "bin")
    os.symlink(binary, tmp_path / "bin" / "scaler")
    subprocess.run([str(tmp_path / "bin" / "scaler"), "install-links", str(tmp_path / "bin")], check=True, timeout=30)
    os.makedirs(tmp_path / ".venv" / "bin")
    executable(tmp_path / ".venv" / "bin" / "python", f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    port = str(free_port())
    lines = [line.replace("8516", port) for line in lines]
    env = {k: v for k, v in os.environ.items() if k not in ("SCALER_PYTHON", "PYTHONPATH")}
    logs = [open(tmp_path / f"{name}.log", "w+") for name in ("scheduler", "cluster")]
    servers = []
    try:
        for line, log in zip(lines[:2], logs):
            servers.append(subprocess.Popen(
                ["bash", "-c", "exec " + line], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            ))
        client = subprocess.run(["bash", "-c", lines[2]], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=120)
        for log in logs:
            log.seek(0)
        assert client.returncode == 0 and client.stdout.strip() == "1024", (
            client.stdout, client.stderr, [log.read()[-2000:] for log in logs])
        # The module-level client left with its goodbye as the script ended (an exit hook): its
        # __del__, run only during finalization when its agent thread can no longer act, used to
        # wait 10 s for an answer and then end with the connection merely closed.
        logs[0].seek(0)
        scheduler_log = logs[0].read()
        assert "client disconnected" in scheduler_log and "client connection closed" not in scheduler_log, scheduler_log
    finally:
        for server in servers:
            stop(server)
        for log in logs:
            log.close()


def fake_binary(directory):
    os.makedirs(directory, exist_ok=True)
    return executable(os.path.join(directory, "scaler"), "#!/bin/sh\nexit 0\n")


def test_binary_lookup_order(tmp_path, monkeypatch):
    """$SCALER_BINARY, then the binary pip installed into the environment's bin/, then PATH."""
    explicit = fake_binary(tmp_path / "explicit")
    installed = fake_binary(tmp_path / "venv-bin")
    on_path = fake_binary(tmp_path / "on-path")
    real_get_path = sysconfig.get_path

    def get_path(name, *args, **kwargs):
        if name == "scripts":
            return str(tmp_path / ("venv-bin" if not args else "user-bin"))
        return real_get_path(name, *args, **kwargs)

    monkeypatch.setattr(sysconfig, "get_path", get_path)
    monkeypatch.setenv("PATH", str(tmp_path / "on-path"))
    monkeypatch.setenv("SCALER_BINARY", explicit)
    assert _process.find_binary() == explicit
    monkeypatch.delenv("SCALER_BINARY")
    assert _process.find_binary() == installed
    os.remove(installed)
    assert _process.find_binary() == on_path
    os.remove(on_path)
    with pytest.raises(FileNotFoundError) as raised:
        _process.find_binary()
    message = str(raised.value)
    assert "SCALER_BINARY" in message and str(tmp_path / "venv-bin" / "scaler") in message and "PATH" in message
