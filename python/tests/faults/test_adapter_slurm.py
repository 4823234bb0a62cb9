"""The Slurm worker adapter (``scaler_worker_adapter_slurm``) against a real single-host Slurm.

slurm_cluster.py starts ``slurmctld`` + ``slurmd`` (Debian's slurm-wlm, installed by .ci/setup) in a
temporary directory for this module and stops them afterwards; where Slurm cannot start, every test
here is skipped with the reason. The machine's CPUs are the node's, one CPU per job, so with
--max-jobs 3 on a 2-core machine one job waits in Slurm's queue: pending jobs count toward the limit.

- A scheduler with --adapter-webhook-url to the adapter, no cluster: a client maps 200 tasks of 50 ms;
  jobs appear in squeue, every result is right, --max-jobs is never exceeded (squeue sampled all along),
  and after the load every job is gone from squeue. Prints the time from the first task to the first
  result (a job submitted, scheduled and started by Slurm, its workers connected).
- ``scancel`` of a running job mid-map, as a node failure or preemption would end it: no task lost, the
  adapter frees the slot, the scheduler gets a new job.
- A worker agent killed inside a running job: the job's cluster starts a new one (new id), which names
  the dead one's id as its slot, so the scheduler keeps the group (no "its workers are gone" shutdown of
  a job that works) and lists the new id in it; every result is right.
- The API on Slurm's jobs: ids equal the workers' ids, 429 at --max-jobs with a job pending, shutdown =
  scancel, stopping the adapter cancels every job it submitted.
"""

import os
import re
import signal
import time

import pytest

from .harness import HOST, Adapter, Background, children, cmdline, free_port, is_agent, scheduler_ports, wait_until
from .slurm_cluster import SlurmCluster, SlurmUnavailable


def slow_double(x):
    time.sleep(0.05)
    return 2 * x


def slower_double(x):
    time.sleep(0.2)
    return 2 * x


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    cluster = SlurmCluster(str(tmp_path_factory.mktemp("slurm")))
    try:
        cluster.start()
    except SlurmUnavailable as e:
        pytest.skip(f"no Slurm to test against: {e}")
    try:
        yield cluster
    finally:
        cluster.stop()


_names = iter(range(1, 1000))


def start_pair(stack, slurm, tmp_path, *adapter_args, webhook=True, scheduler_args=()):
    """A scheduler (with --adapter-webhook-url to the adapter unless webhook=False) and a
    ``worker_adapter_slurm`` beside it, with SLURM_CONF, a job name of its own, job output in tmp_path."""
    sport, aport = scheduler_ports(), free_port(1)
    # A short idle time: the tests wait for every job to leave squeue once the load ends.
    extra = ["--adapter-webhook-url", f"http://{HOST}:{aport}/", "--adapter-idle-seconds", "2"] if webhook else []
    scheduler = stack.start_scheduler(*extra, "-wt", "10", *scheduler_args, port=sport)
    job_name = f"scalertest{os.getpid()}x{next(_names)}"
    stack.env["SLURM_CONF"] = slurm.conf
    argv = [stack.binary, "worker_adapter_slurm", f"tcp://{HOST}:{sport}",
            "--adapter-web-host", HOST, "--adapter-web-port", str(aport),
            "--job-name", job_name, "--job-output", str(tmp_path / "job-%j.out"),
            "--cpus-per-job", "1", "--poll-seconds", "1", "-hi", "1", *adapter_args]
    adapter = stack._add(Adapter(stack, "adapter", argv, aport))
    adapter.job_name = job_name
    adapter.start()
    return scheduler, adapter


class QueueSampler(Background):
    """Samples squeue for the adapter's jobs every 0.2 s: the most listed at once, every id seen."""

    def __init__(self, slurm, prefix):
        self.slurm, self.prefix = slurm, prefix
        self.max_jobs, self.seen, self.samples = 0, set(), 0
        self.running_seen = set()
        super().__init__()

    def step(self):
        try:
            jobs = self.slurm.jobs(self.prefix)
        except Exception:
            jobs = None
        if jobs is not None:
            self.samples += 1
            self.max_jobs = max(self.max_jobs, len(jobs))
            self.seen |= set(jobs)
            self.running_seen |= {j for j, s in jobs.items() if s == "RUNNING"}
        self._stop.wait(0.2)


