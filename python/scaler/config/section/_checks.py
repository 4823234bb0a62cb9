"""Checks shared by the section dataclasses; the messages are 1.12.5's."""

from urllib.parse import urlparse


def check_logging_level(level: str) -> None:
    from scaler.utility.logging.utility import LoggingLevel

    valid = {member.name for member in LoggingLevel}
    if level.upper() not in valid:
        raise ValueError(f"logging_level must be one of {valid}, but got '{level}'")


def check_positive(message: str, *values: int) -> None:
    """Raise ValueError(message) unless every value is above zero (1.12.5 checks several at once
    under one message)."""
    if min(values) <= 0:
        raise ValueError(message)


def check_url(name: str, url) -> None:
    if url:
        parsed = urlparse(url)
        if not (parsed.scheme and parsed.netloc):
            raise ValueError(f"{name} '{url}' is not a valid URL.")
