"""Run python/examples/*.py against the real binary and check what they print."""

import os
import re
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")

CASES = {
    "simple_client.py": ["661.4629471031477"],
    "map_client.py": ["661.4629471031477"],
    "graphtask_client.py": ["1", re.compile(r"\{'a': 2, 'b': 2, 'c': 3, 'd': 4, 'e': 1, 'f': <function add at 0x[0-9a-f]+>\}")],
    "send_object_client.py": ["1", "2"],
    "nested_client.py": ["21"],
    "disconnect_client.py": ["shutdown refused: Scheduler is in protected mode. Can't shutdown", "disconnected"],
    "task_capabilities.py": ["Submitting tasks...", re.compile("gpu task ran .*"), re.compile("cpu task ran .*")],
}


def _run(name, *args, timeout=180):
    result = subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *args], capture_output=True, text=True,
                            timeout=timeout, env=dict(os.environ))
    assert result.returncode == 0, result.stderr[-3000:]
    return [line for line in result.stdout.splitlines() if not line.startswith("[")]


@pytest.mark.parametrize("name", sorted(CASES))
def test_example(scaler_bin, name):
    lines = _run(name)
    expected = CASES[name]
    assert len(lines) == len(expected), lines
    for line, want in zip(lines, expected):
        if isinstance(want, str):
            assert line == want
        else:
            assert want.fullmatch(line), line


def test_main_job(scaler_bin):
    lines = _run("main_job.py", "--workers", "2", "--tasks", "200", "--samples", "2000")
    text = "\n".join(lines)
    assert re.search(r"pi ~= 3\.1\d+", text), text
    assert "tasks/s" in text and "graph of 25 nodes" in text and "stopped" in text
