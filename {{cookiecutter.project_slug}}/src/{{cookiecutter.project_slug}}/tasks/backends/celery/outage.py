"""Redis going away and coming back, said once each per process."""

from __future__ import annotations

import logging
import threading

from ...backend import Unavailable


class Outage:
    """Says once that Redis is away, and once that it is back, in each process.

    A worker's tasks ask Redis several times a second (cancel checks,
    progress, leases); a line for each failed call would bury the log.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._lock = threading.Lock()
        self._away = False

    def lost(self, doing: str, error: Unavailable) -> None:
        """A call to Redis failed, while ``doing`` something."""
        if self._away:
            return
        with self._lock:
            if self._away:
                return
            self._away = True
        self._logger.warning(
            "Redis is unavailable (%s: %s): trying again; said once until it is back",
            doing,
            error.__cause__,
        )

    def back(self) -> None:
        """A call to Redis succeeded."""
        if not self._away:
            return
        with self._lock:
            if not self._away:
                return
            self._away = False
        self._logger.info("Redis is reachable again")
