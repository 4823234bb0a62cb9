"""Large objects from Python: object storage against loopback TCP, and a 64 MiB task round trip.

    SCALER_BINARY=bin/scaler .venv/bin/python bench/large_objects.py [--size-mib 64] [--rounds 10] [--task | --task-only]

storage  one op moves SIZE bytes from this process to another and SIZE bytes back, twice,
         alternately (the order swapped every op): through object storage (``bin/scaler
         object_storage_server``; ``ObjectStorageClient.set_object`` acknowledged, then
         ``get_object``, with ``copy=True``: the bytes as ``bytes``, and ``copy=False``: a
         memoryview of the received frame) and through a plain TCP echo over 127.0.0.1 (a child
         Python process reading into one buffer with ``recv_into`` and writing it back; this
         process ``sendall``s, then ``recv_into`` one reused buffer). Printed: medians of each and
         ratio = echo / storage (the Go figure, BenchmarkVsLoopback, has the target >= 0.5).
task     (--task) ``client.submit(echo, data).result()`` of SIZE random bytes on a combo with one
         worker: the argument and the result each go through object storage once (a set and a
         get each), plus pickling on both sides. Printed: the median seconds, and the same
         bytes' pickle.dumps + pickle.loads in this process (the part no transport removes).
"""

import argparse
import os
import pickle
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from scaler.io.storage import ObjectStorageClient  # noqa: E402

_ECHO = r"""
import socket, sys
size = int(sys.argv[1])
ln = socket.socket(); ln.bind(("127.0.0.1", 0)); ln.listen(1)
print(ln.getsockname()[1], flush=True)
conn, _ = ln.accept()
buf = bytearray(size); view = memoryview(buf)
while True:
    got = 0
    while got < size:
        n = conn.recv_into(view[got:])
        if n == 0:
            sys.exit(0)
        got += n
    conn.sendall(view)
"""


_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid):
    """(ppid, utime + stime in seconds) of pid from /proc, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def cpu_seconds(pids=None) -> float:
    """CPU time so far of this process and ``pids``, or (None) of this process and all its
    descendants (a combo's scheduler, workers and processors). On a loaded machine it moves
    less than the wall clock."""
    if pids is not None:
        return sum(s[1] for s in map(_stat, [os.getpid(), *pids]) if s is not None)
    stats = {int(p): _stat(p) for p in os.listdir("/proc") if p.isdigit()}
    children = {}
    for pid, st in stats.items():
        if st is not None:
            children.setdefault(st[0], []).append(pid)
    total, todo = 0.0, [os.getpid()]
    while todo:
        pid = todo.pop()
        if stats.get(pid) is not None:
            total += stats[pid][1]
        todo.extend(children.get(pid, ()))
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_storage(binary: str):
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen([binary, "object_storage_server", address, "-ll", "WARNING"], start_new_session=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, address
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("object storage server did not listen within 15 s")


def start_echo(size: int):
    proc = subprocess.Popen([sys.executable, "-c", _ECHO, str(size)], stdout=subprocess.PIPE, start_new_session=True)
    port = int(proc.stdout.readline())
    conn = socket.create_connection(("127.0.0.1", port))
    return proc, conn


def bench_storage(binary: str, size: int, rounds: int):
    storage, address = start_storage(binary)
    echo, conn = start_echo(size)
    try:
        client = ObjectStorageClient(address, timeout_s=60)
        data = os.urandom(size)
        back = bytearray(size)
        view = memoryview(back)
        oid = b"large-objects-bench-0000000000000"

        def via_echo():
            conn.sendall(data)
            got = 0
            while got < size:
                n = conn.recv_into(view[got:])
                if n == 0:
                    raise RuntimeError("echo closed")
                got += n

        def via_storage(copy):
            def op():
                client.set_object(oid, data)
                got = client.get_object(oid, copy=copy)
                assert len(got) == size
            return op

        ops = {"echo": via_echo, "storage copy=True": via_storage(True), "storage copy=False": via_storage(False)}
        for op in ops.values():  # warm-up: connections up, buffers allocated
            op()
        times = {name: [] for name in ops}
        cpu = {name: [] for name in ops}
        names = list(ops)
        pids = [storage.pid, echo.pid]
        for r in range(rounds):
            for name in names if r % 2 == 0 else reversed(names):
                used, start = cpu_seconds(pids), time.perf_counter()
                ops[name]()
                times[name].append(time.perf_counter() - start)
                cpu[name].append(cpu_seconds(pids) - used)
        client.close()
    finally:
        conn.close()
        for proc in (storage, echo):
            proc.kill()
            proc.wait()
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"storage vs loopback TCP from Python, {size >> 20} MiB each way, {rounds} interleaved rounds (medians):")
    for name, t in median.items():
        ratio = "" if name == "echo" else f"  ratio echo/storage {median['echo'] / t:.2f}"
        print(f"  {name:<20} {t * 1e3:8.1f} ms  {2 * size / t / 1e6:7.0f} MB/s  "
              f"cpu {statistics.median(cpu[name]) * 1e3:6.1f} ms (all processes){ratio}")


def echo_task(data):
    return data


def bench_task(size: int, rounds: int):
    from scaler import Client, SchedulerClusterCombo

    combo = SchedulerClusterCombo(n_workers=1, logging_level="WARNING")
    try:
        with Client(combo.get_address()) as client:
            assert client.submit(echo_task, b"warm-up").result() == b"warm-up"
            data = os.urandom(size)
            times, cpu = [], []
            for _ in range(rounds):
                used, start = cpu_seconds(), time.perf_counter()
                result = client.submit(echo_task, data).result()
                times.append(time.perf_counter() - start)
                cpu.append(cpu_seconds() - used)
                assert result == data
                del result
    finally:
        combo.shutdown()
    pickling = []
    for _ in range(rounds):
        start = time.perf_counter()
        pickle.loads(pickle.dumps(data, pickle.HIGHEST_PROTOCOL))
        pickling.append(time.perf_counter() - start)
    print(f"task echo of {size >> 20} MiB (argument and result through object storage), {rounds} rounds:")
    print(f"  submit+result median {statistics.median(times) * 1e3:.1f} ms (min {min(times) * 1e3:.1f} ms), "
          f"cpu of all processes median {statistics.median(cpu) * 1e3:.1f} ms")
    print(f"  pickle.dumps+loads of the same bytes, once: median {statistics.median(pickling) * 1e3:.1f} ms "
          f"(a round trip does it twice)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--task", action="store_true", help="also the task round trip through a combo")
    parser.add_argument("--task-only", action="store_true", help="only the task round trip")
    args = parser.parse_args()
    binary = os.environ.get("SCALER_BINARY", os.path.join(os.path.dirname(__file__), "..", "bin", "scaler"))
    size = args.size_mib << 20
    if not args.task_only:
        bench_storage(binary, size, args.rounds)
    if args.task or args.task_only:
        bench_task(size, args.rounds)


if __name__ == "__main__":
    main()
