import functools
import pdb
import sys
from typing import Callable


def pdb_wrapped(func: Callable):
    """Run ``func`` and exit with its return value; on an exception, open pdb's post-mortem first."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            code = func(*args, **kwargs)
        except Exception:
            pdb.post_mortem(sys.exc_info()[2])
            raise
        sys.exit(code)

    return wrapper
