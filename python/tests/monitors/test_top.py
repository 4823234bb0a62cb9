"""scaler_top in a real terminal (tmux) against a real scheduler, two workers and a workload.

Each test starts a private tmux server with a 200x50 shell, types the scaler_top command line into
it, and reads the screen with capture-pane, polling with generous deadlines (the machine is shared).
The stack is real: ``scheduler`` and ``cluster -n 2`` of our binary with Python processors, and a
client in a subprocess that maps short tasks in a loop.
"""

import re
import time

from faults.harness import HOST, scheduler_ports, wait_until

WORKLOAD = r"""
import sys, time
from scaler import Client

def work(x):
    time.sleep(0.01)
    return x

with Client(sys.argv[1], timeout_seconds=60) as client:
    print("workload running", flush=True)
    while True:
        client.map(work, [(i,) for i in range(50)])
"""

# The sort shortcuts (upstream 1.12.5's set, F included) and the column each marks.
SORT_KEYS = {"g": "group", "n": "worker", "C": "agt_cpu", "M": "agt_rss", "c": "cpu", "m": "rss",
             "F": "rss_free", "f": "free", "w": "sent", "d": "queued", "s": "suspended", "l": "lag"}
TEXT_COLUMNS = {"group", "worker"}  # first press: ascending; numbers: descending

