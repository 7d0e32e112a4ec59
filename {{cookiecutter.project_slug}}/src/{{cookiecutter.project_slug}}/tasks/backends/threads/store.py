"""The in-memory record of tasks: what each one is doing and what it answered.

Every change of a task's state happens under the store's one lock, so that
submits, polls, cancels and cleaner passes from many threads at once see each
task move through its states in order.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from ...backend import CANCELLED, FINISHED, QUEUED, RUNNING, Idempotency, Progress
from ...problems import CANCELLED_PROBLEM, Problem
from ...snapshot import RequestSnapshot, ResponseSnapshot

Clock = Callable[[], float]
# Whose Idempotency-Key a task is held under: (owner, key).
Scope = tuple[bytes | None, str]

# A cleaner pass removes at most this many tasks per hold of the lock, so that
# submits and polls never wait long behind it.
REMOVAL_BATCH = 500


class Task:
    """One submitted call of an ``async_api`` view."""

    __slots__ = (
        "id",
        "owner",
        "status",
        "created_at",
        "updated_at",
        "started_at",
        "finished_at",
        "progress",
        "request",
        "response",
        "error",
        "cancel_requested",
        "idempotency",
        "endpoint",
    )

    def __init__(
        self,
        task_id: str,
        owner: bytes | None,
        request: RequestSnapshot,
        now: float,
        idempotency: Idempotency | None = None,
        endpoint: str = "",
    ) -> None:
        self.id = task_id
        self.owner = owner
        self.status = QUEUED
        # Shown to clients on the wall clock; expiry runs on the store's own
        # clock (monotonic), so that a step of the wall clock (NTP) neither
        # keeps tasks nor drops them early.
        self.created_at = now
        self.updated_at = now
        # When a worker took it (wall clock), for the metrics; None until then.
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.progress: Progress | None = None
        self.request: RequestSnapshot | None = request
        self.response: ResponseSnapshot | None = None
        self.error: Problem | None = None
        self.cancel_requested = False
        # The owner, Idempotency-Key and request digest the task is held
        # under (an ``Idempotency``), or None.
        self.idempotency = idempotency
        # The view's endpoint: the metrics' label.
        self.endpoint = endpoint

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def fingerprint(self) -> bytes | None:
        return None if self.idempotency is None else self.idempotency.fingerprint

    @property
    def scope(self) -> Scope | None:
        """Whose ``Idempotency-Key`` the task is held under, or None."""
        if self.idempotency is None:
            return None
        return self.idempotency.owner, self.idempotency.key


class TaskStore:
    """Tasks by id, finished tasks in the order they finished.

    ``clock`` tells the time for expiry (monotonic seconds); ``wall_clock``
    the times shown to clients.
    """

    def __init__(self, clock: Clock = time.monotonic, wall_clock: Clock = time.time) -> None:
        self.clock = clock
        self.wall_clock = wall_clock
        self._lock = threading.Lock()
        self._tasks: dict[str, Task] = {}
        self._by_idempotency_scope: dict[Scope, Task] = {}
        # Finished tasks in completion order: a cleaner pass reads from the
        # front and stops at the first task that has not expired, so its cost
        # follows what expired, not everything held.
        self._finished: deque[Task] = deque()

    def __len__(self) -> int:
        return len(self._tasks)

    def get(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def find_by_scope(self, scope: Scope) -> Task | None:
        """The task held for an idempotency scope ``(owner, key)``, if any."""
        return self._by_idempotency_scope.get(scope)

    def unfinished(self) -> list[Task]:
        """The tasks still queued or running."""
        with self._lock:
            return [task for task in self._tasks.values() if not task.finished]

    def add(self, task: Task) -> Task:
        """Hold ``task``; or, if its idempotency scope is taken, return that task."""
        with self._lock:
            scope = task.scope
            if scope is not None:
                existing = self._by_idempotency_scope.get(scope)
                if existing is not None:
                    return existing
                self._by_idempotency_scope[scope] = task
            self._tasks[task.id] = task
            return task

    def discard(self, task: Task) -> None:
        """Forget ``task`` at once, whatever its state, and free its answer."""
        with self._lock:
            self._remove(task)
            task.response = None  # the completion queue still holds the task

    def start(self, task: Task) -> bool:
        """Mark a queued task running; False if it was cancelled meanwhile."""
        with self._lock:
            if task.status != QUEUED:
                return False
            task.status = RUNNING
            task.updated_at = task.started_at = self.wall_clock()
            return True

    def report(self, task: Task, progress: Progress) -> None:
        with self._lock:
            task.progress = progress
            task.updated_at = self.wall_clock()

    def finish(
        self,
        task: Task,
        status: str,
        response: ResponseSnapshot | None = None,
        error: Problem | None = None,
    ) -> None:
        """End ``task``; a cancellation requested while it ran wins over ``status``."""
        with self._lock:
            if task.finished:
                return
            if task.cancel_requested and status != CANCELLED:
                self._end(task, CANCELLED, None, CANCELLED_PROBLEM)
            else:
                self._end(task, status, response, error)

    def request_cancel(self, task: Task) -> str:
        """Cancel a queued task, or ask a running one to stop.

        Returns the status the task had before: ``queued`` (it is cancelled
        now), ``running`` (it was asked to stop) or a finished one (nothing
        changed).
        """
        with self._lock:
            previous = task.status
            if previous == QUEUED:
                self._end(task, CANCELLED, None, CANCELLED_PROBLEM)
            elif previous == RUNNING and not task.cancel_requested:
                task.cancel_requested = True
                task.updated_at = self.wall_clock()
            return previous

    def remove_expired(self, finished_before: float) -> int:
        """Drop tasks that finished before ``finished_before``; returns how many."""
        removed = 0
        more = True
        while more:
            with self._lock:
                for _ in range(REMOVAL_BATCH):
                    if not self._finished or _finished_at(self._finished[0]) >= finished_before:
                        more = False
                        break
                    removed += self._remove(self._finished.popleft())
        return removed

    def _end(
        self, task: Task, status: str, response: ResponseSnapshot | None, error: Problem | None
    ) -> None:
        task.response = response
        task.error = error
        # The request snapshot holds the caller's credentials: keep it no
        # longer than the task runs.
        task.request = None
        task.updated_at = self.wall_clock()  # a finished task changes no more
        task.finished_at = self.clock()
        # The status last: polls read it without the lock, then the outcome.
        task.status = status
        self._finished.append(task)

    def _remove(self, task: Task) -> int:
        if self._tasks.get(task.id) is not task:
            return 0
        del self._tasks[task.id]
        scope = task.scope
        if scope is not None and self._by_idempotency_scope.get(scope) is task:
            del self._by_idempotency_scope[scope]
        return 1


def _finished_at(task: Task) -> float:
    """When a finished task finished, on the store's clock."""
    assert task.finished_at is not None, "only finished tasks are queued for removal"
    return task.finished_at
