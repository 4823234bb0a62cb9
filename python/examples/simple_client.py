"""Submit 100 square roots one by one and sum them (prints 661.4629471031477)."""
import math

from scaler import Client, SchedulerClusterCombo


def main():
    cluster = SchedulerClusterCombo(n_workers=10, logging_level="WARNING")
    with Client(address=cluster.get_address()) as client:
        futures = [client.submit(math.sqrt, i) for i in range(0, 100)]
        print(sum(future.result() for future in futures))
    cluster.shutdown()


if __name__ == "__main__":
    main()
