from scaler.entry_points import run_role


def main() -> None:
    run_role("scaler_cluster")


if __name__ == "__main__":
    main()
