"""``current_task``: what a view running as a task can tell and ask about itself.

Outside a task every call is harmless (``report`` does nothing, ``cancelled``
is False), so the same view works synchronously and as a task.
"""

import numbers
from contextvars import ContextVar

# The task this thread runs (a backend's ``RunningTask``), if any.
running_task = ContextVar("running_task", default=None)


class CurrentTask:
    """The task the current view runs as; see ``current_task``."""

    @property
    def id(self):
        """The running task's id, or None outside a task."""
        running = running_task.get()
        return None if running is None else running.id

    @property
    def cancelled(self):
        """True once a client asked, with ``DELETE``, for this task to stop."""
        running = running_task.get()
        return running is not None and running.cancelled

    def report(self, percent, message=None):
        """Show ``percent`` done (0 to 100) and an optional ``message`` to pollers."""
        if isinstance(percent, bool) or not isinstance(percent, numbers.Real):
            raise ValueError(f"percent must be a number from 0 to 100, got {percent!r}")
        if not 0 <= percent <= 100:
            raise ValueError(f"percent must be from 0 to 100, got {percent!r}")
        running = running_task.get()
        if running is not None:
            running.report((percent, None if message is None else str(message)))


current_task = CurrentTask()
