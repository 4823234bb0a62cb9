import datetime
import logging
import time
from typing import Optional


class ScopedLogger:
    """``with ScopedLogger("doing X"):`` logs the elapsed time when the block ends."""

    def __init__(self, message: str, logging_level: int = logging.INFO):
        self.message = message
        self.logging_level = logging_level
        self.start: Optional[float] = None

    def __enter__(self):
        self.start = time.perf_counter()
        logging.log(self.logging_level, f"started {self.message}")
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        elapsed = datetime.timedelta(seconds=time.perf_counter() - (self.start or 0.0))
        logging.log(self.logging_level, f"completed {self.message} in {elapsed}")
