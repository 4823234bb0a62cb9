"""Human-readable numbers, as 1.12.5's ``scaler.utility.formatter`` prints them (``scaler_top``'s style)."""

STORAGE_SIZE_MODULUS = 1024.0
TIME_MODULUS = 1000


def format_bytes(number) -> str:
    """``512B``, ``3K``, ``1.5M``: whole bytes and KiB, one decimal above."""
    value = float(number)
    for unit in ("B", "K", "M", "G"):
        if value < STORAGE_SIZE_MODULUS:
            return f"{int(value)}{unit}" if unit in ("B", "K") else f"{value:.1f}{unit}"
        value /= STORAGE_SIZE_MODULUS
    return f"{value:.1f}T"


def format_integer(number) -> str:
    return f"{number:,}"


def format_percentage(number: int) -> str:
    """``number`` is in tenths of a percent (per mille): 505 -> ``50.5%``."""
    return f"{number / 1000:.1%}"


def format_microseconds(number: int) -> str:
    """``0.5ms`` below a millisecond, then whole ``ms``, then whole ``s`` (``1000+s`` beyond)."""
    if number < TIME_MODULUS:
        return f"{number / TIME_MODULUS:.1f}ms"
    milliseconds = int(number / TIME_MODULUS)
    if milliseconds < TIME_MODULUS:
        return f"{milliseconds}ms"
    seconds = int(milliseconds / TIME_MODULUS)
    return f"{seconds}+s" if seconds > TIME_MODULUS else f"{seconds}s"


def format_seconds(number: int) -> str:
    return "60+s" if number > 60 else f"{number}s"
