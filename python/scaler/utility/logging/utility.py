import logging
import sys
from typing import Optional, Tuple

_FORMAT = "[%(levelname)s]%(asctime)s: %(message)s"


def setup_logger(
    log_paths: Tuple[str, ...] = ("/dev/stdout",),
    logging_config_file: Optional[str] = None,
    logging_level: str = "INFO",
) -> None:
    """Configure the root logger the way scaler's command-line tools do (compatibility helper)."""
    if logging_config_file is not None:
        import logging.config

        logging.config.fileConfig(logging_config_file, disable_existing_loggers=False)
        return
    root = logging.getLogger()
    root.setLevel(getattr(logging, logging_level.upper(), logging.INFO))
    for handler in list(root.handlers):
        if getattr(handler, "_scaler", False):
            root.removeHandler(handler)
    for path in log_paths:
        if path in ("/dev/stdout", "-"):
            handler = logging.StreamHandler(sys.stdout)
        elif path == "/dev/stderr":
            handler = logging.StreamHandler(sys.stderr)
        else:
            handler = logging.FileHandler(path)
        handler._scaler = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%Y-%m-%d %H:%M:%S%z"))
        root.addHandler(handler)
