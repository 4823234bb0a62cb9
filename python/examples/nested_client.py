"""Recursive Fibonacci where every call is a task submitted from inside a task (prints 21).

Runs on one worker: a task submitted from inside a task gets a higher priority, and the worker
suspends the parent's processor to run it, so the recursion cannot deadlock.
"""
from scaler import Client, SchedulerClusterCombo


def fibonacci(client: Client, n: int):
    if n == 0:
        return 0
    elif n == 1:
        return 1
    a = client.submit(fibonacci, client, n - 1)
    b = client.submit(fibonacci, client, n - 2)
    return a.result() + b.result()


def main():
    cluster = SchedulerClusterCombo(n_workers=1, logging_level="WARNING")
    with Client(address=cluster.get_address()) as client:
        print(client.submit(fibonacci, client, 8).result())
    cluster.shutdown()


if __name__ == "__main__":
    main()
