"""Errors a program can tell apart (issue 12, points 3 and 13), against the in-process fake
scheduler: a refused object raises ObjectStorageException and is never announced; a lost
scheduler raises SchedulerLostError (a TimeoutError), unlike result(timeout=...) running out."""

import concurrent.futures
import threading
import time

import pytest

from scaler import Client
from scaler.io.storage import ObjectStorageError
from scaler.protocol import ObjectInstruction, ObjectInstructionType, Task
from scaler.utility.exceptions import ClientQuitException, ObjectStorageException, SchedulerLostError

from conftest import FakeScheduler, wait_for

LIMIT = 1024 * 1024
BIG = b"x" * (2 * LIMIT)


def echo_len(value):
    return len(value)


def noop(x):
    return x


@pytest.fixture
def limited():
    fake = FakeScheduler(inline_only=True)
    fake.max_object = LIMIT
    fake.start()
    client = Client(fake.address, timeout_seconds=10)
    yield fake, client
    client.disconnect()
    fake.stop()


def _announced(fake):
    """Object ids the client announced to the scheduler, in order."""
    return [oid for _, m in fake.received
            if isinstance(m, ObjectInstruction) and m.type == ObjectInstructionType.Create
            for oid in m.metadata.object_ids]


def test_exception_types():
    assert issubclass(SchedulerLostError, TimeoutError)
    assert not issubclass(concurrent.futures.TimeoutError, SchedulerLostError)
    # The storage client's error is an ObjectStorageException too (one except for both).
    assert issubclass(ObjectStorageError, ObjectStorageException) and issubclass(ObjectStorageError, RuntimeError)


def test_refused_send_object_raises_and_is_not_announced(limited):
    fake, client = limited
    assert wait_for(lambda: client._serializer_id in fake.created, 5)  # announced once stored
    before = len(_announced(fake))
    start = time.monotonic()
    with pytest.raises(ObjectStorageException, match=f"memory limit of {LIMIT} bytes"):
        client.send_object(BIG)
    assert time.monotonic() - start < 5
    time.sleep(0.2)  # anything the client would still send has arrived
    assert len(_announced(fake)) == before  # never registered with the scheduler
    assert not client._valid_references
    # An accepted object is stored before it is announced, and works as an argument.
    ref = client.send_object(b"small")
    assert ref.object_id in fake.objects
    assert wait_for(lambda: ref.object_id in fake.created, 5)
    assert client.submit(echo_len, ref).result(timeout=5) == 5


def test_refused_argument_and_data_node_raise_and_release(limited):
    fake, client = limited
    with pytest.raises(ObjectStorageException, match="memory limit"):
        client.submit(echo_len, BIG).result(timeout=5)
    with pytest.raises(ObjectStorageException, match="memory limit"):
        client.map(echo_len, [(b"a",), (BIG,)])
    with pytest.raises(ObjectStorageException, match="memory limit"):
        client.get({"d": BIG, "n": (echo_len, "d")}, keys=["n"])
    # The refused objects were announced with their tasks; the client tells the scheduler to
    # forget them, and has no task left waiting.
    assert wait_for(lambda: set(_announced(fake)) - set(fake.objects) <= set(fake.deleted), 5)
    assert wait_for(lambda: not client._agent._tasks and not client._agent._graphs and not client._agent._in_flight, 5)
    assert client.map(echo_len, [(b"ab",)]) == [2]


def test_refused_function_is_forgotten_by_the_cache(limited):
    fake, client = limited
    captured = BIG

    def closure():
        return len(captured)

    for _ in range(2):  # the second submission stores it again, and is refused again: no hang
        with pytest.raises(ObjectStorageException, match="memory limit"):
            client.submit(closure).result(timeout=5)
    assert not any(oid not in fake.objects for oid in client._function_cache.values())


def test_task_reading_an_object_still_in_flight_fails_when_it_is_refused(limited):
    """send_object from a done-callback cannot wait (it runs in the client's own thread): the
    reference comes back at once, and a task using it fails once storage refuses the object."""
    fake, client = limited
    outcome = {}
    fake.hold = True
    trigger = client.submit(noop, 1)

    def callback(_):
        ref = client.send_object(BIG)
        outcome["future"] = client.submit(echo_len, ref)

    trigger.add_done_callback(callback)
    fake.release_held()
    assert trigger.result(timeout=5) == 1
    assert wait_for(lambda: "future" in outcome, 5)
    with pytest.raises(ObjectStorageException, match="memory limit"):
        outcome["future"].result(timeout=5)
    # The refused object's reference is no longer valid for new tasks.
    assert not client._valid_references


