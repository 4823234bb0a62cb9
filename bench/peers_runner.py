"""One system's side of bench/peers.py: start its local cluster, run the workloads, print JSON lines.

    python bench/peers_runner.py --system this|scaler-1.12|scaler-2|dask [--workers 2]
        [--workloads map,submit,latency,sleep,chain,payload] [--quick] [--repo DIR]

Run by bench/peers.py with each system's own interpreter (this project: the repository's .venv
with python/ put first on sys.path and SCALER_BINARY set; a peer: its virtual environment), so
this file imports nothing but the standard library and the system under test. It writes its
results to the stdout it was started with, one JSON object a line:

    {"event": "ready", "system": ..., "version": ..., "metrics": {"start": seconds}}
    {"event": "begin", "workload": name}
    {"event": "result", "workload": name, "metrics": {metric: value, ...}}
    {"event": "error", "workload": name, "error": "..."}
    {"event": "restart"}                    (after an error: the workloads left need a new runner)
    {"event": "done"}
    {"event": "fatal", "error": "..."}      (the cluster or client could not start)

Everything else (the systems' own logs, their workers' output) goes to stderr: the runner points
its file descriptor 1 at stderr before it starts anything, so no child process can write into the
result stream. The parent enforces the timeouts (it kills this process group), so nothing here
waits with a deadline of its own.
"""

import argparse
import json
import os
import sys
import time
import traceback

WORKLOADS = ("map", "submit", "latency", "sleep", "chain", "payload")

# Sizes: (full, quick). The quick ones only check that every system runs every workload.
SIZES = {
    "map": (10_000, 1_000),
    "submit": (10_000, 1_000),
    "latency": (1_000, 100),
    "sleep": (400, 40),
    "chain": (2_000, 200),
    "payload": (64 * 1024 * 1024, 4 * 1024 * 1024),
}
SLEEP_SECONDS = 0.01
WARM_UP_TASKS = 200


# The task functions live in this module, which runs as __main__: every system pickles them by
# value (cloudpickle), so the workers need not import this file.
def trivial(x):
    return x


def inc(x):
    return x + 1


def nap(x):
    time.sleep(SLEEP_SECONDS)
    return x


def echo(data):
    return data


class Emitter:
    def __init__(self, fd):
        self._out = os.fdopen(fd, "w", buffering=1)

    def __call__(self, event, **fields):
        fields["event"] = event
        self._out.write(json.dumps(fields) + "\n")
        self._out.flush()


class ScalerSystem:
    """This project and upstream Scaler 1.12.x / 2.x: the same client API but for map."""

    def __init__(self, name, workers):
        import scaler
        from scaler import Client, SchedulerClusterCombo

        self.name = name
        self.version = getattr(scaler, "__version__", "?")
        self._combo = SchedulerClusterCombo(n_workers=workers, logging_level="WARNING")
        self._client = Client(self._combo.get_address())
        # 2.x's map takes one iterable per argument, like the builtin; its starmap takes tuples
        # (1.12.x and this project: map takes tuples).
        self._starmap = getattr(self._client, "starmap") if name == "scaler-2" else self._client.map

    def map(self, fn, values):
        return self._starmap(fn, [(v,) for v in values])

    def submit(self, fn, arg):
        return self._client.submit(fn, arg)

    def chain(self, graph, key):
        return self._client.get(graph, keys=[key])[key]

    def close(self):
        try:
            self._client.disconnect()
        finally:
            self._combo.shutdown()


class DaskSystem:
    def __init__(self, name, workers):
        import logging

        import dask
        import distributed
        from distributed import Client, LocalCluster

        # Dask's default 30 s comm timeouts drop the client's scheduler connection on a loaded
        # machine (seen at load average 20+: every later future "cancelled for reason:
        # scheduler-connection-lost"). Generous ones change nothing on an idle machine.
        dask.config.set({"distributed.comm.timeouts.connect": "300s", "distributed.comm.timeouts.tcp": "300s"})
        self.name = name
        self.version = distributed.__version__
        self._cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.WARNING,
        )
        self._client = Client(self._cluster)

    # pure=False: every call is a new task, as in the other systems (no result reuse by key).
    def map(self, fn, values):
        return self._client.gather(self._client.map(fn, list(values), pure=False))

    def submit(self, fn, arg):
        return self._client.submit(fn, arg, pure=False)

    def chain(self, graph, key):
        return self._client.get(graph, [key])[0]

    def close(self):
        try:
            self._client.close()
        finally:
            self._cluster.close()


