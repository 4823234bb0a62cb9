"""Memory after a soak (issue 12, point 10): many trivial tasks in maps of 100,000 (20,000 in the
short form), the scheduler's RSS sampled after every 100,000 (20,000) tasks.

Short form (CI): 100,000 tasks. Long form (SCALER_FAULTS_LONG=1): 1,000,000 tasks.

Each sample is taken once the scheduler has been idle long enough to give its free memory back
(core/server memrelease.go: releaseAfterIdle after the last task), so it measures what the
scheduler holds, not where the Go heap's high-water mark happens to be: from the second sample
on, samples must not grow (beyond a small allowance), and the idle RSS at the end must be near
the start. Without the idle release, idle RSS stayed at the peak (110 MiB after 400,000 tasks
against 17 MiB at the start; bench/soak.py prints the figures).
"""

import os
import sys

from .harness import long_form

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "bench"))
import soak  # noqa: E402  bench/soak.py

MB = 1 << 20


def test_soak_memory_flat(scaler_bin, capsys):
    tasks = long_form(100_000, 1_000_000)
    maps_of = long_form(20_000, 100_000)
    with capsys.disabled():
        print()
        start, samples, hot, idle = soak.run_soak(scaler_bin, tasks, maps_of, maps_of, idle=7, workers=2,
                                                  settle=6.5, log=lambda *a: print("  soak:", *a))
    print(f"\nsoak {tasks} tasks in maps of {maps_of}: start {start:.1f} MiB, settled samples "
          f"{', '.join(f'{s:.1f}' for s in samples)} MiB, at map end {', '.join(f'{s:.1f}' for s in hot)} MiB, "
          f"idle {idle:.1f} MiB")
    assert len(samples) == tasks // maps_of
    # No growth from the second sample on: a leak of even 100 bytes a task would add 10 MB over
    # the long form's 900,000 tasks after the second sample.
    base = samples[1]
    allowance = 8.0
    assert max(samples[1:]) <= base + allowance, f"settled RSS grew: {samples}"
    assert idle <= start + 20, f"idle RSS {idle:.1f} MiB, start {start:.1f} MiB"
    # RSS as each map ends (mid-burst: the heap's garbage, GC-timing noise of tens of MiB) shows
    # no trend either.
    assert max(hot[1:]) <= 1.5 * max(hot[:2]), f"RSS at the end of the maps grew: {hot}"
