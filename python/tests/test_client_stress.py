"""Stress of the client's socket ownership (scaler/client/agent.py, "Who owns the scheduler
socket"): many user threads submit, wait, cancel, time out, subscribe callbacks and waiters, and
wait on each other's futures at once, against the real scheduler and cluster. Every future must end
exactly once with its own outcome, no call may hang, and the client must be idle afterwards.

15 s by default; 60 s with SCALER_FAULTS_LONG=1 (or SCALER_STRESS_SECONDS=N). Prints the counts.
"""

import collections
import concurrent.futures
import faulthandler
import os
import random
import sys
import threading
import time

import pytest

from scaler import Client

BIG = 20_000  # over the 4 KiB inline limit: stored, fetched on demand
THREADS = 8
CALL_TIMEOUT = 60  # no single wait may take longer: past it, the run counts as hung


def _seconds() -> float:
    if os.environ.get("SCALER_STRESS_SECONDS"):
        return float(os.environ["SCALER_STRESS_SECONDS"])
    return 60.0 if os.environ.get("SCALER_FAULTS_LONG", "") not in ("", "0") else 15.0


def echo(value):
    return value


def big_echo(value):
    return (value, b"x" * BIG)


def slow_echo(seconds, value):
    time.sleep(seconds)
    return value


def fail(value):
    raise KeyError(value)


