"""``Prefer: wait=N`` (RFC 7240): a request held until its task ends, or N seconds pass.

``requested_wait`` reads the header. ``Waiters`` is where held requests wait:
the backend wakes a task's waiters when the task ends, wherever it ran.
``release_held``
answers every held request of the process at once, as it stops.
"""

from __future__ import annotations

import contextlib
import re
import threading
import weakref
from collections.abc import Iterable, Iterator

# One preference of a Prefer header: a name, and a value (a token or a quoted
# string), and parameters after ";", which a wait preference does not take.
_PREFERENCE = re.compile(
    r"""\s*(?P<name>[!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*
    (?:=\s*(?P<value>[!#$%&'*+.^_`|~0-9A-Za-z-]+|"(?:[^"\\]|\\.)*"))?\s*
    (?P<parameters>(?:;[^,]*)?)\s*(?:,|$)""",
    re.VERBOSE,
)


def requested_wait(headers: Iterable[str]) -> int | None:
    """The seconds of ``wait`` in these ``Prefer`` header values, or None.

    As RFC 7240 reads them: several preferences in one header or in several,
    names in any case, values quoted or not, the first ``wait`` the one that
    counts. A ``wait`` that is not a whole number of seconds is ignored, as a
    malformed header is.
    """
    for header in headers:
        position = 0
        while position < len(header):
            if header[position] in " \t,":  # empty list elements are allowed
                position += 1
                continue
            match = _PREFERENCE.match(header, position)
            if match is None or match.end() == position:
                break  # malformed from here on: ignore the rest
            position = match.end()
            if match["name"].lower() != "wait":
                continue
            value = (match["value"] or "").strip('"')
            return int(value) if value.isascii() and value.isdigit() else None
    return None


class Waiters:
    """Requests held until their task ends: one event per waiting request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, set[threading.Event]] = {}
        self._released = False
        _all_waiters.add(self)

    @property
    def released(self) -> bool:
        """Whether the process stops: nothing is held any more."""
        return self._released

    @contextlib.contextmanager
    def waiting_for(self, task_id: str) -> Iterator[threading.Event]:
        """An event set when ``task_id`` ends (or everything is released), while in the block.

        Read the task's state after entering: an end before that sets nothing.
        """
        event = threading.Event()
        with self._lock:
            if self._released:
                event.set()
            self._waiting.setdefault(task_id, set()).add(event)
        try:
            yield event
        finally:
            with self._lock:
                events = self._waiting.get(task_id)
                if events is not None:
                    events.discard(event)
                    if not events:
                        del self._waiting[task_id]

    @property
    def task_ids(self) -> list[str]:
        """The tasks some request waits for now."""
        with self._lock:
            return list(self._waiting)

    def wake(self, task_id: str) -> None:
        """``task_id`` ended: answer the requests that wait for it."""
        with self._lock:
            events = list(self._waiting.get(task_id, ()))
        for event in events:
            event.set()

    def wake_all(self) -> None:
        """Have every held request look again (an end may have been missed)."""
        with self._lock:
            events = [event for events in self._waiting.values() for event in events]
        for event in events:
            event.set()

    def release(self) -> None:
        """The process stops: answer every held request now, and hold no more."""
        self._released = True
        self.wake_all()


# Every Waiters of the process, for release_held.
_all_waiters: weakref.WeakSet[Waiters] = weakref.WeakSet()


def release_held() -> None:
    """Answer every held request of this process at once (it is stopping).

    Safe to call from a signal handler: the work is done on a thread of its
    own, so that a lock the interrupted code holds cannot deadlock it.
    """

    def release_all() -> None:
        for waiters in list(_all_waiters):
            waiters.release()

    threading.Thread(target=release_all, name="release-held-requests", daemon=True).start()
