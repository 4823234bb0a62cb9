"""Peer benchmark: this project against upstream Scaler 1.12.x and 2.x and Dask, one table.

    SCALER_BINARY=bin/scaler .venv/bin/python bench/peers.py [--quick] [--rounds N]
        [--only this,scaler-1.12,scaler-2,dask] [--workloads map,submit,...] [--venvs DIR]

Systems (each in its own interpreter and virtual environment, made on first run and reused):
  this         this project: python/ of this repository and $SCALER_BINARY (default bin/scaler)
  scaler-1.12  opengris-scaler, the newest 1.12.x    SchedulerClusterCombo(n_workers=2)
  scaler-2     opengris-scaler, the newest 2.x       SchedulerClusterCombo(n_workers=2)
  dask         distributed (and dask)                LocalCluster(n_workers=2, threads_per_worker=1, processes=True)

Workloads (full sizes; --quick shrinks them tenfold to check that everything runs):
  map      map of 10,000 trivial tasks on 2 workers, tasks/s
  submit   submit 10,000 futures, then collect every result, tasks/s
  latency  one submit -> result round trip, p50 and p99 over 1,000 trips, ms
  sleep    map of 400 tasks of a 10 ms sleep on 2 workers, seconds (ideal 2.0 s)
  chain    a 2,000-node graph, each node depending on the previous, seconds
  payload  a 64 MiB bytes argument echoed back, seconds
and "start": cluster start plus a 200-task warm-up map (run before any workload), seconds.

Each system runs in a subprocess (bench/peers_runner.py) that prints JSON lines; this script
collects them and prints one table with this project's figure against each peer's. A workload
that takes longer than its timeout is marked "timeout" (the runner is killed and started again
for the workloads left); a peer that cannot be installed or started says why in its column.
With --rounds N the systems run in turn, round by round, and the table shows medians.
"""

import argparse
import datetime
import json
import os
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from peers_runner import SIZES, SLEEP_SECONDS, WARM_UP_TASKS, WORKLOADS  # noqa: E402 - the runner's sizes, one place
REPO = os.path.dirname(HERE)
RUNNER = os.path.join(HERE, "peers_runner.py")
VENVS_ENV = "SCALER_PEERS_VENVS"
DEFAULT_VENVS = os.path.join(REPO, ".cache", "peers")

# name -> (column title, title when the version is known, pip requirement; None: this project)
SYSTEMS = {
    "this": ("this project", "this project", None),
    "scaler-1.12": ("scaler 1.12.x", "scaler {}", "opengris-scaler>=1.12,<1.13"),
    "scaler-2": ("scaler 2.x", "scaler {}", "opengris-scaler>=2,<3"),
    "dask": ("dask", "dask {}", "distributed"),
}

# Rows of the table: metric -> (workload that produces it, label, unit, higher is better, format).
METRICS = {
    "start": (None, "start: cluster + {warm_up}-task warm-up", "s", False, "{:.2f}"),
    "map": ("map", "map, {map:,} trivial tasks", "tasks/s", True, "{:,.0f}"),
    "submit": ("submit", "submit {submit:,}, then collect", "tasks/s", True, "{:,.0f}"),
    "latency_p50": ("latency", "round trip p50, {latency:,} trips", "ms", False, "{:.3f}"),
    "latency_p99": ("latency", "round trip p99, {latency:,} trips", "ms", False, "{:.3f}"),
    "sleep": ("sleep", "{sleep} x 10 ms sleep (ideal {ideal:.1f} s)", "s", False, "{:.2f}"),
    "chain": ("chain", "chain graph, {chain:,} nodes", "s", False, "{:.3f}"),
    "payload": ("payload", "{payload_mib} MiB argument echoed", "s", False, "{:.3f}"),
}


def table_sizes(quick, workers=2):
    """The sizes the runner uses (its SIZES), as the table's labels name them."""
    i = 1 if quick else 0
    sizes = {w: SIZES[w][i] for w in WORKLOADS if w != "payload"}
    sizes["payload_mib"] = SIZES["payload"][i] >> 20
    sizes["ideal"] = sizes["sleep"] * SLEEP_SECONDS / workers
    sizes["warm_up"] = WARM_UP_TASKS
    return sizes


FULL_SIZES = table_sizes(False)
QUICK_SIZES = table_sizes(True)

# Seconds each workload may take before the runner is killed; "start" covers the cluster start.
TIMEOUTS = {
    "start": 180,  # import, cluster start and the warm-up map
    "shutdown": 60,  # between two workloads, and the cluster's shutdown after the last
    "map": 240,
    "submit": 240,
    "latency": 180,
    "sleep": 120,
    "chain": 240,
    "payload": 120,
}
INSTALL_TIMEOUT = 1800


