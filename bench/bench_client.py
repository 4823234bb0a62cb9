"""Client benchmark: a fixed workload set through the whole stack, printed as one table.

    SCALER_BINARY=bin/scaler .venv/bin/python bench/bench_client.py [--workers 2] [--quick] [--only map,latency]

Workloads (targets on a 2-core machine in brackets, issue 19's):
  map       client.map of 10,000 trivial tasks on 2 workers, tasks/s        [>= 25,000 tasks/s]
  latency   one submit -> result round trip, p50 and p99 over 1,000 trips    [p50 <= 0.35 ms]
  graph     a 10,000-node task graph (chains of 10 increments), seconds
  payload   a 64 MiB bytes argument echoed back, seconds
A warm-up map runs first so that worker start-up is not measured.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from scaler import Client, SchedulerClusterCombo  # noqa: E402


def trivial(x):
    return x


def inc(x):
    return x + 1


def echo(data):
    return data


def bench_map(client, n):
    start = time.perf_counter()
    results = client.map(trivial, [(i,) for i in range(n)])
    elapsed = time.perf_counter() - start
    assert results == list(range(n))
    return n / elapsed, elapsed


def bench_latency(client, n):
    samples = []
    for i in range(n):
        start = time.perf_counter()
        assert client.submit(trivial, i).result() == i
        samples.append(time.perf_counter() - start)
    samples.sort()
    return samples[len(samples) // 2], samples[int(len(samples) * 0.99) - 1], statistics.mean(samples)


def bench_graph(client, n_nodes, chain=10):
    graph = {}
    keys = []
    for c in range(n_nodes // chain):
        graph[f"s{c}"] = c
        previous = f"s{c}"
        for j in range(chain - 1):
            key = f"n{c}_{j}"
            graph[key] = (inc, previous)
            previous = key
        keys.append(previous)
    start = time.perf_counter()
    results = client.get(graph, keys=keys)
    elapsed = time.perf_counter() - start
    assert all(results[k] == c + chain - 1 for c, k in enumerate(keys))
    return elapsed, len(graph)


def bench_payload(client, size):
    data = os.urandom(size)
    start = time.perf_counter()
    result = client.submit(echo, data).result()
    elapsed = time.perf_counter() - start
    assert result == data
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--address", default=None, help="use a running scheduler instead of starting a combo")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for smoke runs")
    parser.add_argument("--only", default="map,latency,graph,payload", help="the workloads to run, comma-separated")
    args = parser.parse_args()
    only = set(args.only.split(","))
    n_map, n_lat, n_graph, size = (10_000, 1_000, 10_000, 64 * 1024 * 1024)
    if args.quick:
        n_map, n_lat, n_graph, size = (1_000, 100, 1_000, 4 * 1024 * 1024)

    combo = None
    address = args.address
    if address is None:
        combo = SchedulerClusterCombo(n_workers=args.workers, logging_level="WARNING")
        address = combo.get_address()
    try:
        with Client(address) as client:
            client.map(trivial, [(i,) for i in range(200)])  # warm-up: workers and processors up
            rows = []
            if "map" in only:
                rate, map_s = bench_map(client, n_map)
                rows.append(("map", f"{n_map} trivial tasks, {args.workers} workers",
                             f"{rate:,.0f} tasks/s ({map_s:.2f} s)", ">= 25,000 tasks/s"))
            if "latency" in only:
                p50, p99, mean = bench_latency(client, n_lat)
                rows.append(("latency", f"submit->result x{n_lat}",
                             f"p50 {p50 * 1e3:.3f} ms, p99 {p99 * 1e3:.3f} ms, mean {mean * 1e3:.3f} ms", "p50 <= 0.35 ms"))
            if "graph" in only:
                graph_s, nodes = bench_graph(client, n_graph)
                rows.append(("graph", f"{nodes} nodes (chains of 10)", f"{graph_s:.2f} s", "-"))
            if "payload" in only:
                payload_s = bench_payload(client, size)
                rows.append(("payload", f"{size // (1024 * 1024)} MiB argument + result", f"{payload_s:.3f} s", "-"))
    finally:
        if combo is not None:
            combo.shutdown()

    widths = [max(len(r[i]) for r in rows + [("workload", "what", "result", "target")]) for i in range(4)]
    line = " | ".join("{:<%d}" % w for w in widths)
    print(line.format("workload", "what", "result", "target"))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(line.format(*row))


if __name__ == "__main__":
    main()