@pytest.mark.parametrize("relay", [False, True], ids=["direct", "relay"])
def test_map_through_slurm(stack, slurm, tmp_path, relay):
    # With --relay every job's cluster carries its workers' messages over one connection.
    scheduler, adapter = start_pair(stack, slurm, tmp_path, "--max-jobs", "3", *(["--relay"] if relay else []))
    sampler = QueueSampler(slurm, adapter.job_name)
    try:
        with stack.client() as client:
            t0 = time.monotonic()
            futures = [client.submit(slow_double, i) for i in range(200)]
            first = None
            for i, f in enumerate(futures):
                assert f.result(timeout=120) == 2 * i
                if first is None:
                    first = time.monotonic() - t0
            total = time.monotonic() - t0
        wait_until(lambda: not slurm.jobs(adapter.job_name), 90, "every job to leave squeue after the load")
    finally:
        sampler.stop()
    pended = re.search(r"Slurm job running after=(\d+)", adapter.log())
    print(f"\nslurm: 200 x 50 ms tasks in {total:.1f} s; first result after {first:.2f} s "
          f"(first job seen RUNNING {int(pended.group(1)) / 1000 if pended else float('nan'):.1f} s after sbatch, "
          f"to a 1 s poll); {len(sampler.seen)} jobs, at most {sampler.max_jobs} listed at once "
          f"({sampler.samples} squeue samples)")
    submitted = set(re.findall(r"submitted Slurm job .*job=(\d+)", adapter.log()))
    assert sampler.seen, "no job of the adapter ever showed in squeue"
    assert sampler.seen <= submitted, (sampler.seen, submitted)
    assert sampler.max_jobs <= 3, f"--max-jobs 3 exceeded: {sampler.max_jobs} jobs listed at once"
    # Every group the scheduler started, it shut down (idle) once the load ended.
    started = scheduler.count("scaling: started worker group")
    assert started == len(submitted)
    wait_until(lambda: scheduler.count("scaling: shut down worker group") >= started, 60, "every group shut down")
    # Shut down while running, a job's cluster got SIGTERM alone and stopped its workers in order: no
    # processor killed under a live worker, no error in the job's output.
    outputs = {p.name: p.read_text() for p in tmp_path.glob("job-*.out")}
    ran = {name: text for name, text in outputs.items() if "cluster started" in text}
    assert ran, outputs
    for name, text in ran.items():
        assert "cluster stopped" in text and "stopped: signal" in text and "[EROR]" not in text, (name, text)
        assert ("relay: the workers here reach the scheduler over one connection" in text) == relay, (name, text)


