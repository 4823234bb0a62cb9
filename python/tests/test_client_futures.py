"""ScalerFuture as a concurrent.futures.Future: wait, as_completed, cancel, timeouts, callbacks and
exceptions, against the real scheduler and cluster (the ``combo``/``client`` fixtures)."""

import concurrent.futures
import threading
import time

import pytest

from scaler.client.future import ScalerFuture

BIG = 100_000  # over the 4 KiB inline limit: the result is stored, and fetched on first demand


def noop(x):
    return x


def big(n):
    return b"x" * n


def sleep_and_return(seconds, value=None):
    time.sleep(seconds)
    return value


def raise_value_error(message):
    raise ValueError(message)


def _settle(*futures):
    """Cancel what is still out, so the module's two workers are free for the next test."""
    for future in futures:
        future.cancel(timeout=30)


def test_is_a_future_and_states(client):
    future = client.submit(sleep_and_return, 0.5, 7)
    assert isinstance(future, concurrent.futures.Future) and isinstance(future, ScalerFuture)
    assert future.running() and not future.done() and not future.cancelled()
    assert future.result(timeout=30) == 7
    assert future.done() and not future.running() and not future.cancelled()
    assert future.exception() is None
    with pytest.raises(concurrent.futures.InvalidStateError):
        future.set_result(8)  # ended: the stdlib's rule
    assert future.result() == 7
    assert "state=FINISHED" in repr(future)


def test_wait_all_completed_inline_and_stored_results(client):
    inline = [client.submit(noop, i) for i in range(20)]
    stored = [client.submit(big, BIG + i) for i in range(5)]  # fetched because wait subscribes
    failed = client.submit(raise_value_error, "boom")
    done, not_done = concurrent.futures.wait(inline + stored + [failed], timeout=60)
    assert not not_done and len(done) == 26
    assert [f.result() for f in inline] == list(range(20))
    assert [len(f.result()) for f in stored] == [BIG + i for i in range(5)]
    assert isinstance(failed.exception(), ValueError) and str(failed.exception()) == "boom"


def test_wait_first_completed_and_first_exception(client):
    slow = client.submit(sleep_and_return, 30, "slow")
    try:
        quick = client.submit(noop, 1)
        done, not_done = concurrent.futures.wait([slow, quick], timeout=30,
                                                 return_when=concurrent.futures.FIRST_COMPLETED)
        assert quick in done and slow in not_done and quick.result() == 1

        failing = client.submit(raise_value_error, "first")
        done, not_done = concurrent.futures.wait([slow, failing], timeout=30,
                                                 return_when=concurrent.futures.FIRST_EXCEPTION)
        assert failing in done and slow in not_done
        with pytest.raises(ValueError, match="first"):
            failing.result()

        done, not_done = concurrent.futures.wait([slow], timeout=0.2)  # a timeout, not an error
        assert not done and not_done == {slow}
    finally:
        _settle(slow)


def test_wait_sees_a_cancel(client):
    slow = client.submit(sleep_and_return, 30)
    got = {}

    def waiter():
        got["sets"] = concurrent.futures.wait([slow], timeout=60)

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.2)  # the waiter is subscribed (or subscribes to a cancelled future: same outcome)
    assert slow.cancel(timeout=30) is True
    thread.join(60)
    assert not thread.is_alive()
    done, not_done = got["sets"]
    assert done == {slow} and not not_done and slow.cancelled() and slow.done()
    with pytest.raises(concurrent.futures.CancelledError):
        slow.result()
    with pytest.raises(concurrent.futures.CancelledError):
        slow.exception()


def test_as_completed_yields_each_future_once(client):
    futures = [client.submit(noop, i) for i in range(30)]
    futures += [client.submit(big, BIG) for _ in range(3)]
    futures.append(client.submit(raise_value_error, "bad"))
    seen = list(concurrent.futures.as_completed(futures, timeout=60))
    assert len(seen) == len(futures) and set(seen) == set(futures)
    assert sorted(f.result() for f in futures[:30]) == list(range(30))
    assert all(f.result() == b"x" * BIG for f in futures[30:33])
    assert isinstance(futures[-1].exception(), ValueError)


def test_as_completed_timeout_and_cancel(client):
    slow = client.submit(sleep_and_return, 30)
    quick = client.submit(noop, 3)
    seen = []
    with pytest.raises(concurrent.futures.TimeoutError):
        for future in concurrent.futures.as_completed([slow, quick], timeout=2):
            seen.append(future)
    assert seen == [quick]

    iterated = []

    def iterate():
        iterated.extend(concurrent.futures.as_completed([slow], timeout=60))

    thread = threading.Thread(target=iterate)
    thread.start()
    time.sleep(0.2)
    assert slow.cancel(timeout=30) is True
    thread.join(60)
    assert not thread.is_alive() and iterated == [slow]


def test_result_timeout_then_cancel(client):
    slow = client.submit(sleep_and_return, 30)
    try:
        start = time.monotonic()
        with pytest.raises(concurrent.futures.TimeoutError):
            slow.result(timeout=0.3)
        assert time.monotonic() - start < 10
        with pytest.raises(concurrent.futures.TimeoutError):
            slow.exception(timeout=0)
        assert slow.running() and not slow.done()
        assert slow.cancel(timeout=30) is True
        assert slow.cancel() is True and slow.cancelled() and not slow.running()
    finally:
        _settle(slow)
    finished = client.submit(noop, 2)
    assert finished.result(timeout=30) == 2 and finished.cancel() is False


def test_done_callbacks(client):
    threads = []
    event = threading.Event()

    def callback(future):
        threads.append((threading.current_thread().name, future.result()))
        event.set()

    stored = client.submit(big, BIG)  # a callback is a demand: the result is fetched for it
    stored.add_done_callback(callback)
    assert event.wait(30)
    assert threads == [("scaler-client-agent", b"x" * BIG)]

    threads.clear()
    stored.add_done_callback(callback)  # already done: runs now, in this thread
    assert threads == [(threading.current_thread().name, b"x" * BIG)]

    with pytest.raises(RuntimeError, match="from the callback"):  # like 1.12.5: raised to the caller
        stored.add_done_callback(lambda f: (_ for _ in ()).throw(RuntimeError("from the callback")))

    errors = []
    failed_event = threading.Event()
    failing = client.submit(raise_value_error, "cb")
    failing.add_done_callback(lambda f: (errors.append(f.exception()), failed_event.set()))
    assert failed_event.wait(30) and isinstance(errors[0], ValueError)

    cancelled = []
    cancelled_event = threading.Event()
    slow = client.submit(sleep_and_return, 30)
    slow.add_done_callback(lambda f: (cancelled.append(f.cancelled()), cancelled_event.set()))
    assert slow.cancel(timeout=30) is True
    assert cancelled_event.wait(30) and cancelled == [True]


def test_exceptions_keep_their_type(client):
    future = client.submit(raise_value_error, "typed")
    error = future.exception(timeout=30)
    assert type(error) is ValueError and str(error) == "typed"
    with pytest.raises(ValueError, match="typed"):
        future.result()
    assert future.done() and not future.cancelled()


def test_lazy_result_is_fetched_once_and_kept(client):
    future = client.submit(big, BIG)
    deadline = time.monotonic() + 30
    while not future.done() and time.monotonic() < deadline:  # done: ready in storage, not fetched
        time.sleep(0.01)
    assert future.done() and future.cancel() is False  # ready: no longer cancellable
    first = future.result(timeout=30)
    assert first == b"x" * BIG and future.result() is first  # deserialized once
