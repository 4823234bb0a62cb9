"""The four-letter level tags of Scaler 1.12.5's log lines and of the Go roles' ([WARN], [EROR], ...).

A module of its own, importing only ``logging``, so that the processor can use the table without
the set-up module's ``logging.config`` and ``logging.handlers``.
"""

import logging

LEVEL_TAGS = {
    logging.DEBUG: "DEBG",
    logging.INFO: "INFO",
    logging.WARNING: "WARN",
    logging.ERROR: "EROR",
    logging.CRITICAL: "CTIC",
}
