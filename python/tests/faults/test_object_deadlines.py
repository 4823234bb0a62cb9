"""Issue 12 point 4: nothing that waits for an object waits forever.

Object storage answers a get (or duplicate) of an object that does not appear within its wait
deadline "not found" (docs/protocol.md §9.5); the processor fails the task naming the missing
object and is free again; the client's result fetch raises ObjectNotFoundError; parked gets of a
peer whose connection closed are dropped at once. The first two scenarios use a 2 s deadline
(default 60 s).
"""

import os
import time

import zmq

from scaler import protocol as p
from scaler.io import ObjectStorageClient
from scaler.utility.exceptions import ObjectNotFoundError, ObjectStorageException

from .harness import HOST, wait_until

DEADLINE = 2  # seconds: --object-storage-wait-timeout-seconds / --wait-timeout-seconds


def _payload(n: int) -> bytes:
    return b"x" * n


def _storage_of(stack) -> str:
    return f"tcp://{HOST}:{stack.scheduler.port + 1}"  # the scheduler's in-process storage


def test_task_with_missing_argument_fails_and_frees_the_worker(stack):
    stack.start_scheduler("--object-storage-wait-timeout-seconds", str(DEADLINE))
    cluster = stack.start_cluster(1)
    slots = len(cluster.processors())
    with stack.client(timeout_seconds=30) as client, ObjectStorageClient(_storage_of(stack), timeout_s=30) as oss:
        refs = [client.send_object(_payload(100_000 + i)) for i in range(slots)]
        for ref in refs:  # stored, then taken away behind the client's back
            oss.get_object(ref.object_id)
            assert oss.delete_object(ref.object_id)
        start = time.monotonic()
        futures = [client.submit(len, ref) for ref in refs]
        errors = [f.exception(timeout=DEADLINE + 30) for f in futures]
        failed_after = time.monotonic() - start
        for ref, error in zip(refs, errors):
            assert isinstance(error, ObjectNotFoundError), repr(error)
            assert f"argument 0 object {ref.object_id.hex()}" in str(error), str(error)
            assert f"within {DEADLINE}s" in str(error), str(error)
        start = time.monotonic()
        assert client.submit(pow, 2, 10).result(timeout=30) == 1024
        next_task = time.monotonic() - start
    print(f"\n{slots} task(s) with a missing argument failed after {failed_after:.2f} s (deadline {DEADLINE} s); "
          f"the next task took {next_task:.2f} s; error: {errors[0]}")
    assert failed_after < DEADLINE + 20


def test_result_fetch_of_missing_object_raises(stack):
    stack.start_scheduler("--object-storage-wait-timeout-seconds", str(DEADLINE))
    stack.start_cluster(1)
    with stack.client(timeout_seconds=30) as client, ObjectStorageClient(_storage_of(stack), timeout_s=30) as oss:
        future = client.submit(bytes, 100_000)  # over the inline limit: the result is an object
        # The client fetches a result only when someone asks; until then it only knows the id
        # (_ready). The one processor runs the tasks in order: once the second task's result is
        # read, so is the first one's TaskResult.
        assert client.submit(pow, 2, 2).result(timeout=30) == 4
        ready = wait_until(lambda: future._ready, 30, "the task's result to be announced")
        result_id = ready[0]
        assert oss.delete_object(result_id)
        start = time.monotonic()
        try:
            future.result(timeout=DEADLINE + 30)
            raise AssertionError("result() of a missing object returned")
        except ObjectNotFoundError as error:
            raised, waited = error, time.monotonic() - start
        assert isinstance(raised, ObjectStorageException)
        assert result_id.hex() in str(raised) and f"within {DEADLINE}s" in str(raised), str(raised)
        # The client goes on working.
        assert client.submit(pow, 3, 3).result(timeout=30) == 27
    print(f"\nresult() of a deleted result object raised {type(raised).__name__} after {waited:.2f} s: {raised}")
    assert waited < DEADLINE + 20


def test_parked_gets_of_a_departed_peer_do_not_stay(stack):
    # A deadline far away: the gets must go because their peer's connection closed.
    storage = stack.start_storage("--wait-timeout-seconds", "600")
    n = 10_000
    ctx = zmq.Context.instance()
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.IDENTITY, b"departing-" + os.urandom(8).hex().encode())
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(stack.storage_address)
    with ObjectStorageClient(stack.storage_address, timeout_s=10) as oss:
        base = oss.stats().waiting_requests
        for i in range(n):
            dealer.send(p.encode(p.ObjectRequest(request_id=i + 1, type=p.ObjectRequestType.Get,
                                                 object_id=os.urandom(32))))
        parked = wait_until(lambda: oss.stats().waiting_requests >= base + n and oss.stats().waiting_requests, 30,
                            f"{n} gets to park")
        dealer.close(0)
        closed = time.monotonic()
        wait_until(lambda: oss.stats().waiting_requests == base, 15, "the departed peer's parked gets to end")
        gone_after = time.monotonic() - closed
    # The server counts them in one log line per second, not one line each.
    lines = wait_until(lambda: storage.log_lines("parked requests ended"), 10, "the server's count of ended gets")
    print(f"\n{parked - base} parked gets of a closed DEALER; waiting count back to {base} "
          f"{gone_after:.2f} s after it closed (deadline 600 s); server log: {lines}")
    assert len(lines) <= 3 and sum(int(line.split("dropped_departed=")[1].split()[0]) for line in lines) == n
