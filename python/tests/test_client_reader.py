"""The thread waiting on ScalerFuture.result() reads the scheduler socket itself
(ClientAgent.wait_until); these tests hold the fake scheduler's tasks so that the
waiting thread is the socket's reader when the results come, and check that
nothing the agent thread must do is lost or moved: callbacks, heartbeats, the
socket going back to the agent, timeouts."""

import concurrent.futures
import threading
import time

import pytest

from scaler import Client

from conftest import FakeScheduler, wait_for


def noop(x):
    return x


@pytest.fixture
def fake():
    fake = FakeScheduler(inline_only=True).start()
    yield fake
    fake.stop()


@pytest.fixture
def client(fake):
    """A client of ``fake`` (10 s timeout, 1 s heartbeats), disconnected after the test."""
    client = Client(fake.address, timeout_seconds=10, heartbeat_interval_seconds=1)
    yield client
    client.disconnect()


def _reading(client, thread: threading.Thread) -> bool:
    return client._agent._rx_owner == thread.ident


def _release_once_reading(fake, client, thread, after: float = 0.0):
    """Let the held tasks run ``after`` seconds once ``thread`` reads the scheduler socket."""

    def go():
        wait_for(lambda: _reading(client, thread))
        time.sleep(after)
        fake.release_held()

    releaser = threading.Thread(target=go, daemon=True)
    releaser.start()
    return releaser


def test_waiting_thread_reads_results_and_leaves_callbacks_to_the_agent(fake, client):
    fake.hold = True
    ran_in = []
    called = threading.Event()
    with_callback = client.submit(noop, 1)
    with_callback.add_done_callback(lambda f: (ran_in.append(threading.current_thread().name), called.set()))
    waited = client.submit(noop, 2)
    releaser = _release_once_reading(fake, client, threading.current_thread())
    assert waited.result(timeout=10) == 2
    releaser.join(10)
    assert called.wait(10)
    assert ran_in == ["scaler-client-agent"]  # not the thread that was reading
    assert with_callback.result(timeout=10) == 1


def test_heartbeats_go_on_while_a_thread_reads(fake):
    # The client gives up on a scheduler silent for 1 s; the task takes 3 s.
    # Heartbeat echoes reach the agent while the waiting thread reads.
    client = Client(fake.address, timeout_seconds=1, heartbeat_interval_seconds=0.1)
    try:
        fake.hold = True
        future = client.submit(noop, 7)
        releaser = _release_once_reading(fake, client, threading.current_thread(), after=3)
        assert future.result(timeout=20) == 7
        releaser.join(10)
        heartbeats = [m for _, m in fake.received if type(m).__name__ == "ClientHeartbeat"]
        assert len(heartbeats) >= 10
    finally:
        client.disconnect()


def test_socket_goes_back_to_the_agent(fake, client):
    assert client.submit(noop, 1).result(timeout=10) == 1  # this thread read the result
    done = threading.Event()
    future = client.submit(noop, 2)
    future.add_done_callback(lambda f: done.set())
    assert done.wait(10), "nobody read the result of a future that no thread waits on"
    assert future.result(timeout=10) == 2
    assert wait_for(lambda: client._agent._rx_owner == "agent")


def test_timeout_while_reading_then_result(fake, client):
    fake.hold = True
    future = client.submit(noop, 3)
    with pytest.raises(concurrent.futures.TimeoutError):
        future.result(timeout=0.3)
    assert client._agent._rx_owner != threading.get_ident()  # it let go of the socket
    fake.release_held()
    assert future.result(timeout=10) == 3


def test_threads_waiting_on_their_own_futures(fake, client):
    fake.hold = True
    futures = [client.submit(noop, i) for i in range(8)]
    results = [None] * 8

    def wait(i):
        results[i] = futures[i].result(timeout=20)

    threads = [threading.Thread(target=wait, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    assert wait_for(lambda: client._agent._rx_owner not in (None, "agent"))
    fake.release_held()
    for t in threads:
        t.join(20)
    assert results == list(range(8))


def test_agent_sleeps_during_a_lone_long_wait(fake):
    # A single wait after a quiet spell: the agent does not poll every few milliseconds while the
    # waiting thread reads (the release wakes it instead), and it gets the socket back after.
    client = Client(fake.address, timeout_seconds=10, heartbeat_interval_seconds=5)
    try:
        agent = client._agent
        short_polls = []
        side_sleep_ms = agent._side_sleep_ms

        def counting():
            ms = side_sleep_ms()
            if ms <= 10:
                short_polls.append(ms)
            return ms

        agent._side_sleep_ms = counting
        time.sleep(0.2)
        fake.hold = True
        future = client.submit(noop, 5)
        releaser = _release_once_reading(fake, client, threading.current_thread(), after=0.5)
        assert future.result(timeout=20) == 5
        releaser.join(10)
        assert len(short_polls) < 10, f"the agent polled {len(short_polls)} times during one 0.5 s wait"
        assert wait_for(lambda: agent._rx_owner == "agent")
    finally:
        client.disconnect()
