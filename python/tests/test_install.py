"""``pip install ./python`` gives a working environment on its own (issue 13).

A fresh virtual environment gets the Go binary and the ``scaler_*`` commands in its ``bin/``;
``SchedulerClusterCombo``, ``scaler_scheduler`` and ``scaler_cluster`` then run with nothing else
on PATH (no Go, no scaler). It takes about a minute (a venv, the dependencies from pip's cache,
``go build`` from Go's build cache); ``SCALER_SKIP_INSTALL_TEST=1`` skips it.
"""

import os
import shutil
import signal
import subprocess
import sys
import venv

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from _scaler_binary import REPO, free_port  # noqa: E402

ROLES = ["scaler_scheduler", "scaler_cluster", "scaler_object_storage_server", "scaler_top", "scaler_ui",
         "scaler_worker_adapter_native", "scaler_worker_adapter_symphony"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    if os.environ.get("SCALER_SKIP_INSTALL_TEST"):
        pytest.skip("SCALER_SKIP_INSTALL_TEST is set")
    if shutil.which("go") is None:
        pytest.skip("go is not on PATH: pip install ./python cannot build the binary")
    root = tmp_path_factory.mktemp("fresh-venv")
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = str(env_dir / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("SCALER_BINARY", "SCALER_PYTHON", "PYTHONPATH",
                                                            "SCALER_SKIP_GO_BUILD", "VIRTUAL_ENV")}
    done = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           os.path.join(REPO, "python")], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return env_dir


def bare_env(env_dir):
    """Nothing of ours on PATH but the environment's bin/ (as after `source venv/bin/activate`)."""
    return {"HOME": os.environ.get("HOME", "/tmp"), "PATH": f"{env_dir}/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def test_bin_has_the_binary_and_the_commands(installed):
    bin_dir = installed / "bin"
    assert os.access(bin_dir / "scaler", os.X_OK)
    version = subprocess.run([str(bin_dir / "scaler"), "--version"], capture_output=True, text=True, timeout=30)
    assert version.returncode == 0 and "compatible with Scaler 1.12.5" in version.stdout
    for role in ROLES:
        done = subprocess.run([str(bin_dir / role), "-h"], env=bare_env(installed), capture_output=True, text=True,
                              timeout=30)
        assert done.returncode == 0 and done.stdout.startswith(f"usage: {role} "), (role, done.stdout, done.stderr)


def test_combo_in_the_fresh_environment(installed):
    code = (
        "from scaler import Client, SchedulerClusterCombo\n"
        "from scaler.cluster._process import find_binary\n"
        "print(find_binary())\n"
        "cluster = SchedulerClusterCombo(n_workers=1, logging_paths=('/dev/null',))\n"
        "with Client(address=cluster.get_address()) as client:\n"
        "    print(client.submit(pow, 2, 10).result())\n"
        "cluster.shutdown()\n"
    )
    done = subprocess.run([str(installed / "bin" / "python"), "-c", code], env=bare_env(installed), cwd="/",
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(installed / "bin" / "scaler"), "1024"]


def test_scheduler_and_cluster_commands_by_hand(installed, tmp_path):
    """``scaler_scheduler`` and ``scaler_cluster`` from the environment's bin/, no --python: the
    processors run on the environment's interpreter, which has the package."""
    env = bare_env(installed)
    address = f"tcp://127.0.0.1:{free_port()}"
    servers = []
    logs = []
    try:
        for command in (["scaler_scheduler", address], ["scaler_cluster", address, "-n", "1"]):
            log = open(tmp_path / f"{command[0]}.log", "w+")
            logs.append(log)
            servers.append(subprocess.Popen(command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True))
        code = ("import sys\nfrom scaler import Client\nc = Client(address=sys.argv[1])\n"
                "print(c.submit(pow, 3, 3).result())\n")
        done = subprocess.run(["python", "-c", code, address], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)
        for log in logs:
            log.seek(0)
        assert done.returncode == 0 and done.stdout.strip() == "27", (done.stderr, [log.read()[-1500:] for log in logs])
    finally:
        for server in servers:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)
        for server in servers:
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(5)
        for log in logs:
            log.close()
