"""Store an object once with send_object and pass it to several tasks (prints 1 then 2)."""
from scaler import Client, SchedulerClusterCombo


def get_item(data, index):
    return data[index]


def main():
    cluster = SchedulerClusterCombo(n_workers=1, logging_level="WARNING")
    with Client(address=cluster.get_address()) as client:
        large_object = client.send_object([1, 2, 3, 4, 5], name="large_object")
        print(client.submit(get_item, large_object, 0).result())
        print(client.submit(get_item, large_object, 1).result())
    cluster.shutdown()


if __name__ == "__main__":
    main()