def timed_map(system, fn, n, workload):
    """Seconds for system.map(fn, range(n)), whose results must be range(n)."""
    start = time.perf_counter()
    results = system.map(fn, range(n))
    elapsed = time.perf_counter() - start
    if list(results) != list(range(n)):
        raise AssertionError(f"{workload} returned wrong results")
    return elapsed


def run_map(system, n):
    return {"map": n / timed_map(system, trivial, n, "map")}


def run_submit(system, n):
    start = time.perf_counter()
    futures = [system.submit(trivial, i) for i in range(n)]
    results = [f.result() for f in futures]
    elapsed = time.perf_counter() - start
    if results != list(range(n)):
        raise AssertionError("submit returned wrong results")
    return {"submit": n / elapsed}


def run_latency(system, n):
    samples = []
    for i in range(n):
        start = time.perf_counter()
        if system.submit(trivial, i).result() != i:
            raise AssertionError("latency: wrong result")
        samples.append(time.perf_counter() - start)
    samples.sort()
    return {
        "latency_p50": samples[len(samples) // 2] * 1e3,
        "latency_p99": samples[max(0, int(len(samples) * 0.99) - 1)] * 1e3,
    }


def run_sleep(system, n):
    return {"sleep": timed_map(system, nap, n, "sleep")}


def run_chain(system, n):
    graph = {"n0": 0}
    for i in range(1, n):
        graph[f"n{i}"] = (inc, f"n{i - 1}")
    start = time.perf_counter()
    result = system.chain(graph, f"n{n - 1}")
    elapsed = time.perf_counter() - start
    if result != n - 1:
        raise AssertionError(f"chain returned {result!r}, expected {n - 1}")
    return {"chain": elapsed}


def run_payload(system, size):
    data = os.urandom(size)
    start = time.perf_counter()
    result = system.submit(echo, data).result()
    elapsed = time.perf_counter() - start
    if result != data:
        raise AssertionError("payload came back different")
    return {"payload": elapsed}


RUNS = {
    "map": run_map,
    "submit": run_submit,
    "latency": run_latency,
    "sleep": run_sleep,
    "chain": run_chain,
    "payload": run_payload,
}


def make_system(name, workers, repo):
    if name == "this":
        sys.path.insert(0, os.path.join(repo, "python"))
        return ScalerSystem(name, workers)
    if name in ("scaler-1.12", "scaler-2"):
        return ScalerSystem(name, workers)
    if name == "dask":
        return DaskSystem(name, workers)
    raise ValueError(f"unknown system {name!r}")


def short_error(exc):
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args = parser.parse_args(argv)

    # Results go to the original stdout; fd 1 becomes stderr for this process and all it starts.
    emit = Emitter(os.dup(1))
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    workloads = [w for w in args.workloads.split(",") if w]
    for w in workloads:
        if w not in RUNS:
            emit("fatal", error=f"unknown workload {w!r}")
            return 2

    start = time.perf_counter()
    try:
        system = make_system(args.system, args.workers, args.repo)
        # Warm-up: every worker and processor up and the function cached before anything is timed.
        if list(system.map(trivial, range(WARM_UP_TASKS))) != list(range(WARM_UP_TASKS)):
            raise AssertionError("warm-up map returned wrong results")
    except BaseException as exc:  # noqa: B902 - anything here means the system did not start
        traceback.print_exc()
        emit("fatal", error=short_error(exc))
        return 1
    emit("ready", system=args.system, version=system.version, metrics={"start": time.perf_counter() - start})

    try:
        for w in workloads:
            emit("begin", workload=w)
            size = SIZES[w][1 if args.quick else 0]
            try:
                metrics = RUNS[w](system, size)
            except Exception as exc:
                # A failed workload may leave the client or cluster broken (upstream 2.x stops its
                # client when a map fails): stop here, and the parent starts a fresh runner for
                # the workloads left, so one failure is not charged to all that follow.
                traceback.print_exc()
                emit("error", workload=w, error=short_error(exc))
                emit("restart")
                return 1
            emit("result", workload=w, metrics=metrics)
    finally:
        try:
            system.close()
        except Exception:
            traceback.print_exc()
    emit("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
