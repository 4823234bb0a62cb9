"""Peers that stop reading do not grow the scheduler's memory (issue 12, point 9).

- A monitor subscriber that connects and never reads while 100,000 tasks run: the scheduler drops
  status for it at the monitor's high-water mark and counts the drops (one warning a second).
- A client that keeps submitting tasks returning ~4 KB inline results but never reads: the
  scheduler keeps a bounded backlog for it, then drops it as a client (one line) and cancels its
  tasks, instead of queueing every result.

In both, the scheduler's RSS stays within 50 MB of its start. Before the finite HWMs (every queue
unlimited) both grew without bound: see docs/scheduler.md ("Bounded queues and memory").
"""

import os
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


def test_stalled_monitor_subscriber(stack):
    n_tasks = long_form(100_000, 500_000)
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
    try:
        with stack.client(timeout_seconds=120) as client:
            assert client.map(trivial, [(i,) for i in range(1000)]) == list(range(1000))  # warm-up
            time.sleep(1)
            start = rss_bytes(sched.pid)
            sampler = RssSampler(sched.pid)
            t0 = time.monotonic()
            done = 0
            while done < n_tasks:
                n = min(1000, n_tasks - done)
                assert client.map(trivial, [(i,) for i in range(n)]) == list(range(n))
                done += n
            elapsed = time.monotonic() - t0
            time.sleep(1.5)  # a drop count is logged once a second
            peak = sampler.stop()
        end = rss_bytes(sched.pid)
        drops = [line for line in sched.log_lines("status messages dropped")]
        print(f"\nstalled monitor subscriber, {n_tasks} tasks in {elapsed:.1f}s: scheduler RSS start "
              f"{start / MB:.1f} MB, peak {peak / MB:.1f} MB (+{(peak - start) / MB:.1f}), end {end / MB:.1f} MB; "
              f"{len(drops)} drop lines, last: {drops[-1][-160:] if drops else None}")
        assert peak - start < BUDGET, f"scheduler RSS grew by {(peak - start) / MB:.1f} MB"
        assert drops, "no status drop was logged"
    finally:
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
