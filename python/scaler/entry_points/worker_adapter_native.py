from scaler.entry_points import run_role


def main() -> None:
    run_role("scaler_worker_adapter_native")


if __name__ == "__main__":
    main()
