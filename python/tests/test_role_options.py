"""The one helper that turns launcher keywords into a role's command line (scaler.cluster._process)."""

import pytest

from scaler.cluster._process import logging_options, role_options
from scaler.cluster.cluster import Cluster
from scaler.cluster.object_storage_server import ObjectStorageServerProcess
from scaler.cluster.scheduler import SchedulerProcess


@pytest.mark.parametrize(
    "pairs, expected",
    [
        ([("-n", 3)], ["-n", 3]),
        ([("-tts", 0)], ["-tts", 0]),  # 0 is a value, not "absent"
        ([("--preload", None), ("-pwc", ""), ("-hps", False)], []),
        ([("-hps", True)], ["-hps"]),
        ([("-lp", ("a", "b"))], ["-lp", "a", "b"]),
        ([("-lp", ())], ["-lp"]),  # no paths: no logging, as the binary takes it
    ],
)
def test_role_options(pairs, expected):
    assert role_options(*pairs) == expected


def test_logging_paths_come_last():
    arguments = role_options(("-n", 1), *logging_options(["x.log", "/dev/stdout"], "DEBUG", "log.conf"))
    assert arguments == ["-n", 1, "-ll", "DEBUG", "-lc", "log.conf", "-lp", "x.log", "/dev/stdout"]


def test_launchers_spell_their_options():
    cluster = Cluster("tcp://127.0.0.1:1", storage_address="tcp://127.0.0.1:2", worker_names=["a", "b"],
                      hard_processor_suspend=True, logging_paths=("w.log",))
    assert cluster._arguments[0] == "tcp://127.0.0.1:1"
    assert cluster._arguments[-2:] == ["-lp", "w.log"]
    for flag, value in [("-n", "2"), ("-wn", "a,b"), ("-osa", "tcp://127.0.0.1:2"), ("-tts", "0")]:
        assert cluster._arguments[cluster._arguments.index(flag) + 1] == value
    assert "-hps" in cluster._arguments and "--preload" not in cluster._arguments

    scheduler = SchedulerProcess("tcp://127.0.0.1:1", protected=False, adapter_webhook_url="")
    assert scheduler._arguments[scheduler._arguments.index("-p") + 1] == "False"
    assert "-awu" not in scheduler._arguments and "-osa" not in scheduler._arguments

    storage = ObjectStorageServerProcess("tcp://127.0.0.1:2", logging_config_file="log.conf")
    assert storage._arguments == ["tcp://127.0.0.1:2", "-ll", "INFO", "-lc", "log.conf", "-lp", "/dev/stdout"]
