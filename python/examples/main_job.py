"""The main job: a local scheduler and cluster, a real workload through the client, a clean stop.

    python python/examples/main_job.py [--workers N] [--tasks T] [--samples S]

1. Starts a scheduler (with its object storage) and N workers as child processes of this script
   (SchedulerClusterCombo; the Go binary comes from $SCALER_BINARY or PATH).
2. Estimates pi by Monte Carlo: T tasks of S random points each, submitted with client.map.
3. Runs a small task graph (per-chunk statistics merged into a summary).
4. Prints the results and the throughput, then shuts everything down.
"""

import argparse
import math
import os
import random
import time

from scaler import Client, SchedulerClusterCombo


def count_inside(seed: int, samples: int) -> int:
    rng = random.Random(seed)
    inside = 0
    for _ in range(samples):
        x, y = rng.random(), rng.random()
        if x * x + y * y <= 1.0:
            inside += 1
    return inside


def chunk_stats(seed: int, samples: int) -> tuple:
    rng = random.Random(seed)
    values = [rng.gauss(0.0, 1.0) for _ in range(samples)]
    mean = sum(values) / samples
    return samples, mean, sum((v - mean) ** 2 for v in values)


def merge(a: tuple, b: tuple) -> tuple:
    # Chan et al.'s pairwise merge of (count, mean, M2)
    n = a[0] + b[0]
    delta = b[1] - a[1]
    return n, a[1] + delta * b[0] / n, a[2] + b[2] + delta * delta * a[0] * b[0] / n


def summary(stats: tuple) -> str:
    n, mean, m2 = stats
    return f"n={n} mean={mean:+.4f} stddev={math.sqrt(m2 / (n - 1)):.4f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1))
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=20000)
    args = parser.parse_args()

    started = time.perf_counter()
    cluster = SchedulerClusterCombo(n_workers=args.workers, logging_level="WARNING")
    try:
        with Client(address=cluster.get_address()) as client:
            print(f"cluster: scheduler at {cluster.get_address()}, {args.workers} workers "
                  f"(up and connected in {time.perf_counter() - started:.2f} s)")

            t0 = time.perf_counter()
            counts = client.map(count_inside, [(seed, args.samples) for seed in range(args.tasks)])
            elapsed = time.perf_counter() - t0
            points = args.tasks * args.samples
            estimate = 4.0 * sum(counts) / points
            print(f"pi ~= {estimate:.6f} (error {abs(estimate - math.pi):.2e}) from {points:,} points")
            print(f"  {args.tasks} tasks in {elapsed:.2f} s: {args.tasks / elapsed:,.0f} tasks/s, "
                  f"{points / elapsed / 1e6:.1f} M points/s")

            graph = {"samples": 50000}
            for i in range(8):
                graph[f"seed{i}"] = i
                graph[f"chunk{i}"] = (chunk_stats, f"seed{i}", "samples")
            level = [f"chunk{i}" for i in range(8)]
            depth = 0
            while len(level) > 1:
                depth += 1
                nxt = []
                for j in range(0, len(level), 2):
                    key = f"merge{depth}_{j // 2}"
                    graph[key] = (merge, level[j], level[j + 1])
                    nxt.append(key)
                level = nxt
            graph["summary"] = (summary, level[0])
            t0 = time.perf_counter()
            result = client.get(graph, keys=["summary"])
            print(f"graph of {len(graph)} nodes in {time.perf_counter() - t0:.2f} s: {result['summary']}")
    finally:
        cluster.shutdown()
    print(f"done in {time.perf_counter() - started:.2f} s; scheduler and workers stopped")


if __name__ == "__main__":
    main()