@pytest.mark.parametrize("how", [
    [],  # scancel: SIGTERM, the workers disconnect, their tasks are re-placed at once
    # SIGKILL to every process of the job, as a node failure ends it: the workers vanish without a
    # word, and the scheduler drops them after its worker timeout (-wt 10 here).
    ["--signal=KILL", "--full"],
], ids=["scancel", "scancel-signal-KILL"])
def test_scancel_of_a_running_job_loses_no_task(stack, slurm, tmp_path, how):
    scheduler, adapter = start_pair(stack, slurm, tmp_path, "--max-jobs", "2")
    sampler = QueueSampler(slurm, adapter.job_name)
    victim = None
    try:
        with stack.client() as client:
            futures = [client.submit(slower_double, i) for i in range(120)]
            # Some results came back through a running job: cancel that job, as Slurm would end it
            # on a node failure or preemption (its workers get SIGTERM, then SIGKILL).
            wait_until(lambda: sum(f.done() for f in futures) >= 10, 90, "10 results through Slurm")
            running = [j for j, s in slurm.jobs(adapter.job_name).items() if s == "RUNNING"]
            assert running, slurm.jobs(adapter.job_name)
            victim = running[0]
            slurm.run("scancel", *how, victim)
            results = [f.result(timeout=120) for f in futures]
        assert results == [2 * i for i in range(120)]
        # The job left the queue, its slot is free and the scheduler reaped its group. Who notices
        # first varies: the adapter's squeue poll ("Slurm ended the job by itself"), or the scheduler
        # seeing the workers gone and shutting the group down (a scancel of the ending job).
        wait_until(lambda: victim not in slurm.jobs(adapter.job_name), 60, "the cancelled job to leave squeue")
        wait_until(lambda: scheduler.count(f"shut down worker group group=slurm-{victim} ") > 0
                   and any(f"job={victim}" in line for line in adapter.log_lines("slot is free")), 60,
                   "the scheduler to reap the group and the adapter to free its slot")
        wait_until(lambda: not slurm.jobs(adapter.job_name), 90, "every job to leave squeue after the load")
    finally:
        sampler.stop()
    assert victim in sampler.seen
    assert sampler.max_jobs <= 2, f"--max-jobs 2 exceeded: {sampler.max_jobs}"
    print(f"\nslurm: job {victim} cancelled mid-map; {len(sampler.seen)} jobs in all, at most {sampler.max_jobs} at once")


def job_agents(port):
    """The worker agents of the Slurm jobs whose cluster connects to the scheduler on port."""
    clusters = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                if "cluster" in cmdline(pid)[1:2] and f"tcp://{HOST}:{port}" in cmdline(pid)]
    return [c for pid in clusters for c in children(pid) if is_agent(c)]


def test_a_worker_restarted_inside_a_job_keeps_its_group(stack, slurm, tmp_path):
    scheduler, adapter = start_pair(stack, slurm, tmp_path, "--max-jobs", "1", "-wpj", "1")
    sampler = QueueSampler(slurm, adapter.job_name)
    try:
        with stack.client() as client:
            futures = [client.submit(slower_double, i) for i in range(40)]
            wait_until(lambda: sum(f.done() for f in futures) >= 3, 90, "3 results through Slurm")
            agents = job_agents(scheduler.port)
            assert len(agents) == 1, agents
            first_id = re.search(r"worker connected .*worker=(\S+)", "\n".join(scheduler.log_lines("worker connected")))
            assert first_id, scheduler.log()
            os.kill(agents[0], signal.SIGKILL)
            wait_until(lambda: scheduler.count(f"in_place_of={first_id.group(1)} ") > 0, 60,
                       "the restarted worker to register in the dead one's place")
            results = [f.result(timeout=120) for f in futures]
        assert results == [2 * i for i in range(40)]
        gone = scheduler.log_lines("its workers are gone")
        assert not gone, gone  # the group of the working job was kept
        wait_until(lambda: not slurm.jobs(adapter.job_name), 90, "every job to leave squeue after the load")
    finally:
        sampler.stop()
    assert len(sampler.seen) == 1, f"the job was replaced: {sorted(sampler.seen)}"
    restarted = [line for line in scheduler.log_lines("worker connected") if "in_place_of=" in line]
    print(f"\nslurm: agent killed in job {sorted(sampler.seen)[0]}; its replacement: {restarted[0].split('worker=')[-1]}")


