"""Peers that stop reading do not grow the scheduler's memory (issue 12, point 9).

- A monitor subscriber that connects and never reads while about 1,000 tasks/s run for 15 s (60 s
  in the long form) and until drops have gone on for 10 s: the scheduler drops monitor messages for
  it at the monitor's high-water mark, counts them in the published status (``monitor_dropped``)
  and in one warning a second, and keeps serving a subscriber that reads.
- A client that keeps submitting tasks returning ~4 KB inline results but never reads: the
  scheduler keeps a bounded backlog for it, then drops it as a client (one line) and cancels its
  tasks, instead of queueing every result.

In both, the scheduler's RSS stays within 50 MB of its start. Before the finite HWMs (every queue
unlimited) both grew without bound: see docs/scheduler.md ("Bounded queues and memory").
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import zmq

from scaler import protocol as p
from scaler.io.ids import new_object_id, serializer_object_id
from scaler.io.storage import ObjectStorageClient

from .harness import long_form, rss_bytes

MB = 1 << 20
BUDGET = 50 * MB


def trivial(x):
    return x


class RssSampler:
    """The maximum RSS of pid, sampled every 0.1 s in a thread until stop()."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = rss_bytes(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, rss_bytes(self.pid))

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        return self.peak


def monitor_address(stack):
    return f"tcp://127.0.0.1:{stack.scheduler.port + 2}"


# The reading subscriber runs in its own process: in a thread of the test process it would share
# the GIL with the client that drives 1,000 tasks/s, and a gap in its statuses could be the test's
# own doing. It prints one JSON line per StateScheduler and exits when its stdin closes.
READER = r"""
import json, sys, threading, time
import zmq
from scaler import protocol as p
from scaler.utility.network_util import pending_frames

ctx = zmq.Context()
sock = ctx.socket(zmq.SUB)
sock.setsockopt(zmq.LINGER, 0)
sock.setsockopt(zmq.SUBSCRIBE, b"")
sock.connect(sys.argv[1])
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
print("ready", flush=True)
received = 0
while not stop.is_set():
    if not sock.poll(100):
        continue
    for frame in pending_frames(sock):
        received += 1
        if frame[:1] == bytes([p.Kind.StateScheduler]):
            m = p.decode(frame)
            print(json.dumps([time.monotonic(), m.monitor_dropped, m.monitor_sent, received]), flush=True)
            received = 0
sock.close(0)
ctx.term()
"""


class StatusReader:
    """A monitor subscriber that reads, in a child process: keeps (arrival time, monitor_dropped,
    monitor_sent, messages received since the previous status) of every StateScheduler until stop().
    Arrival times are the child's time.monotonic(), the same clock as the test's on Linux."""

    def __init__(self, address):
        self.proc = subprocess.Popen([sys.executable, "-c", READER, address], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, start_new_session=True)
        self.statuses = []  # (monotonic time, monitor_dropped, monitor_sent, received since previous)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "the status reader did not start"

    def _run(self):
        for line in self.proc.stdout:
            if line.strip() == "ready":
                self._ready.set()
            else:
                self.statuses.append(tuple(json.loads(line)))

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._thread.join(5)

    def missed(self):
        """Messages published between its first and last status that this reader did not get."""
        if len(self.statuses) < 2:
            return None
        got = sum(r for _, _, _, r in self.statuses[1:])
        return self.statuses[-1][2] - self.statuses[0][2] - got

    def longest_gap(self, start, end):
        """Longest time without a status between start and end (monotonic)."""
        times = [start] + [t for t, _, _, _ in self.statuses if start < t < end] + [end]
        return max(b - a for a, b in zip(times, times[1:]))


DROP_LINE = "monitor messages dropped"


