"""Traffic for scaler_ui's browser test: maps small tasks of three functions in a loop
until killed, and rides over scheduler restarts by reconnecting.

usage: workload.py tcp://HOST:PORT
"""

import mmap
import random
import sys
import time

from scaler import Client


def resize_image(n):
    # Every other one holds 24 MiB for longer than the worker's 1 s memory
    # sampling, so the task log shows a peak. An anonymous mapping, written
    # so that its pages are resident, goes back to the OS on close: the next
    # task starts from the same RSS again.
    if n % 2 == 0:
        size = 24 << 20
        with mmap.mmap(-1, size) as buf:
            for off in range(0, size, 4096):
                buf[off] = 1
            time.sleep(1.1)
        return size
    time.sleep(random.uniform(0.02, 0.12))
    return n


def score_model(n):
    time.sleep(random.uniform(0.05, 0.25))
    return n * n


def flaky_fetch(n):
    time.sleep(random.uniform(0.01, 0.05))
    if n % 5 == 0:
        raise RuntimeError(f"upstream returned 503 for item {n}")
    return n


def main():
    address = sys.argv[1]
    functions = [resize_image, score_model, flaky_fetch]
    round_no = 0
    while True:
        try:
            with Client(address, profiling=True, timeout_seconds=10) as client:
                while True:
                    round_no += 1
                    futures = [client.submit(functions[i % 3], round_no * 10 + i) for i in range(12)]
                    for f in futures:
                        try:
                            f.result(timeout=20)
                        except Exception:  # flaky_fetch fails on purpose
                            pass
        except Exception as e:  # the scheduler went away: try again
            print(f"workload: {type(e).__name__}: {e}; reconnecting", file=sys.stderr, flush=True)
            time.sleep(0.5)


if __name__ == "__main__":
    main()
