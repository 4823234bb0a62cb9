"""Issue 12 point 8 (first half): a peer acts only for itself.

Worker ids are on the monitor (and in the log), task ids on the monitor. Before the fix any peer
could send DisconnectRequest{worker = <a real worker>} and the scheduler removed that worker; a Task
whose source named another client was accepted for that client; a TaskCancel of another client's
task cancelled it. Now the identity is the ROUTER's routing frame: such messages are refused,
counted and logged once a second per reason.
"""

import re
import time

from scaler import protocol as p
from scaler.io.ids import new_object_id, new_task_id

from .harness import wait_until


# Defined as if in __main__ so that it is pickled by value (this module is not importable in a
# processor): it marks that it runs, then sleeps.
_ns = {"__name__": "__main__"}
exec("def marked_sleep(path, seconds):\n    import time\n    open(path, 'w').write('x')\n"
     "    time.sleep(seconds)\n    return seconds\n", _ns)
marked_sleep = _ns["marked_sleep"]


def real_worker_id(stack) -> bytes:
    line = wait_until(lambda: stack.scheduler.log_lines("worker connected"), 30, "a worker to connect")[0]
    return re.search(r"worker=(\S+)", line).group(1).encode()


def answer(peer, task_id: bytes, timeout: float = 5.0):
    """The first TaskResult or TaskCancelConfirm for task_id that peer receives within timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = peer.recv(max(0.05, deadline - time.monotonic()))
        if isinstance(m, (p.TaskResult, p.TaskCancelConfirm)) and m.task_id == task_id:
            return m
    return None


def test_impersonation_refused(stack, tmp_path):
    stack.start_scheduler()
    stack.start_cluster(1)
    victim_worker = real_worker_id(stack)

    # 1. DisconnectRequest naming the real worker: from a peer that is nothing yet, from a
    # registered client, and from a peer registered as a worker (which then leaves for itself).
    stranger = stack.raw_peer()
    stranger.send(p.DisconnectRequest(worker=victim_worker))
    client_peer = stack.raw_peer()
    client_peer.send(p.ClientHeartbeat())
    assert isinstance(client_peer.recv(10), p.ClientHeartbeatEcho)
    client_peer.send(p.DisconnectRequest(worker=victim_worker))
    fake = stack.raw_peer(identity=b"1|Worker|fake|" + new_task_id().hex().encode())
    fake.send(p.WorkerHeartbeat(queue_size=1))
    assert isinstance(fake.recv(10), p.WorkerHeartbeatEcho)
    fake.send(p.DisconnectRequest(worker=victim_worker))
    fake.send(p.DisconnectRequest(worker=fake.identity))  # its own: accepted
    assert wait_until(lambda: any(isinstance(m, p.DisconnectResponse) and m.worker == fake.identity
                                  for m in fake.recv_all(0.2)), 10, "the fake worker's own DisconnectResponse")

    with stack.client(timeout_seconds=30) as client:
        # 2. A Task whose source is the real client, sent by another peer: refused at once.
        forged = new_task_id()
        fn = new_object_id(client_peer.identity)
        sent = time.monotonic()
        client_peer.send(p.Task(task_id=forged, source=client._identity, func_object_id=fn))
        refusal = answer(client_peer, forged)
        refused_in = time.monotonic() - sent

        # 3. A cancel of the real client's running task by another peer: not found for it.
        marker = tmp_path / "running"
        running = client.submit(marked_sleep, str(marker), 2)
        wait_until(marker.exists, 30, "the client's task to run")
        client_peer.send(p.TaskCancel(task_id=running.task_id, force=True))
        cancel_answer = answer(client_peer, running.task_id)
        assert running.result(timeout=30) == 2  # it ran to the end

        # The real worker is still there and serves the client at once.
        start = time.monotonic()
        assert client.submit(pow, 3, 3).result(timeout=10) == 27
        served_in = time.monotonic() - start

    time.sleep(1.5)  # counted refusals are logged at most once a second
    removed = stack.scheduler.count(f"worker disconnected worker={victim_worker.decode()}")
    fake_left = stack.scheduler.count("worker disconnected worker=1|Worker|fake|")
    refused_lines = stack.scheduler.log_lines("dropped or refused messages from peers")
    counts = {}
    for line in refused_lines:
        reason = re.search(r'reason="([^"]+)"', line).group(1)
        counts[reason] = counts.get(reason, 0) + int(re.search(r"count=(\d+)", line).group(1))
    print(f"\nreal worker {victim_worker.decode()}: removed {removed} times by 3 forged DisconnectRequests "
          f"(the fake worker's own request removed it {fake_left} time)")
    print(f"forged Task: {refusal and p.TaskResultType(refusal.type).name} in {refused_in:.3f} s: "
          f"{refusal and refusal.message!r}")
    print(f"forged cancel answered {cancel_answer and p.TaskCancelConfirmType(cancel_answer.type).name}; "
          f"the task ran to its end; next task served in {served_in:.2f} s")
    print(f"refusals logged in {len(refused_lines)} lines: {counts}")

    assert removed == 0, "a forged DisconnectRequest removed the real worker"
    assert fake_left == 1
    assert refusal is not None and refusal.type == p.TaskResultType.Rejected, "forged Task not refused"
    assert "another client" in refusal.message
    assert cancel_answer is not None and cancel_answer.type == p.TaskCancelConfirmType.CancelNotFound
    # the stranger's and the fake worker's DisconnectRequest, the Task, the TaskCancel
    assert counts.get("claims another peer's identity", 0) == 4
    assert counts.get("message of the other role (client vs worker)", 0) >= 1  # the client's DisconnectRequest
    assert len(refused_lines) <= 6