def test_stalled_monitor_subscriber(stack):
    """A subscriber that connects and never reads while about 1,000 tasks/s run for at least 15 s
    (60 s with SCALER_FAULTS_LONG=1) and until the scheduler has been dropping messages for it for
    10 s: the scheduler's RSS stays within 50 MB of its start, the drops are counted in the published
    status (monitor_dropped > 0), and a second subscriber that reads is still served a status about
    every second meanwhile.

    Drops begin only once the stalled subscriber has absorbed the scheduler's 10,000-message queue,
    its own receive queue and the TCP buffers, which takes long on a slow machine: hence a loop until
    they are seen, bounded by a deadline, rather than a fixed duration."""
    seconds = long_form(15, 60)
    after_drops = 10.0  # no-drop mode alone would blind the reader for at least this long
    deadline = 240.0
    rate = 1000
    sched = stack.start_scheduler()
    stack.start_cluster(2)
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    # Small receive queues so that the subscriber's own libzmq stops reading early; it never reads.
    sub.setsockopt(zmq.RCVHWM, 1)
    sub.setsockopt(zmq.RCVBUF, 4096)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(monitor_address(stack))
    reader = StatusReader(monitor_address(stack))
    try:
        with stack.client(timeout_seconds=120) as client:
            assert client.map(trivial, [(i,) for i in range(1000)]) == list(range(1000))  # warm-up
            time.sleep(1)
            start = rss_bytes(sched.pid)
            sampler = RssSampler(sched.pid)
            t0 = time.monotonic()
            first_drop = None
            done = 0
            # One batch of `rate` tasks a second, paced: a slow machine runs fewer, never a burst.
            while True:
                now = time.monotonic()
                if first_drop is None and sched.count(DROP_LINE):
                    first_drop = now
                if now - t0 >= deadline:
                    break
                if now - t0 >= seconds and first_drop is not None and now - first_drop >= after_drops:
                    break
                batch_start = time.monotonic()
                assert client.map(trivial, [(i,) for i in range(rate)]) == list(range(rate))
                done += rate
                time.sleep(max(0.0, 1.0 - (time.monotonic() - batch_start)))
            t1 = time.monotonic()
            time.sleep(2.5)  # a status (and the once-a-second drop warning) after the last task
            peak = sampler.stop()
        end = rss_bytes(sched.pid)
        reader.stop()
        drops = sched.log_lines(DROP_LINE)
        last_dropped = reader.statuses[-1][1] if reader.statuses else None
        gap = reader.longest_gap(t0, t1)
        since = f"{first_drop - t0:.1f}s" if first_drop is not None else "never"
        print(f"\nstalled monitor subscriber, {done} tasks in {t1 - t0:.1f}s ({done / (t1 - t0):.0f}/s), first drop "
              f"logged after {since}: scheduler RSS start {start / MB:.1f} MB, peak {peak / MB:.1f} MB "
              f"(+{(peak - start) / MB:.1f}), end {end / MB:.1f} MB; status monitor_dropped {last_dropped}; the "
              f"reading subscriber got {len(reader.statuses)} statuses (longest gap {gap:.1f}s), missed "
              f"{reader.missed()} messages; {len(drops)} drop lines, last: {drops[-1][-120:] if drops else None}")
        assert peak - start < BUDGET, f"scheduler RSS grew by {(peak - start) / MB:.1f} MB"
        assert drops, f"no drop was logged in {t1 - t0:.0f}s ({done} tasks)"
        assert last_dropped, "the published status does not count the drops"
        # One stalled subscriber must not blind the others (libzmq's no-drop mode alone would, from
        # the first drop to the end: at least `after_drops` seconds). Statuses come every second.
        assert gap < 5.0, f"the reading subscriber went {gap:.1f}s without a status"
    finally:
        reader.stop()
        sub.close(0)
        ctx.term()


def blob(i):
    return b"r" * 3900  # travels back inline (at most 4 KiB)


def task_template(client):
    """The Task message of ``blob`` as ``client`` sends it and the ObjectInstruction that announced
    its function object, captured from the client's socket."""
    frames = []
    link = client._agent._scheduler
    send = link.send

    def capture(frame, *args, **kwargs):
        frames.append(bytes(frame))
        return send(frame, *args, **kwargs)

    link.send = capture
    try:
        assert client.submit(blob, 0).result(timeout=60) == b"r" * 3900
    finally:
        link.send = send
    task, instruction = None, None
    for frame in frames:
        m = p.decode(frame)
        for sub in ([x for x, _ in p.unbatch(m)] if isinstance(m, p.Batch) else [m]):
            if isinstance(sub, p.Task) and task is None:
                task = sub
            if isinstance(sub, p.ObjectInstruction) and instruction is None:
                instruction = sub
    assert task is not None and instruction is not None, "no Task and ObjectInstruction captured"
    return task, instruction


