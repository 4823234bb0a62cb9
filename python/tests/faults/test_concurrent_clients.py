"""50 clients at once, each in its own thread with its own connection, all served correctly."""

import threading
import time

from .harness import long_form


def triple(x):
    return 3 * x


def test_fifty_concurrent_clients(stack):
    n_clients = long_form(50, 100)
    per_client = long_form(20, 200)
    stack.start_scheduler()
    stack.start_cluster(2)
    outcomes = {}
    errors = {}
    go = threading.Barrier(n_clients, timeout=120)

    def one(k):
        try:
            with stack.client(timeout_seconds=60) as client:
                go.wait()  # every client connected before any submits
                base = k * 1000
                futures = [client.submit(triple, base + i) for i in range(per_client // 2)]
                mapped = client.map(triple, [(base + i,) for i in range(per_client // 2, per_client)])
                got = [f.result(timeout=120) for f in futures] + mapped
                outcomes[k] = got == [3 * (base + i) for i in range(per_client)]
        except Exception as e:  # reported below with the client's number
            errors[k] = repr(e)

    started = time.monotonic()
    threads = [threading.Thread(target=one, args=(k,), daemon=True) for k in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    elapsed = time.monotonic() - started
    correct = sum(outcomes.values())
    print(f"\n{n_clients} concurrent clients x {per_client} tasks: {correct} all correct, "
          f"{len(outcomes) - correct} wrong, {len(errors)} failed {list(errors.items())[:3]}; {elapsed:.1f}s")
    assert not any(t.is_alive() for t in threads)
    assert not errors
    assert correct == n_clients
    assert stack.scheduler.count("client connected") == n_clients