# ---------------------------------------------------------------- virtual environments


def venv_python(venvs, name):
    return os.path.join(venvs, name, "bin", "python")


def ensure_venv(venvs, name, requirement, base_python, reinstall=False, log=print):
    """The interpreter of NAME's virtual environment, made and installed on first use.

    Returns (python, None) or (None, reason). A marker file holds the requirement the
    environment was installed for, so a changed requirement (or --reinstall) makes it anew.
    """
    path = os.path.join(venvs, name)
    python = venv_python(venvs, name)
    marker = os.path.join(path, ".peers-requirement")
    if not reinstall and os.path.exists(marker) and os.access(python, os.X_OK):
        with open(marker) as f:
            if f.read().strip() == requirement:
                return python, None
    os.makedirs(venvs, exist_ok=True)
    logfile = os.path.join(venvs, f"install-{name}.log")
    log(f"installing {requirement} into {path} (log: {logfile})")
    shutil.rmtree(path, ignore_errors=True)
    with open(logfile, "w") as out:
        for cmd in (
            [base_python, "-m", "venv", path],
            [python, "-m", "pip", "install", "--disable-pip-version-check", requirement],
        ):
            out.write("$ " + " ".join(cmd) + "\n")
            out.flush()
            try:
                rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT).returncode
            except subprocess.TimeoutExpired:
                return None, f"install timed out after {INSTALL_TIMEOUT} s"
            except OSError as exc:
                return None, f"install failed: {exc}"
            if rc != 0:
                return None, f"install failed ({os.path.basename(cmd[0])} exit {rc}): {last_line(logfile)}"
    with open(marker, "w") as f:
        f.write(requirement + "\n")
    return python, None