BYTES = {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50, "E": 1 << 60}
SECONDS = [("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400), ("y", 365 * 86400)]


def value(column: str, cell: str) -> float:
    """The number a formatted cell stands for (the formatters are monotonic, so order survives)."""
    c = cell.replace(",", "").replace("+", "")
    if c.endswith("%"):
        return float(c[:-1])
    if column == "lag":
        for suffix, scale in SECONDS:
            if c.endswith(suffix):
                return float(c[: -len(suffix)]) * scale
    if c and c[-1] in BYTES:
        return float(c[:-1]) * BYTES[c[-1]]
    return float(c)


def worker_table(screen: str):
    """(header names, rows as dicts) of the worker table; the clients are right of ' | '."""
    lines = screen.splitlines()

    def workers_part(line):  # rows without a client end in " |"
        return re.split(r" \|(?: |$)", line)[0]

    for i, line in enumerate(lines):
        left = workers_part(line)
        if re.match(r"\[?group\]? ", left) and "agt_cpu" in left:
            header = left.split()
            names = [h.strip("[]") for h in header]
            rows = []
            for r in lines[i + 1:]:
                cells = workers_part(r).split()
                if len(cells) == len(names) - 1:  # no group: the column is blank
                    cells = [""] + cells
                if len(cells) != len(names):
                    break
                rows.append(dict(zip(names, cells)))
            return header, rows
    return None, []


def marked(header) -> list:
    return [h[1:-1] for h in header if h.startswith("[") and h.endswith("]")]


def success_count(screen: str) -> int:
    m = re.search(r"\bSuccess\s+([\d,]+)", screen)
    return int(m.group(1).replace(",", "")) if m else -1


def clock_seconds(hms: str) -> int:
    h, m, s = map(int, hms.split(":"))
    return h * 3600 + m * 60 + s


def wait_screen(tmux, cond, what: str, timeout: float = 30.0, stable: bool = False) -> str:
    """Poll capture-pane until cond(screen); the last screen goes into the failure message.

    With stable, the screen must also be the same in two captures 0.15 s apart: one capture can
    catch a frame half drawn, rows of the new frame mixed with rows of the old one."""
    last = [""]

    def check():
        last[0] = tmux.screen()
        if not cond(last[0]):
            return False
        if not stable:
            return True
        time.sleep(0.15)
        again = tmux.screen()
        same = again == last[0]
        last[0] = again
        return same

    try:
        wait_until(check, timeout, what, interval=0.1)
    except AssertionError as e:
        raise AssertionError(f"{e}; screen:\n{last[0]}") from None
    return last[0]


def exited(screen: str):
    """The shell's line after top returned (the typed command line also says "top exited")."""
    return re.search(r"^top exited \d+$", screen, re.M)


def two_workers(screen: str) -> bool:
    _, rows = worker_table(screen)
    return "with 2 worker(s)" in screen and len(rows) == 2


def start_top(tmux, binary: str, monitor: str, *args: str) -> None:
    tmux.type(f"{binary} top {monitor} {' '.join(args)}; echo \"top exited $?\"", enter=True)


def start_stack(stack):
    port = scheduler_ports()
    sched = stack.start_scheduler(port=port)
    cluster = stack.start_cluster(2, "-hi", "1")
    return port, sched, cluster


def test_top_shows_the_cluster_sorts_and_quits(stack, tmux):
    port = scheduler_ports()
    monitor = f"tcp://{HOST}:{port + 2}"
    start_top(tmux, stack.binary, monitor)
    # Nothing listens yet: top waits instead of dying.
    wait_screen(tmux, lambda s: f"waiting for the scheduler at {monitor}" in s, "the waiting message")
    assert tmux.alternate_on()

    stack.start_scheduler(port=port)
    stack.start_cluster(2, "-hi", "1")
    workload = stack.start_python("workload", WORKLOAD, stack.address, wait_for_line="workload running")
    screen = wait_screen(tmux, lambda s: two_workers(s) and success_count(s) > 0, "both workers and finished tasks")
    assert f"scaler_top {monitor}  updated" in screen
    for part in ("scheduler", "object_manager", "task_manager", "scheduler_sent", "scheduler_received",
                 "num_of_objs", "Shortcuts:", "rss_free[F]"):
        assert part in screen, part

    # Task counts grow between two captures.
    first = success_count(screen)
    wait_screen(tmux, lambda s: success_count(s) > first, "the Success count to grow")

    # The workload's client is listed with its tasks (it always has some unfinished).
    wait_screen(tmux, lambda s: re.search(rf"\| {workload.pid}\|\S+\s+[\d,]+", s), "the client row")

    # Worker ids are told apart by their tail: the shared pid prefix is not all that is shown.
    _, rows = worker_table(screen)
    labels = [r["worker"] for r in rows]
    assert len(set(labels)) == 2, labels

    for key, column in SORT_KEYS.items():
        for press, descending in ((1, column not in TEXT_COLUMNS), (2, column in TEXT_COLUMNS)):
            tmux.type(key)
            order = "descending" if descending else "ascending"
            # The order is checked on a settled frame only (see wait_screen).
            screen = wait_screen(
                tmux, lambda s: f"Sorted by {column}, {order}" in s and two_workers(s),
                f"{key} (press {press}) to sort by {column}, {order}", timeout=20, stable=True)
            header, rows = worker_table(screen)
            assert marked(header) == [column], header
            if column in TEXT_COLUMNS:
                got = [r[column] for r in rows]
            else:
                got = [value(column, r[column]) for r in rows]
            assert got == sorted(got, reverse=descending), (key, press, got, screen)

    # On a terminal narrower than the table, the numbers scroll by whole columns (→, End, ←,
    # Home) while the group and worker columns stay, and the total line says what shows.
    tmux.resize(80, 50)

    def header_line(screen):
        return next((line for line in screen.splitlines() if re.match(r"\[?group\]? +\[?worker", line)), "")

    screen = wait_screen(tmux, lambda s: "columns 3-" in s and "of 15, ←/→ scroll" in s,
                         "the scroll hint at 80 columns", timeout=10)
    assert "ITL" not in header_line(screen), screen
    tmux.key("End")
    screen = wait_screen(tmux, lambda s: header_line(s).rstrip().endswith("ITL") and "of 15, ←/→ scroll" in s,
                         "the last columns after End", timeout=10)
    assert "agt_cpu" not in header_line(screen) and "worker" in header_line(screen), screen
    tmux.key("Left")
    wait_screen(tmux, lambda s: not header_line(s).rstrip().endswith("ITL"), "one column back after Left", timeout=10)
    tmux.key("Home")
    wait_screen(tmux, lambda s: "agt_cpu" in header_line(s) and "columns 3-" in s, "the first columns after Home",
                timeout=10)

    # A resize redraws: too small says so, and the table comes back when the room does.
    tmux.resize(40, 12)
    wait_screen(tmux, lambda s: "too small" in s and "Shortcuts:" not in s, "the too-small message", timeout=10)
    tmux.resize(200, 50)
    wait_screen(tmux, two_workers, "the table after growing again", timeout=10)

    tmux.type("q")
    # The shell prints the prompt a moment after the echo: wait for both.
    screen = wait_screen(tmux, lambda s: exited(s) and s.rstrip().endswith("$"), "top to exit after q, and the prompt",
                         timeout=15)
    assert exited(screen).group(0) == "top exited 0"
    # The terminal is restored: top's screen is gone, the shell prompt is back.
    assert not tmux.alternate_on()
    assert "Shortcuts:" not in screen


def test_top_survives_a_scheduler_restart(stack, tmux):
    port, sched, _ = start_stack(stack)
    monitor = f"tcp://{HOST}:{port + 2}"
    stack.start_python("workload", WORKLOAD, stack.address, wait_for_line="workload running")
    start_top(tmux, stack.binary, monitor, "-t", "2")
    screen = wait_screen(tmux, lambda s: two_workers(s) and success_count(s) > 0, "both workers and finished tasks")

    sched.kill()
    sched.wait_exit(10)
    killed = time.localtime()
    stopped = re.compile(rf"feed stopped: nothing from {re.escape(monitor)} since (\d\d:\d\d:\d\d) \((\d+)s ago\)")
    screen = wait_screen(tmux, lambda s: stopped.search(s), "the outage on the status line")
    since = stopped.search(screen).group(1)
    # The time shown is that of the last update: at most a few seconds before the kill.
    kill_s = killed.tm_hour * 3600 + killed.tm_min * 60 + killed.tm_sec
    assert 0 <= (kill_s - clock_seconds(since)) % 86400 <= 5, (since, time.strftime("%H:%M:%S", killed))
    # The last data stays on screen.
    assert two_workers(screen)

    # The same scheduler again, on the same ports: top picks it up by itself.
    sched.start()
    screen = wait_screen(tmux, lambda s: f"scaler_top {monitor}  updated" in s and "feed came back" in s
                         and two_workers(s), "top to recover with both workers", timeout=60)
    assert not stopped.search(screen)

    tmux.key("C-c")
    screen = wait_screen(tmux, exited, "top to exit after Ctrl-C", timeout=15)
    assert exited(screen).group(0) == "top exited 0"
    assert not tmux.alternate_on()
