"""Logging set-up with Scaler 1.12.5's interface (``setup_logger``, ``LoggingLevel``, ``get_logger_info``)."""

import enum
import logging
import logging.config
import logging.handlers
import os
import sys
from typing import List, Optional, Tuple, Union

from scaler.config.defaults import DEFAULT_LOGGING_PATHS
from scaler.utility.logging.tags import LEVEL_TAGS

_FORMAT = "[%(levelname)s]%(asctime)s: %(message)s"
_FILE_FORMAT = "[%(levelname)s]%(asctime)s:%(module)s:%(funcName)s:%(lineno)s: %(message)s"
_DATE_FORMAT = "%Y-%m-%d %H:%M:%S%z"


class LoggingLevel(enum.Enum):
    CRITICAL = logging.CRITICAL
    ERROR = logging.ERROR
    WARNING = logging.WARNING
    INFO = logging.INFO
    DEBUG = logging.DEBUG
    NOTSET = logging.NOTSET


def setup_logger(
    log_paths: Union[str, Tuple[str, ...]] = DEFAULT_LOGGING_PATHS,
    logging_config_file: Optional[str] = None,
    logging_level: str = LoggingLevel.INFO.name,
) -> None:
    """Configure the root logger the way scaler's command-line tools do.

    As in 1.12.5: a logging config file wins; otherwise one handler per path, ``-`` and
    ``/dev/stdout`` being the console. Calling it again replaces the handlers it added before
    instead of adding more (1.12.5 replaced the whole configuration).
    """
    if not log_paths and not logging_config_file:
        return
    if logging_config_file is not None:
        logging.config.fileConfig(logging_config_file, disable_existing_loggers=False)
        return
    if isinstance(log_paths, str):
        log_paths = (log_paths,)
    for number, tag in LEVEL_TAGS.items():
        logging.addLevelName(number, tag)
    level = logging_level.upper() if isinstance(logging_level, str) else logging_level
    if isinstance(level, str):
        level = {"WARN": "WARNING"}.get(level, level)
        level = getattr(logging, level) if isinstance(getattr(logging, level, None), int) else logging.INFO
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        if getattr(handler, "_scaler", False):
            root.removeHandler(handler)
            handler.close()
    for path in log_paths:
        if path in ("/dev/stdout", "-"):
            handler: logging.Handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(logging.Formatter(_FORMAT, datefmt=_DATE_FORMAT))
        elif path == "/dev/stderr":
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter(_FORMAT, datefmt=_DATE_FORMAT))
        else:
            filename = os.path.expandvars(os.path.expanduser(path))
            handler = logging.handlers.TimedRotatingFileHandler(filename, when="midnight")
            handler.setFormatter(logging.Formatter(_FILE_FORMAT, datefmt=_DATE_FORMAT))
        handler._scaler = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    logging.info(f"logging to {tuple(log_paths)}")


def get_logger_info(logger: logging.Logger) -> Tuple[str, str, Tuple[str, ...]]:
    """(format string of the first handler, effective level name, paths the handlers write to)."""
    level = logging.getLevelName(logger.getEffectiveLevel())
    fmt = ""
    paths: List[str] = []
    if logger.handlers:
        formatter = logger.handlers[0].formatter
        if formatter is not None:
            fmt = getattr(formatter, "_fmt", "") or ""
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            paths.append(handler.baseFilename)
        elif isinstance(handler, logging.StreamHandler):
            name = getattr(handler.stream, "name", "")
            if "stdout" in str(name):
                paths.append("/dev/stdout")
            elif "stderr" in str(name):
                paths.append("/dev/stderr")
    return fmt, level, tuple(paths) or ("/dev/stdout",)
