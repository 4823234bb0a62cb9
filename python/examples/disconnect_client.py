"""clear() and disconnect() on a client, and shutdown() refused by a protected scheduler."""
from scaler import Client, SchedulerClusterCombo


def main():
    cluster = SchedulerClusterCombo(n_workers=2, logging_level="WARNING")
    client = Client(address=cluster.get_address())
    client.clear()
    try:
        client.shutdown()
    except ValueError as error:
        print(f"shutdown refused: {error}")
    client.disconnect()
    print("disconnected")
    cluster.shutdown()


if __name__ == "__main__":
    main()