def last_line(path, prefer=("ERROR", "Error", "error")):
    """The most telling line of a log: the last naming an error, else the last one."""
    try:
        with open(path, errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        return "?"
    for line in reversed(lines):
        if any(p in line for p in prefer):
            return line[:200]
    return lines[-1][:200] if lines else "(empty log)"


# ---------------------------------------------------------------- running one system


class LineReader:
    """Reads JSON lines from a pipe with a deadline per line."""

    def __init__(self, fd):
        self._fd = fd
        self._buf = b""
        self._sel = selectors.DefaultSelector()
        self._sel.register(fd, selectors.EVENT_READ)
        self.eof = False

    def read(self, deadline):
        """The next decoded object, None at end of stream, or raise TimeoutError at DEADLINE."""
        while True:
            if b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                try:
                    return json.loads(line)
                except ValueError:
                    continue  # not ours: skip it
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if self._sel.select(left):
                chunk = os.read(self._fd, 65536)
                if not chunk:
                    self.eof = True
                self._buf += chunk

    def close(self):
        self._sel.close()


def kill_group(proc, grace=5.0):
    """End the runner's process group (it started a session of its own: only what it started)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            pass


def run_system(name, python, workloads, quick, workers, logfile, timeouts, env):
    """Run the runner for NAME until every workload has a result, an error or a timeout.

    Returns {"version": str or None, "metrics": {metric: value}, "errors": {workload or "start": text}}.
    A workload that times out or kills the runner gets that as its error, and a new runner is
    started for the workloads after it.
    """
    out = {"version": None, "metrics": {}, "errors": {}}
    pending = list(workloads)
    first = True
    with open(logfile, "a") as log:
        while first or pending:
            cmd = [python, RUNNER, "--system", name, "--workers", str(workers), "--workloads", ",".join(pending)]
            cmd += ["--repo", REPO] + (["--quick"] if quick else [])
            log.write("$ " + " ".join(cmd) + "\n")
            log.flush()

            def fail(current, reason):
                """Charge REASON to the step that was running; False when nothing more can run."""
                if current == "start":
                    if first:
                        out["errors"]["start"] = reason
                    else:
                        for w in pending:
                            out["errors"][w] = f"restart failed: {reason}"
                    pending.clear()
                elif current is not None:
                    out["errors"][current] = reason
                    pending.remove(current)
                elif pending:  # between two workloads: charge the next one, so the loop ends
                    out["errors"][pending.pop(0)] = reason

            try:
                proc = subprocess.Popen(
                    cmd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=env, start_new_session=True
                )
            except OSError as exc:
                out["errors"]["start"] = f"cannot run: {exc}"
                break
            reader = LineReader(proc.stdout.fileno())
            current, deadline = "start", time.monotonic() + timeouts["start"]
            try:
                while True:
                    try:
                        msg = reader.read(deadline)
                    except TimeoutError:
                        fail(current, f"timeout ({timeouts[current or 'shutdown']:g} s)")
                        break
                    if msg is None:  # the runner died
                        try:
                            proc.wait(timeout=30)
                        except subprocess.TimeoutExpired:
                            pass
                        fail(current, f"runner exited {proc.returncode}: {last_line(logfile)}")
                        break
                    event = msg.get("event")
                    if event == "ready":
                        out["version"] = msg.get("version")
                        if first:
                            out["metrics"].update(msg.get("metrics", {}))
                        current, deadline = None, time.monotonic() + timeouts["shutdown"]
                    elif event == "fatal":
                        fail("start", msg.get("error", "?"))
                        break
                    elif event == "begin":
                        current, deadline = msg["workload"], time.monotonic() + timeouts[msg["workload"]]
                    elif event in ("result", "error"):
                        if event == "result":
                            out["metrics"].update(msg.get("metrics", {}))
                        else:
                            out["errors"][msg["workload"]] = msg.get("error", "?")
                        if msg["workload"] in pending:
                            pending.remove(msg["workload"])
                        current, deadline = None, time.monotonic() + timeouts["shutdown"]
                    elif event == "restart":
                        break  # a new runner for what is pending
                    elif event == "done":
                        pending.clear()
                        break
            finally:
                reader.close()
                kill_group(proc)
                proc.stdout.close()
            first = False
    return out


# ---------------------------------------------------------------- the table


def ratio_text(ours, theirs, higher_better):
    """This project's figure relative to a peer's, as 'N.N× faster' or 'N.N× slower'."""
    if ours is None or theirs is None or ours <= 0 or theirs <= 0:
        return ""
    r = ours / theirs if higher_better else theirs / ours
    if abs(r - 1) < 0.05:
        return "same"
    word = "faster" if r >= 1 else "slower"
    r = r if r >= 1 else 1 / r
    return f"{r:.1f}× {word}" if r < 10 else f"{r:,.0f}× {word}"


def median_results(rounds):
    """Per system, the median of every metric over the rounds it has, and what went wrong.

    ROUNDS: a list of {system: run_system() result}. Returns {system: {"version", "metrics":
    {metric: (median, n)}, "errors": {key: text}, "rounds": n}}.
    """
    merged = {}
    for rnd in rounds:
        for system, res in rnd.items():
            m = merged.setdefault(system, {"version": None, "values": {}, "errors": {}, "rounds": 0})
            m["rounds"] += 1
            m["version"] = m["version"] or res.get("version")
            for metric, value in res.get("metrics", {}).items():
                m["values"].setdefault(metric, []).append(value)
            for key, text in res.get("errors", {}).items():
                m["errors"].setdefault(key, text)
    for m in merged.values():
        m["metrics"] = {k: (statistics.median(v), len(v)) for k, v in m.pop("values").items()}
    return merged


def cell_error(summary, metric):
    """The error standing in for METRIC: its own, its workload's, or the system's start failure."""
    errors = summary["errors"]
    workload = METRICS[metric][0]
    if metric in errors:
        return errors[metric]
    if workload in errors:
        return errors[workload]
    if "start" in errors:
        return errors["start"]
    return None


def short(text, width=28):
    return text if len(text) <= width else text[: width - 1] + "…"


def render_table(summaries, systems, metrics, sizes):
    """The table as a list of lines. SUMMARIES: median_results() output; SYSTEMS: column order."""
    header = ["workload", "unit"]
    for s in systems:
        version = summaries.get(s, {}).get("version")
        header.append(SYSTEMS[s][1].format(version) if version else SYSTEMS[s][0])
    rows = []
    notes = []
    ours_summary = summaries.get("this")
    for metric in metrics:
        _, label, unit, higher, fmt = METRICS[metric]
        row = [label.format(**sizes), unit]
        ours = None
        if ours_summary and metric in ours_summary["metrics"]:
            ours = ours_summary["metrics"][metric][0]
        for s in systems:
            summary = summaries.get(s)
            if summary is None:
                row.append("-")
                continue
            if metric in summary["metrics"]:
                value, n = summary["metrics"][metric]
                text = fmt.format(value)
                if s != "this":
                    r = ratio_text(ours, value, higher)
                    if r:
                        text += f" ({r})"
                if n < summary["rounds"]:
                    text += f" [{n}/{summary['rounds']} rounds]"
                row.append(text)
            else:
                err = cell_error(summary, metric) or "no result"
                if len(err) > 28:
                    # One note per distinct failure: a peer that did not start says so once.
                    note = f"{header[2 + systems.index(s)]}: {err}"
                    if note not in notes:
                        notes.append(note)
                    err = short(err) + f" [{notes.index(note) + 1}]"
                row.append(err)
        rows.append(row)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def fmt_row(r):
        cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1])] + [c.rjust(w) for c, w in zip(r[2:], widths[2:])]
        return " | ".join(cells).rstrip()

    lines = [fmt_row(header), "-+-".join("-" * w for w in widths)]
    lines += [fmt_row(r) for r in rows]
    for i, note in enumerate(notes, 1):
        lines.append(f"[{i}] {note}")
    # Errors not shown in any cell (e.g. one round of several failed).
    for s in systems:
        summary = summaries.get(s)
        for key, text in (summary or {}).get("errors", {}).items():
            shown = any(cell_error(summary, m) == text and m not in summary["metrics"] for m in metrics)
            if not shown:
                lines.append(f"note: {header[2 + systems.index(s)]}, {key}: {text}")
    return lines


# ---------------------------------------------------------------- main


def git_commit():
    try:
        return subprocess.run(
            ["git", "-C", REPO, "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10
        ).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SYSTEMS), help="systems to run, comma-separated (default: all)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="workloads to run, comma-separated")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke check")
    parser.add_argument("--rounds", type=int, default=1, help="run the systems in turn N times; medians")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--venvs",
        default=os.environ.get(VENVS_ENV, DEFAULT_VENVS),
        help=f"where the peers' virtual environments live (${VENVS_ENV}; default .cache/peers)",
    )
    parser.add_argument("--reinstall", action="store_true", help="make the peers' environments anew (newest versions)")
    parser.add_argument("--python", default=sys.executable, help="interpreter to make the peers' environments with")
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds each workload may take (default: 120-240 by workload)"
    )
    parser.add_argument("--json", default=None, help="also write every round's raw results to this file")
    args = parser.parse_args(argv)

    systems = [s for s in args.only.split(",") if s]
    workloads = [w for w in args.workloads.split(",") if w]
    for s in systems:
        if s not in SYSTEMS:
            parser.error(f"unknown system {s!r} (known: {', '.join(SYSTEMS)})")
    for w in workloads:
        if w not in WORKLOADS:
            parser.error(f"unknown workload {w!r} (known: {', '.join(WORKLOADS)})")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    timeouts = dict(TIMEOUTS)
    if args.timeout is not None:
        timeouts.update({w: args.timeout for w in WORKLOADS})
    venvs = os.path.abspath(args.venvs)
    logs = os.path.join(venvs, "logs")
    os.makedirs(logs, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")

    def log(msg):
        print(f"peers: {msg}", file=sys.stderr, flush=True)

    # Interpreters: this project runs on this interpreter with python/ first on its path.
    pythons, failed = {}, {}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONUNBUFFERED"] = "1"
    if "this" in systems:
        binary = os.environ.get("SCALER_BINARY") or os.path.join(REPO, "bin", "scaler")
        if not os.access(binary, os.X_OK):
            failed["this"] = f"no scaler binary at {binary} (go build -o bin/scaler .)"
        else:
            env["SCALER_BINARY"] = os.path.abspath(binary)
            pythons["this"] = sys.executable
    for s in systems:
        requirement = SYSTEMS[s][2]
        if requirement is None:
            continue
        python, reason = ensure_venv(venvs, s, requirement, args.python, args.reinstall, log)
        if python:
            pythons[s] = python
        else:
            failed[s] = reason

    commit = git_commit()
    # The load before the first round says whether the machine was idle; the one at the end
    # also counts this benchmark's own cluster (a client, its workers and a scheduler).
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    rounds = []
    for r in range(args.rounds):
        results = {}
        for s in systems:
            if s in failed:
                results[s] = {"version": None, "metrics": {}, "errors": {"start": failed[s]}}
                continue
            log(f"round {r + 1}/{args.rounds}: {s}")
            logfile = os.path.join(logs, f"{stamp}-{s}.log")
            results[s] = run_system(s, pythons[s], workloads, args.quick, args.workers, logfile, timeouts, env)
        rounds.append(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"quick": args.quick, "workers": args.workers, "rounds": rounds}, f, indent=1)

    sizes = table_sizes(args.quick, args.workers)
    metrics = ["start"] + [m for m, spec in METRICS.items() if spec[0] in workloads]
    summaries = median_results(rounds)
    load_after = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"peers: {args.workers} workers, {'quick sizes' if args.quick else 'full sizes'}, "
        f"{args.rounds} round(s){' (medians)' if args.rounds > 1 else ''}; this project at {commit}; "
        f"python {sys.version.split()[0]}; {os.cpu_count()} cores, load average {load_before} before, {load_after} after; logs in {logs}"
    )
    print("ratios: this project's figure relative to the peer's (faster = this project is faster)")
    print()
    for line in render_table(summaries, systems, metrics, sizes):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
