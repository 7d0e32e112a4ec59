"""What a task backend does for the engine: one small interface, and its words.

The engine answers HTTP; a backend keeps the tasks and runs them. Whichever
backend a project uses, the engine, the REST layers and the replay of a
request never ask which one it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    import threading
    from contextlib import AbstractContextManager

    from prometheus_client.registry import Collector

    from .problems import Problem
    from .snapshot import RequestSnapshot, ResponseSnapshot
    from .waiting import Waiters

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
FINISHED = frozenset({SUCCEEDED, FAILED, CANCELLED})

# What a task reported: percent done (0 to 100), and a message or None.
Progress = tuple[float, str | None]


class Idempotency(NamedTuple):
    """The ``Idempotency-Key`` a submit came with: whose, which key, and what request."""

    owner: bytes | None
    key: str
    fingerprint: bytes


class Busy(Exception):
    """No place for another task: the submit is refused and nothing is recorded."""


class Unavailable(Exception):
    """The backend cannot be reached now (its store is down); try again later."""


class TaskState(Protocol):
    """What the engine reads of a task to answer about it."""

    @property
    def id(self) -> str: ...

    @property
    def owner(self) -> bytes | None:
        """The keyed hash of the submitter, or None: anyone's."""

    @property
    def status(self) -> str: ...

    @property
    def created_at(self) -> float:
        """Seconds since the epoch."""

    @property
    def updated_at(self) -> float: ...

    @property
    def progress(self) -> Progress | None: ...

    @property
    def cancel_requested(self) -> bool:
        """Whether a client asked the running task to stop."""

    @property
    def error(self) -> Problem | None:
        """The problem a failed or cancelled task ended with."""

    @property
    def response(self) -> ResponseSnapshot | None:
        """What the view answered, once finished."""

    @property
    def fingerprint(self) -> bytes | None:
        """The digest of the request held under an ``Idempotency-Key``, if any."""


class RunningTask(Protocol):
    """What a view running as a task can ask about itself (``current_task``)."""

    @property
    def id(self) -> str: ...

    @property
    def cancelled(self) -> bool: ...

    def report(self, progress: Progress) -> None: ...


class TaskBackend(Protocol):
    """Keeps tasks, runs them, and tells the engine about them.

    A task is *held* from its submit until it is forgotten (cancelled while
    done, or expired), whatever its status.
    """

    @property
    def metrics(self) -> Collector:
        """The task metrics (``metrics.py``' names), read when ``/metrics`` is asked."""

    def submit(
        self,
        owner: bytes | None,
        request: RequestSnapshot,
        idempotency: Idempotency | None,
        endpoint: str,
    ) -> tuple[TaskState, bool]:
        """Hold and start a task of the view ``endpoint``; ``(task, True)``.

        If ``idempotency`` names a task held already, start nothing and return
        ``(that task, False)``. Raise ``Busy`` when full, ``Unavailable`` when
        the backend cannot be reached.
        """

    def get(self, task_id: str, requester: bytes | None) -> TaskState | None:
        """The task, or None if it never existed, expired, was forgotten, or is not
        ``requester``'s to see (``owners.may_see``).

        Another owner's task costs what an unknown id costs: nothing of it
        (its answer, its request) is read before its owner matches.
        """

    def cancel(self, task_id: str, requester: bytes | None) -> tuple[str | None, TaskState | None]:
        """Cancel a queued task, ask a running one to stop, forget a finished one.

        Returns the status the task had before (None if it was gone already,
        or is not ``requester``'s), and the task as it is now (None once
        forgotten).
        """

    @property
    def waiters(self) -> Waiters:
        """The requests held until a task ends (``Prefer: wait``); woken by the backend."""

    def waiting_for(self, task_id: str) -> AbstractContextManager[threading.Event]:
        """An event set once ``task_id`` ends, while the block runs (``Waiters.waiting_for``)."""

    def why_unavailable(self) -> str | None:
        """Why the backend cannot take and answer tasks now, in a sentence; None if it can."""

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop, as the process exits; see the backend for what happens to tasks."""
