"""Capabilities: a task asking for {"gpu": 1} runs only on a worker that offers "gpu"."""
import socket

from scaler import Client, Cluster, SchedulerClusterCombo
from scaler.scheduler.allocate_policy.allocate_policy import AllocatePolicy


def where(kind):
    return f"{kind} task ran on a worker of {socket.gethostname()}"


def main():
    cluster = SchedulerClusterCombo(n_workers=2, allocate_policy=AllocatePolicy.capability, logging_level="WARNING")
    gpu_cluster = Cluster(
        address=cluster.get_address(),
        worker_names=["gpu_worker"],
        per_worker_capabilities={"gpu": -1},
        logging_level="WARNING",
    )
    gpu_cluster.start()
    with Client(address=cluster.get_address()) as client:
        print("Submitting tasks...")
        gpu_future = client.submit_verbose(where, args=("gpu",), kwargs={}, capabilities={"gpu": 1})
        cpu_future = client.submit_verbose(where, args=("cpu",), kwargs={}, capabilities={})
        print(gpu_future.result(timeout=60))
        print(cpu_future.result(timeout=60))
    gpu_cluster.stop()
    cluster.shutdown()


if __name__ == "__main__":
    main()
