"""The in-memory record of tasks: what each one is doing and what it answered.

Every change of a task's state happens under the store's one lock, so that
submits, polls, cancels and cleaner passes from many threads at once see each
task move through its states in order.
"""

import threading
import time
from collections import deque

from ...backend import CANCELLED, FINISHED, QUEUED, RUNNING
from ...problems import CANCELLED_PROBLEM

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
        "finished_at",
        "progress",
        "request",
        "response",
        "error",
        "cancel_requested",
        "idempotency",
    )

    def __init__(self, task_id, owner, request, now, idempotency=None):
        self.id = task_id
        self.owner = owner
        self.status = QUEUED
        # Shown to clients on the wall clock; expiry runs on the store's own
        # clock (monotonic), so that a step of the wall clock (NTP) neither
        # keeps tasks nor drops them early.
        self.created_at = now
        self.updated_at = now
        self.finished_at = None
        self.progress = None
        self.request = request
        self.response = None
        self.error = None
        self.cancel_requested = False
        # The owner, Idempotency-Key and request digest the task is held
        # under (an ``Idempotency``), or None.
        self.idempotency = idempotency

    @property
    def finished(self):
        return self.status in FINISHED

    @property
    def fingerprint(self):
        return None if self.idempotency is None else self.idempotency.fingerprint

    @property
    def scope(self):
        """Whose ``Idempotency-Key`` the task is held under, or None."""
        return None if self.idempotency is None else self.idempotency[:2]


class TaskStore:
    """Tasks by id, finished tasks in the order they finished.

    ``clock`` tells the time for expiry (monotonic seconds); ``wall_clock``
    the times shown to clients.
    """

    def __init__(self, clock=time.monotonic, wall_clock=time.time):
        self.clock = clock
        self.wall_clock = wall_clock
        self._lock = threading.Lock()
        self._tasks = {}
        self._by_idempotency_scope = {}
        # Finished tasks in completion order: a cleaner pass reads from the
        # front and stops at the first task that has not expired, so its cost
        # follows what expired, not everything held.
        self._finished = deque()

    def __len__(self):
        return len(self._tasks)

    def get(self, task_id):
        return self._tasks.get(task_id)

    def find_by_scope(self, scope):
        """The task held for an idempotency scope ``(owner, key)``, if any."""
        return self._by_idempotency_scope.get(scope)

    def unfinished(self):
        """The tasks still queued or running."""
        with self._lock:
            return [task for task in self._tasks.values() if not task.finished]

    def add(self, task):
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

    def discard(self, task):
        """Forget ``task`` at once, whatever its state, and free its answer."""
        with self._lock:
            self._remove(task)
            task.response = None  # the completion queue still holds the task

    def start(self, task):
        """Mark a queued task running; False if it was cancelled meanwhile."""
        with self._lock:
            if task.status != QUEUED:
                return False
            task.status = RUNNING
            task.updated_at = self.wall_clock()
            return True

    def report(self, task, progress):
        with self._lock:
            task.progress = progress
            task.updated_at = self.wall_clock()

    def finish(self, task, status, response=None, error=None):
        """End ``task``; a cancellation requested while it ran wins over ``status``."""
        with self._lock:
            if task.finished:
                return
            if task.cancel_requested and status != CANCELLED:
                return self._end(task, CANCELLED, None, CANCELLED_PROBLEM)
            self._end(task, status, response, error)

    def request_cancel(self, task):
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

    def remove_expired(self, finished_before):
        """Drop tasks that finished before ``finished_before``; returns how many."""
        removed = 0
        more = True
        while more:
            with self._lock:
                for _ in range(REMOVAL_BATCH):
                    if not self._finished or self._finished[0].finished_at >= finished_before:
                        more = False
                        break
                    removed += self._remove(self._finished.popleft())
        return removed

    def _end(self, task, status, response, error):
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

    def _remove(self, task):
        if self._tasks.get(task.id) is not task:
            return 0
        del self._tasks[task.id]
        scope = task.scope
        if scope is not None and self._by_idempotency_scope.get(scope) is task:
            del self._by_idempotency_scope[scope]
        return 1
