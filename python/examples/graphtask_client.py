"""A small task graph; data nodes (including a bare function) come back as they are."""
from scaler import Client, SchedulerClusterCombo


def inc(i):
    return i + 1


def add(a, b):
    return a + b


def minus(a, b):
    return a - b


graph = {"a": 2, "b": 2, "c": (inc, "a"), "d": (add, "a", "b"), "e": (minus, "d", "c"), "f": add}


def main():
    cluster = SchedulerClusterCombo(n_workers=1, logging_level="WARNING")
    with Client(address=cluster.get_address()) as client:
        result = client.get(graph, keys=["a", "b", "c", "d", "e", "f"])
        print(result.get("e"))
        print(result)
    cluster.shutdown()


if __name__ == "__main__":
    main()
