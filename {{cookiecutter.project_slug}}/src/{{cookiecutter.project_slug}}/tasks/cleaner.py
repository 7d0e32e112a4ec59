"""The cleaner: a daemon thread that runs the task backend's periodic pass.

What a pass does is the backend's: drop tasks whose retention ended, or end
tasks whose worker was lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .background import BackgroundThread


class Cleaner:
    """Call ``clean()`` every ``interval`` seconds, from ``start()`` until ``stop()``.

    A failing pass is logged and the next one runs on time: a cleaner that
    died on its first error would let memory grow without bound.
    """

    def __init__(
        self,
        clean: Callable[[], int],
        interval: float,
        logger: logging.Logger,
        name: str = "task-cleaner",
    ) -> None:
        self._clean = clean
        self._interval = interval
        self._logger = logger
        self._thread = BackgroundThread(self._loop, name)

    def start(self) -> None:
        """Start the thread, unless it runs already or was stopped (cheap to call often)."""
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()

    def run_pass(self) -> int:
        """One pass, now; returns what the pass returned (0 if it failed)."""
        try:
            return self._clean()
        except Exception:
            self._logger.exception("Task cleaner pass failed; the next pass runs as planned")
            return 0

    def _loop(self, stopped: threading.Event) -> None:
        while not stopped.wait(self._interval):
            self.run_pass()
