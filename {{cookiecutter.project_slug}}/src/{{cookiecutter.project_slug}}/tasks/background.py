"""A daemon thread started on first need and stopped on request: the cleaner, the ends listener."""

from __future__ import annotations

import threading
from collections.abc import Callable


class BackgroundThread:
    """Runs ``loop(stopped)`` on a daemon thread from the first ``start()``.

    ``start()`` is cheap enough to call on every request, so a thread can be
    started by the first one rather than at import: a process that forks
    after importing the app (a task worker, gunicorn with preload) keeps
    no thread that its children would not have. ``loop`` returns once the
    ``stopped`` event is set. A daemon thread never holds the process open.
    """

    def __init__(self, loop: Callable[[threading.Event], None], name: str) -> None:
        self.stopped = threading.Event()
        self._thread = threading.Thread(target=loop, args=(self.stopped,), name=name, daemon=True)
        self._starting = threading.Lock()

    def start(self) -> None:
        """Start the thread, unless it runs already or was stopped."""
        if self._thread.ident is None and not self.stopped.is_set():
            with self._starting:
                if self._thread.ident is None:
                    self._thread.start()

    def stop(self) -> None:
        self.stopped.set()
