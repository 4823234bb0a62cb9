"""Which task, if any, the current code runs inside.

The processor (``scaler.worker``) calls :func:`set_current_task` around each task function; the
client reads :func:`current_task_priority` so that a task submitted from inside a task gets the
parent's priority + 1 (the worker agent suspends the parent's processor to run it, which is what
keeps nested and recursive tasks from deadlocking).
"""

import contextvars
from typing import Optional

_current_priority: "contextvars.ContextVar[Optional[int]]" = contextvars.ContextVar(
    "scaler_current_task_priority", default=None
)


def set_current_task(priority: Optional[int]) -> contextvars.Token:
    """Mark the current context as running a task of ``priority`` (None: not in a task)."""
    return _current_priority.set(priority)


def reset_current_task(token: contextvars.Token) -> None:
    _current_priority.reset(token)


def current_task_priority() -> Optional[int]:
    """Priority of the task the caller runs inside, or None outside tasks."""
    return _current_priority.get()