def test_api_on_slurm_jobs_and_stop_cancels_every_job(stack, slurm, tmp_path):
    # No webhook: the test drives the adapter itself. Two CPUs on this node (or whatever it has):
    # with --max-jobs one more than the CPUs, the last job stays pending.
    cpus = slurm.cpus
    scheduler, adapter = start_pair(stack, slurm, tmp_path, "--max-jobs", str(cpus + 1), "-wpj", "1", webhook=False)
    groups = []
    for _ in range(cpus + 1):
        status, body = adapter.start_group()
        assert status == 200, body
        assert re.match(r"^slurm-\d+$", body["worker_group_id"]), body
        job = body["worker_group_id"][len("slurm-"):]
        assert len(body["worker_ids"]) == 1
        assert re.match(rf"^{job}\|Worker\|slurm-{job}-0\|[0-9a-f]{{32}}$", body["worker_ids"][0]), body
        groups.append(body)
    jobs = slurm.jobs(adapter.job_name)
    assert set(jobs) == {g["worker_group_id"][len("slurm-"):] for g in groups}, jobs
    # At the limit, with a job pending or not, nothing more is submitted.
    assert adapter.start_group() == (429, {"error": f"Maximum number of Slurm jobs ({cpus + 1}) reached."})
    assert len(slurm.jobs(adapter.job_name)) == cpus + 1
    # The ids returned are the ids the workers register with.
    first = groups[0]
    wait_until(lambda: scheduler.count(first["worker_ids"][0]) > 0, 60, "the first job's worker to connect")
    assert adapter.shutdown_group("slurm-0") == (404, {"error": "Worker group with ID slurm-0 does not exist."})
    # Shutdown = scancel: the job leaves squeue and its worker disconnects cleanly.
    assert adapter.shutdown_group(first["worker_group_id"]) == (200, {"status": "Worker group shutdown"})
    wait_until(lambda: first["worker_group_id"][len("slurm-"):] not in slurm.jobs(adapter.job_name), 60, "the job to leave")
    job_out = tmp_path / f"job-{first['worker_group_id'][len('slurm-'):]}.out"
    wait_until(lambda: "cluster stopped" in job_out.read_text(), 30, "the job's cluster to stop")
    assert "stopped: signal" in job_out.read_text()
    # Its slot is free once squeue no longer lists it.
    wait_until(lambda: adapter.start_group()[0] == 200, 30, "a start in the freed slot")
    assert len(slurm.jobs(adapter.job_name)) == cpus + 1
    # Stopping the adapter cancels every job it submitted.
    assert adapter.stop(timeout=60) == 0
    assert not slurm.jobs(adapter.job_name), slurm.jobs(adapter.job_name)
    assert adapter.count("every Slurm job of the adapter has left the queue") == 1


@pytest.mark.parametrize("start_timeout", [3, 120])
def test_a_pending_job_and_the_start_timeout(stack, slurm, tmp_path, start_timeout):
    """A job that waits in Slurm's queue longer than the scheduler's --adapter-start-timeout-seconds is
    reaped (cancelled) and submitted again, losing its place in the queue; a longer timeout keeps it."""
    # Every CPU of the node taken by a job of someone else: the adapter's job pends.
    blocker = slurm.run("sbatch", "--parsable", f"--cpus-per-task={slurm.cpus}", "--job-name=blocker",
                        "--output=/dev/null", "--wrap", "sleep 300").strip().split(";")[0]
    try:
        wait_until(lambda: slurm.jobs("blocker").get(blocker) == "RUNNING", 30, "the blocker to run")
        scheduler, adapter = start_pair(stack, slurm, tmp_path, "--max-jobs", "1",
                                        scheduler_args=("--adapter-start-timeout-seconds", str(start_timeout)))
        with stack.client() as client:
            futures = [client.submit(slow_double, i) for i in range(5)]
            wait_until(lambda: "PENDING" in slurm.jobs(adapter.job_name).values(), 30, "a pending job")
            submitted = lambda: adapter.count("submitted Slurm job")  # noqa: E731
            if start_timeout < 10:
                wait_until(lambda: submitted() >= 2, 30, "the pending job to be reaped and submitted again")
                assert scheduler.count("did not all connect") >= 1
            else:
                time.sleep(8)
                assert submitted() == 1, adapter.log()
                assert "PENDING" in slurm.jobs(adapter.job_name).values()
            slurm.run("scancel", blocker)
            assert [f.result(timeout=90) for f in futures] == [2 * i for i in range(5)]
    finally:
        slurm.run("scancel", blocker, check=False)