def test_stalled_client(stack):
    """A client that sends tasks as fast as they run but never reads a result."""
    n_tasks = long_form(40_000, 200_000)
    # Client timeout far beyond the test: only the full queue may make the scheduler drop the client.
    sched = stack.start_scheduler("-ct", "600")
    stack.start_cluster(2)
    with stack.client(timeout_seconds=120) as client:
        template, announce = task_template(client)
        assert client.map(trivial, [(i,) for i in range(1000)]) == list(range(1000))  # warm-up
        time.sleep(1)
        start = rss_bytes(sched.pid)
        sampler = RssSampler(sched.pid)
        identity = f"{os.getpid()}|Client|stalled{uuid.uuid4().hex[:8]}".encode()
        # A peer acts only for itself: the stalled identity gets its own copies of the real client's
        # function object and serializer (processors load a function with its client's serializer,
        # scaler.io.ids), under ids of its own, and announces the function like a client.
        func_id = new_object_id(identity)
        storage = ObjectStorageClient(f"tcp://127.0.0.1:{sched.port + 1}", timeout_s=30)
        try:
            storage.set_object(serializer_object_id(identity),
                               storage.get_object(serializer_object_id(client._identity)))
            storage.set_object(func_id, storage.get_object(template.func_object_id))
        finally:
            storage.close()
        at = list(announce.metadata.object_ids).index(template.func_object_id)
        meta = announce.metadata
        announce = p.ObjectInstruction(type=announce.type, object_user=identity, metadata=p.ObjectMetadata(
            object_ids=[func_id], content_types=meta.content_types[at:at + 1], names=meta.names[at:at + 1],
            contents=meta.contents[at:at + 1]))
        ctx = zmq.Context()
        dealer = ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.IDENTITY, identity)
        dealer.setsockopt(zmq.RCVHWM, 1)  # its own libzmq stops reading at once; it never reads
        dealer.setsockopt(zmq.RCVBUF, 4096)
        dealer.setsockopt(zmq.SNDTIMEO, 10_000)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(stack.address)
        sent = 0
        t0 = time.monotonic()
        try:
            dealer.send(p.encode(p.ClientHeartbeat()))
            dealer.send(p.encode(announce))
            next_beat = time.monotonic() + 1
            # About 4,000 tasks a second, less than two workers run: few wait in the scheduler, and
            # every result goes to a peer that does not read. Stop once the scheduler drops it.
            while sent < n_tasks and not sched.count("stopped reading") and time.monotonic() - t0 < 60:
                for _ in range(200):
                    fields = {name: getattr(template, name) for name, _ in p.Task.FIELDS}
                    fields.update(task_id=uuid.uuid4().bytes, source=identity, func_object_id=func_id)  # 16 bytes, as the client
                    dealer.send(p.encode(p.Task(**fields)))
                    sent += 1
                if time.monotonic() >= next_beat:
                    dealer.send(p.encode(p.ClientHeartbeat()))
                    next_beat += 1
                time.sleep(0.05)
            elapsed = time.monotonic() - t0
            time.sleep(2)
            # The scheduler still serves everybody else.
            assert client.map(trivial, [(i,) for i in range(1000)]) == list(range(1000))
            peak = sampler.stop()
            end = rss_bytes(sched.pid)
        finally:
            dealer.close(0)
            ctx.term()
    lines = sched.log_lines("stopped reading")
    print(f"\nstalled client, {sent} tasks of ~4 KB results sent in {elapsed:.1f}s: scheduler RSS start "
          f"{start / MB:.1f} MB, peak {peak / MB:.1f} MB (+{(peak - start) / MB:.1f}), end {end / MB:.1f} MB; "
          f"{lines[-1][-220:] if lines else 'never dropped'}")
    assert peak - start < BUDGET, f"scheduler RSS grew by {(peak - start) / MB:.1f} MB"
    assert len(lines) == 1, lines
    assert "client=" in lines[0]