class Ledger:
    """Per future: what it must end with, and how often its callback ran."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.callbacks = collections.Counter()
        self.shared = collections.deque(maxlen=64)  # (future, token) other threads also wait on
        self.errors = []
        self.tokens = iter(range(1, 1 << 62))

    def token(self) -> int:
        with self.lock:
            return next(self.tokens)

    def count(self, kind: str) -> None:
        with self.lock:
            self.counts[kind] += 1

    def fail(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)


def _check_value(ledger, kind, future, token, value):
    expected = (token, b"x" * BIG) if kind == "big" else token
    if value != expected:
        ledger.fail(f"{kind}: future {future.task_id.hex()} ended with {str(value)[:60]!r}, not token {token}")


def _op_submit(client, ledger, rng):
    token = ledger.token()
    future = client.submit(echo, token)
    if rng.random() < 0.3:
        ledger.shared.append((future, token))
    _check_value(ledger, "submit", future, token, future.result(timeout=CALL_TIMEOUT))
    ledger.count("submit")


def _op_big(client, ledger, rng):
    token = ledger.token()
    future = client.submit(big_echo, token)
    _check_value(ledger, "big", future, token, future.result(timeout=CALL_TIMEOUT))
    ledger.count("big")


def _op_timeout(client, ledger, rng):
    token = ledger.token()
    future = client.submit(slow_echo, rng.uniform(0.05, 0.2), token)
    try:
        value = future.result(timeout=rng.uniform(0.0, 0.02))
        ledger.count("timeout_raced")  # the machine was slow enough for the task to win
    except concurrent.futures.TimeoutError:
        value = future.result(timeout=CALL_TIMEOUT)  # the result still comes, once
        ledger.count("timeout")
    _check_value(ledger, "timeout", future, token, value)


def _op_cancel(client, ledger, rng):
    token = ledger.token()
    future = client.submit(slow_echo, rng.uniform(0.0, 0.1), token)
    if rng.random() < 0.5:
        time.sleep(rng.uniform(0.0, 0.05))
    cancelled = future.cancel(timeout=CALL_TIMEOUT)
    if cancelled:
        if not future.cancelled():
            ledger.fail(f"cancel: {future.task_id.hex()} cancel() True but not cancelled()")
        try:
            future.result(timeout=CALL_TIMEOUT)
            ledger.fail(f"cancel: {future.task_id.hex()} cancelled but result() returned")
        except concurrent.futures.CancelledError:
            pass
        ledger.count("cancelled")
    else:
        _check_value(ledger, "cancel", future, token, future.result(timeout=CALL_TIMEOUT))
        ledger.count("cancel_lost")


def _op_callbacks(client, ledger, rng):
    tokens = [ledger.token() for _ in range(rng.randint(1, 8))]
    futures = [client.submit(echo, t) if t % 3 else client.submit(big_echo, t) for t in tokens]
    ran = threading.Semaphore(0)

    def callback(future):
        with ledger.lock:
            ledger.callbacks[future] += 1
        ran.release()

    for future in futures:
        future.add_done_callback(callback)
    for future in futures:
        if not ran.acquire(timeout=CALL_TIMEOUT):
            ledger.fail("callbacks: a done-callback never ran")
            return
    for future, token in zip(futures, tokens):
        kind = "submit" if token % 3 else "big"
        _check_value(ledger, kind, future, token, future.result(timeout=CALL_TIMEOUT))
    ledger.count("callbacks")


def _op_wait(client, ledger, rng):
    tokens = [ledger.token() for _ in range(rng.randint(2, 12))]
    futures = [client.submit(echo, t) if t % 4 else client.submit(fail, t) for t in tokens]
    if rng.random() < 0.5:
        done, not_done = concurrent.futures.wait(futures, timeout=CALL_TIMEOUT)
        if not_done:
            ledger.fail(f"wait: {len(not_done)} futures not done after {CALL_TIMEOUT} s")
            return
        seen = futures
    else:
        seen = list(concurrent.futures.as_completed(futures, timeout=CALL_TIMEOUT))
        if sorted(map(id, seen)) != sorted(map(id, futures)):
            ledger.fail("as_completed: did not yield every future exactly once")
            return
    for future, token in zip(futures, tokens):
        if token % 4:
            _check_value(ledger, "wait", future, token, future.result(timeout=0))
        else:
            error = future.exception(timeout=0)
            if not isinstance(error, KeyError) or error.args != (token,):
                ledger.fail(f"wait: failing task {token} ended with {error!r}")
    ledger.count("wait")


def _op_other_thread(client, ledger, rng):
    try:
        future, token = ledger.shared[rng.randrange(len(ledger.shared))]
    except (IndexError, ValueError):
        return
    _check_value(ledger, "shared", future, token, future.result(timeout=CALL_TIMEOUT))
    ledger.count("shared")


def _op_map(client, ledger, rng):
    tokens = [ledger.token() for _ in range(rng.randint(1, 50))]
    if client.map(echo, [(t,) for t in tokens]) != tokens:
        ledger.fail("map: results differ from the tokens")
    ledger.count("map")


OPS = [(_op_submit, 30), (_op_big, 8), (_op_timeout, 10), (_op_cancel, 8), (_op_callbacks, 10), (_op_wait, 10),
       (_op_other_thread, 10), (_op_map, 4)]


def test_many_threads_submit_wait_cancel_and_time_out(combo):
    seconds = _seconds()
    ledger = Ledger()
    functions, weights = zip(*OPS)
    with Client(combo.get_address(), timeout_seconds=60) as client:
        deadline = time.monotonic() + seconds

        def work(seed):
            rng = random.Random(seed)
            try:
                while time.monotonic() < deadline and not ledger.errors:
                    rng.choices(functions, weights)[0](client, ledger, rng)
            except BaseException as error:  # noqa: B902 - any escape is a failure of the run
                ledger.fail(f"thread {seed}: {type(error).__name__}: {error}")

        threads = [threading.Thread(target=work, args=(seed,), name=f"stress-{seed}", daemon=True)
                   for seed in range(THREADS)]
        for thread in threads:
            thread.start()
        # Every call inside is bounded by CALL_TIMEOUT; a thread alive well past that is hung.
        end = deadline + 2 * CALL_TIMEOUT
        for thread in threads:
            thread.join(max(0.0, end - time.monotonic()))
        hung = [thread.name for thread in threads if thread.is_alive()]
        if hung:
            faulthandler.dump_traceback(file=sys.stderr)
        assert not hung, f"threads hung: {hung}"
        assert not ledger.errors, ledger.errors[:10]

        several = [future for future, count in ledger.callbacks.items() if count != 1]
        assert not several, f"{len(several)} futures ran their done-callback more than once"
        agent = client._agent
        idle = time.monotonic() + 30
        while agent._tasks and time.monotonic() < idle:  # cancels confirmed, results settled
            time.sleep(0.05)
        assert not agent._tasks, f"{len(agent._tasks)} tasks still pending after the run"
        assert not agent._socket_waiters, "a waiting call left its registration behind"
        assert agent._rx_owner in ("agent", None)
        # The client is still fine after the storm.
        assert client.submit(echo, "after").result(timeout=CALL_TIMEOUT) == "after"
    total = sum(ledger.counts.values())
    print(f"\nstress {seconds:g} s, {THREADS} threads: {total} operations "
          f"({total / seconds:.0f}/s): " + ", ".join(f"{k} {v}" for k, v in sorted(ledger.counts.items())))
    assert total > THREADS, "the run did almost nothing"
    for kind in ("submit", "big", "wait", "callbacks", "cancelled", "timeout"):
        if ledger.counts[kind] == 0:
            pytest.fail(f"no {kind!r} operation completed: the run did not exercise it")
