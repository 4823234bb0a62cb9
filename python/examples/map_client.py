"""client.map over 100 inputs (prints 661.4629471031477)."""
import math

from scaler import Client, SchedulerClusterCombo


def main():
    cluster = SchedulerClusterCombo(n_workers=10, logging_level="WARNING")
    with Client(address=cluster.get_address()) as client:
        results = client.map(math.sqrt, [(x,) for x in range(100)])
        print(sum(results))
    cluster.shutdown()


if __name__ == "__main__":
    main()
