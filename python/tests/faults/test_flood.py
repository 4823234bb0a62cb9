"""Issue 12 points 1 and 2: a flood of well-framed bogus messages stalls nobody and floods no log.

A raw DEALER sends 200 messages of the kinds peers send to the scheduler, with random ids and
values (harness.random_message), and 1,800 frames of a valid kind byte followed by a random msgpack
body, while a normal client runs 200-task maps; a second one does the same after registering as a
worker (so that it is given tasks first). Before the fix the bogus peer registered as a
worker (and was given tasks it never answered), its Tasks naming objects that do not exist were
routed to the real workers (whose processors then waited for those objects forever), and every
dropped message had its own warning line. Now the map finishes in under 5 s during and after the
flood, and the scheduler logs a handful of counted lines.
"""

import os
import random
import threading
import time

import msgpack

from scaler import protocol as p

from .harness import TO_SCHEDULER, long_form, random_message

MAP_SIZE = 200
LIMIT_S = 5.0


def random_body(rng: random.Random) -> bytes:
    """A valid kind byte and a random msgpack body: maps of real or made-up field names, or other values."""
    cls = rng.choice(TO_SCHEDULER)
    names = [name for name, _ in cls.FIELDS] + ["zz", "task_id"]

    def value(depth=0):
        pick = rng.randint(0, 7 if depth < 2 else 4)
        if pick == 0:
            return rng.randint(-2 ** 40, 2 ** 40)
        if pick == 1:
            return bytes(rng.getrandbits(8) for _ in range(rng.choice((0, 16, 32, rng.randint(0, 64)))))
        if pick == 2:
            return "".join(rng.choice("ab|01") for _ in range(rng.randint(0, 8)))
        if pick == 3:
            return rng.random() < 0.5
        if pick == 4:
            return None
        if pick == 5:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        return {rng.choice(names): value(depth + 1) for _ in range(rng.randint(0, 4))}

    if rng.random() < 0.8:
        body = {rng.choice(names): value() for _ in range(rng.randint(0, len(names)))}
    else:
        body = value()
    return bytes((cls.KIND,)) + msgpack.packb(body, use_bin_type=True)


def run_map(client, give_up: float = 30.0) -> float:
    """Seconds for MAP_SIZE tasks submitted at once; AssertionError if they take over give_up s."""
    start = time.monotonic()
    futures = [client.submit(pow, x, 2) for x in range(MAP_SIZE)]  # a builtin: nothing to import in the processor
    done = 0
    try:
        for x, future in enumerate(futures):
            assert future.result(timeout=max(0.1, start + give_up - time.monotonic())) == x * x
            done += 1
    except TimeoutError:
        for future in futures:
            future.cancel()
        raise AssertionError(f"only {done} of {MAP_SIZE} tasks done after {give_up:.0f} s")
    return time.monotonic() - start


def test_flood_stalls_nobody(stack):
    rounds = long_form(1, 5)
    # Default worker timeout (60 s): a bogus worker holding tasks would stall the map far longer
    # than the 5 s allowed.
    stack.start_scheduler()
    stack.start_cluster(2)
    client = stack.client(timeout_seconds=30)
    baseline = run_map(client)

    seed = int(os.environ.get("SCALER_FLOOD_SEED", "12"))
    bogus_worker = f"{os.getpid()}|Worker|bogus|{random.Random(seed).getrandbits(64):x}"
    sent = {"valid kinds": 0, "random bodies": 0}  # by both flooders
    stop = threading.Event()

    def flood(as_worker: bool):
        # Each flooder its own generator: the sequence each one sends is fixed by the seed, whatever
        # the threads' interleaving.
        rng = random.Random(seed * 2 + as_worker)
        if as_worker:
            # Registers as a worker first (it is given tasks of the running map), then sprays.
            peer = stack.raw_peer(identity=bogus_worker.encode())
            peer.send(p.WorkerHeartbeat(queue_size=50, task_lock=True))
            time.sleep(0.3)
        else:
            peer = stack.raw_peer()
        for _ in range(rounds):
            frames = [("valid kinds", p.encode(random_message(rng))) for _ in range(200)]
            frames += [("random bodies", random_body(rng)) for _ in range(1800)]
            rng.shuffle(frames)
            for i, (what, frame) in enumerate(frames):
                if stop.is_set():
                    return
                peer.send_raw(frame)
                sent[what] += 1
                if i % 100 == 0:
                    time.sleep(0.05)  # spread over about a second: the map runs meanwhile

    flooders = [threading.Thread(target=flood, args=(as_worker,), daemon=True) for as_worker in (False, True)]
    for f in flooders:
        f.start()
    during_all = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # maps one after the other for as long as the flood lasts
        during_all.append(run_map(client))
        if not any(f.is_alive() for f in flooders):
            break
    stop.set()
    for f in flooders:
        f.join(10)
    assert not any(f.is_alive() for f in flooders), "the flood did not finish within 60 s"
    during = max(during_all)
    after = run_map(client)
    time.sleep(1.5)  # let the last counted drops be logged (at most once a second)

    log = stack.scheduler.log_lines()
    warn = [line for line in log if "WARN" in line]
    counted = [line for line in log if "dropped or refused messages from peers" in line]
    malformed = [line for line in log if "dropped malformed messages" in line]
    evicted = [line for line in log if "worker sent a client's message" in line]
    # The bogus worker leaves at its first client message, or earlier by a message of its own
    # flood that is legitimate for a worker (its own DisconnectRequest, say): either way, once.
    removals = ("worker sent a client's message", "worker disconnected", "worker connection closed",
                "worker unreachable", "worker timed out")
    removed = [line for line in log if bogus_worker in line and any(r in line for r in removals)]
    print(f"\nflood (seed {seed}): {sent['valid kinds']} messages of valid kinds, {sent['random bodies']} random bodies")
    print(f"map of {MAP_SIZE}: {baseline:.2f} s before, {len(during_all)} maps during the flood (slowest "
          f"{during:.2f} s), {after:.2f} s after")
    print(f"scheduler log: {len(warn)} warning lines ({len(counted)} counted-drop lines, "
          f"{len(malformed)} malformed-frame lines), {len(log)} lines in all")
    print(f"bogus worker removed {len(removed)} time(s), {len(evicted)} for sending a client's message")
    for line in warn[:20]:
        print("  " + line[:200])
    assert during < LIMIT_S, f"map took {during:.1f} s during the flood"
    assert after < LIMIT_S, f"map took {after:.1f} s after the flood"
    # One line per reason per second at most: 11 reasons, a flood of a few seconds.
    assert len(warn) <= 40 * rounds, f"{len(warn)} warning lines for {sum(sent.values())} bogus messages"
    assert len(removed) == 1, f"the peer that registered as a worker and then sprayed was removed {len(removed)} times"
