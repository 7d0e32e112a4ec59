"""``current_task``: what a view running as a task can tell and ask about itself.

Outside a task every call is harmless (``report`` does nothing, ``cancelled``
is False), so the same view works synchronously and as a task.
"""

from __future__ import annotations

import numbers
from contextvars import ContextVar

from .backend import RunningTask

# The task this thread runs (a backend's ``RunningTask``), if any. A context
# variable, so that it reaches an ``async def`` view run on an event loop too.
running_task: ContextVar[RunningTask | None] = ContextVar("running_task", default=None)


class CurrentTask:
    """The task the current view runs as; see ``current_task``."""

    @property
    def id(self) -> str | None:
        """The running task's id, or None outside a task."""
        running = running_task.get()
        return None if running is None else running.id

    @property
    def cancelled(self) -> bool:
        """True once a client asked, with ``DELETE``, for this task to stop."""
        running = running_task.get()
        return running is not None and running.cancelled

    def report(self, percent: float, message: str | None = None) -> None:
        """Show ``percent`` done (0 to 100, fractions too) and an optional ``message``.

        Pollers see it at once. A percent outside 0..100 is a ``ValueError``.
        """
        if isinstance(percent, bool) or not isinstance(percent, numbers.Real):
            raise ValueError(f"percent must be a number from 0 to 100, got {percent!r}")
        if not 0 <= percent <= 100:
            raise ValueError(f"percent must be from 0 to 100, got {percent!r}")
        running = running_task.get()
        if running is not None:
            # A whole number stays one (40, not 40.0); any other is a float.
            number = percent if type(percent) is int else float(percent)
            running.report((number, None if message is None else str(message)))


current_task = CurrentTask()