def test_store_batches_wake_when_the_client_stops():
    fake = FakeScheduler(inline_only=True).start()
    client = Client(fake.address, timeout_seconds=10)
    original = fake._on_storage
    fake._on_storage = lambda store, frames: None  # storage never answers
    try:
        errors = []

        def send():
            try:
                client.send_object(b"never acknowledged")
            except BaseException as error:  # recorded for the assertion below
                errors.append(error)

        thread = threading.Thread(target=send)
        thread.start()
        assert wait_for(lambda: any(r[0] == "set" for r in client._agent._storage_requests.values()), 5)
        client.disconnect()
        thread.join(5)
        assert not thread.is_alive() and len(errors) == 1 and isinstance(errors[0], ClientQuitException)
    finally:
        fake._on_storage = original
        fake.stop()


def test_send_object_gives_up_after_the_timeout():
    fake = FakeScheduler(inline_only=True).start()
    client = Client(fake.address, timeout_seconds=1, heartbeat_interval_seconds=0.2)
    fake._on_storage = lambda store, frames: None  # storage never answers
    try:
        start = time.monotonic()
        with pytest.raises(ObjectStorageException, match="did not acknowledge"):
            client.send_object(b"never acknowledged")
        assert 0.9 < time.monotonic() - start < 5
        assert not client._valid_references
    finally:
        client.disconnect()
        fake.stop()


def test_lost_scheduler_raises_scheduler_lost_error(breakable):
    fake, client = breakable
    fake.hold = True
    pending = client.submit(noop, 1)
    with pytest.raises(concurrent.futures.TimeoutError) as waited:
        pending.result(timeout=0.1)
    assert not isinstance(waited.value, SchedulerLostError)
    start = time.monotonic()
    fake.stop()
    with pytest.raises(SchedulerLostError, match="lost the connection"):
        pending.result(timeout=10)
    assert time.monotonic() - start < 5
    with pytest.raises(ClientQuitException):
        client.submit(noop, 2)


def test_silent_scheduler_raises_scheduler_lost_error(fake_scheduler):
    client = Client(fake_scheduler.address, timeout_seconds=1, heartbeat_interval_seconds=1)
    try:
        fake_scheduler.hold = True
        fake_scheduler.silent = True
        pending = client.submit(noop, 1)
        with pytest.raises(SchedulerLostError, match="silent for more than 1 seconds"):
            pending.result(timeout=10)
    finally:
        client.disconnect()


def test_never_reached_scheduler_is_a_plain_timeout():
    from _scaler_binary import free_port

    with pytest.raises(TimeoutError) as caught:
        Client(f"tcp://127.0.0.1:{free_port()}", timeout_seconds=1)
    assert not isinstance(caught.value, SchedulerLostError)


def test_refused_serializer_fails_the_constructor():
    fake = FakeScheduler(inline_only=True)
    fake.max_object = 1  # even the serializer is refused
    fake.start()
    try:
        with pytest.raises(ObjectStorageException, match="memory limit of 1 bytes"):
            Client(fake.address, timeout_seconds=5)
        assert not any(isinstance(m, Task) for _, m in fake.received)
    finally:
        fake.stop()


def test_task_timeout_is_its_own_timeout_error(fake_scheduler):
    from scaler.protocol import TaskResult, TaskResultType
    from scaler.utility.exceptions import TaskTimeoutError

    client = Client(fake_scheduler.address, timeout_seconds=10)
    try:
        fake_scheduler.hold = True
        pending = client.submit(noop, 1)
        assert wait_for(lambda: fake_scheduler.held, 5)
        ident, task = fake_scheduler.held[0]
        fake_scheduler.call(lambda: fake_scheduler.send(ident, TaskResult(
            task_id=task.task_id, type=TaskResultType.FailedTimeout, message="task ran longer than the task timeout of 1s")))
        with pytest.raises(TaskTimeoutError, match="task timeout of 1s") as caught:
            pending.result(timeout=5)
        assert isinstance(caught.value, TimeoutError) and not isinstance(caught.value, SchedulerLostError)
    finally:
        client.disconnect()


def test_dropped_client_still_disconnects(fake_scheduler):
    """The agent's hook for refused objects holds the client weakly: a client nobody references
    is freed and disconnects (__del__), as before."""
    import weakref

    from scaler.protocol import ClientDisconnect

    client = Client(fake_scheduler.address, timeout_seconds=10)
    agent, ref = client._agent, weakref.ref(client)
    del client
    assert ref() is None
    assert wait_for(lambda: agent.stopped.is_set(), 5)
    assert wait_for(lambda: any(isinstance(m, ClientDisconnect) for _, m in fake_scheduler.received), 5)
