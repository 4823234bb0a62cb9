"""Interleaved A/B of bench/bench_client.py between two checkouts: A, B, A, B, ... then medians.

    python bench/ab_client.py A_TREE B_TREE [--rounds 8] [--quick]

Each tree is a checkout with its own ``bin/scaler`` and ``.venv`` (``bash .ci/setup && go build
-o bin/scaler .`` in it, which installs the tree's python/ into its .venv); each round runs this
checkout's bench/bench_client.py (copied aside, so that it imports the tree's own package) with
that tree's binary and interpreter, in a fresh process. Options after ``--`` go to bench_client.py
(e.g. ``-- --only map,latency``). The machine's speed drifts between runs a minute apart
(docs/performance.md), so only figures taken in one interleaved run compare.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

FIGURES = {
    "map tasks/s": (r"^map .*?\| ([\d,]+) tasks/s", lambda s: float(s.replace(",", ""))),
    "latency p50 ms": (r"^latency .*?p50 ([\d.]+) ms", float),
    "latency p99 ms": (r"^latency .*?p99 ([\d.]+) ms", float),
    "graph s": (r"^graph .*?\| ([\d.]+) s", float),
    "payload s": (r"^payload .*?\| ([\d.]+) s", float),
}


def run(tree: str, script: str, bench_args: list, extra_env: dict) -> dict:
    env = dict(os.environ, SCALER_BINARY=os.path.join(tree, "bin", "scaler"), **extra_env)
    python = os.path.join(tree, ".venv", "bin", "python")
    env["SCALER_PYTHON"] = python
    out = subprocess.run([python, script] + bench_args, env=env, cwd=tree, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"{tree}: bench_client.py failed:\n{out.stdout}\n{out.stderr[-3000:]}")
    figures = {}
    for name, (pattern, convert) in FIGURES.items():
        match = re.search(pattern, out.stdout, re.M)
        if match:
            figures[name] = convert(match.group(1))
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--rounds", type=int, default=8)
    for label in ("a", "b"):
        parser.add_argument(f"--env-{label}", action="append", default=[], metavar="NAME=VALUE",
                            help=f"set in {label.upper()}'s environment only (e.g. GOMAXPROCS=4); repeatable")
    argv = sys.argv[1:]
    bench_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    envs = {label.upper(): dict(item.split("=", 1) for item in getattr(args, f"env_{label}")) for label in ("a", "b")}
    trees = {"A": os.path.abspath(args.a), "B": os.path.abspath(args.b)}
    results = {"A": [], "B": []}
    scratch = tempfile.mkdtemp(prefix="scaler-ab-")
    script = os.path.join(scratch, "bench_client.py")
    shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_client.py"), script)
    for i in range(args.rounds):
        for label in ("A", "B"):
            figures = run(trees[label], script, bench_args, envs[label])
            results[label].append(figures)
            shown = ", ".join(f"{k} {v:g}" for k, v in figures.items())
            print(f"round {i + 1} {label}: {shown}", flush=True)
    print(f"\nmedians over {args.rounds} interleaved rounds (A = {trees['A']} {envs['A'] or ''}, "
          f"B = {trees['B']} {envs['B'] or ''})")
    print(f"{'figure':16} {'A':>10} {'B':>10} {'B/A':>6}")
    for name in FIGURES:
        a = [r[name] for r in results["A"] if name in r]
        b = [r[name] for r in results["B"] if name in r]
        if a and b:
            ma, mb = statistics.median(a), statistics.median(b)
            print(f"{name:16} {ma:10.3f} {mb:10.3f} {mb / ma if ma else float('nan'):6.2f}")
    sys.stdout.flush()
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
