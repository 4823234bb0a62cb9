"""bench/peers.py's own logic, without installing any peer: the table it prints from given results,
and how it handles a runner that hangs (timeout, the runner's process group killed, a new runner for
the workloads left). The benchmark itself is not run here."""

import importlib.util
import os
import signal
import sys
import textwrap
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def load_peers():
    spec = importlib.util.spec_from_file_location("bench_peers", os.path.join(REPO, "bench", "peers.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


peers = load_peers()


def test_ratio_text_says_which_way():
    assert peers.ratio_text(20_000, 500, higher_better=True) == "40× faster"
    assert peers.ratio_text(0.5, 1.0, higher_better=False) == "2.0× faster"
    assert peers.ratio_text(2.0, 1.0, higher_better=False) == "2.0× slower"
    assert peers.ratio_text(100, 250, higher_better=True) == "2.5× slower"
    assert peers.ratio_text(None, 1.0, higher_better=True) == ""
    assert peers.ratio_text(0.545, 0.5449, higher_better=False) == "same"


def test_table_from_given_results():
    rounds = [
        {
            "this": {"version": "0.1.0", "metrics": {"start": 0.3, "map": 20_000.0, "chain": 0.5}, "errors": {}},
            "dask": {"version": "2026.8.0", "metrics": {"start": 1.5, "map": 500.0}, "errors": {"chain": "timeout (240 s)"}},
            "scaler-2": {"version": None, "metrics": {}, "errors": {"start": "install failed (pip exit 1): no matching distribution"}},
        },
        {
            "this": {"version": "0.1.0", "metrics": {"start": 0.5, "map": 10_000.0, "chain": 0.7}, "errors": {}},
            "dask": {"version": "2026.8.0", "metrics": {"start": 2.5, "map": 700.0, "chain": 2.0}, "errors": {}},
            "scaler-2": {"version": None, "metrics": {}, "errors": {"start": "install failed (pip exit 1): no matching distribution"}},
        },
    ]
    summaries = peers.median_results(rounds)
    assert summaries["this"]["metrics"]["map"] == (15_000.0, 2)
    lines = peers.render_table(summaries, ["this", "dask", "scaler-2"], ["start", "map", "chain"], peers.FULL_SIZES)
    text = "\n".join(lines)
    header, rule, start, map_row, chain_row = lines[:5]
    assert "dask 2026.8.0" in header and "scaler 2.x" in header, header
    # medians: this 15,000 tasks/s against dask's 600 -> 25x; start 0.4 s against 2.0 s -> 5x.
    assert "15,000" in map_row and "600 (25× faster)" in map_row, map_row
    assert "2.00 (5.0× faster)" in start, start
    # dask's chain ran in one round of two: its figure says so, and the timeout is listed below.
    assert "2.000 (3.3× faster) [1/2 rounds]" in chain_row, chain_row
    assert "note: dask 2026.8.0, chain: timeout (240 s)" in text
    # a peer that could not be installed says why, once, in a numbered note
    assert text.count("no matching distribution") == 1, text
    assert "[1] scaler 2.x: install failed (pip exit 1): no matching distribution" in text
    assert all(row.rstrip().endswith("[1]") for row in (start, map_row, chain_row))


FAKE_RUNNER = textwrap.dedent(
    """
    import json, os, subprocess, sys, time
    args = sys.argv[1:]
    workloads = args[args.index("--workloads") + 1].split(",")
    out = os.fdopen(os.dup(1), "w", buffering=1)
    def emit(**m):
        out.write(json.dumps(m) + "\\n")
    # a child in the runner's process group, as a cluster's workers are: it must die with the runner
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(os.environ["FAKE_PIDS"], "a") as f:
        f.write(f"{child.pid}\\n")
    emit(event="ready", system="fake", version="9.9", metrics={"start": 0.1})
    for w in workloads:
        emit(event="begin", workload=w)
        if w == "map":
            time.sleep(600)  # hangs
        if w == "chain":  # fails, leaving (say) its client broken
            emit(event="error", workload=w, error="boom")
            emit(event="restart")
            sys.exit(1)
        emit(event="result", workload=w, metrics={w: 1.0})
    emit(event="done")
    child.kill()
    """
)


def test_hung_or_failed_workload_and_the_rest_still_runs(tmp_path, monkeypatch):
    runner = tmp_path / "fake_runner.py"
    runner.write_text(FAKE_RUNNER)
    pids = tmp_path / "pids"
    monkeypatch.setattr(peers, "RUNNER", str(runner))
    env = dict(os.environ, FAKE_PIDS=str(pids))
    timeouts = dict(peers.TIMEOUTS, map=2)
    started = time.monotonic()
    try:
        out = peers.run_system(
            "fake", sys.executable, ["submit", "map", "chain", "sleep"], False, 2, str(tmp_path / "log"), timeouts, env
        )
        check_hung_run(out, started, pids)
    finally:  # whatever failed, leave no sleeper behind
        for pid in (int(p) for p in pids.read_text().split()) if pids.exists() else ():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def check_hung_run(out, started, pids):
    assert time.monotonic() - started < 120
    assert out["errors"] == {"map": "timeout (2 s)", "chain": "boom"}, out
    assert out["metrics"] == {"start": 0.1, "submit": 1.0, "sleep": 1.0}, out
    assert out["version"] == "9.9"
    # three runners: the first killed with its child at the timeout, a second that failed "chain"
    # and asked for a restart, a third for "sleep"
    children = [int(p) for p in pids.read_text().split()]
    assert len(children) == 3
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(alive(p) for p in children):
        time.sleep(0.1)
    assert not any(alive(p) for p in children), "a runner's child outlived it"


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
