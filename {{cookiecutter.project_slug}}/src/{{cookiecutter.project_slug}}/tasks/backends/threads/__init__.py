"""The threads backend: tasks run on a bounded pool of threads in the web process.

Tasks and their answers live in that process's memory (``TaskStore``), a
cleaner thread drops finished ones once they expire, and the process gives
running tasks ``TASK_SHUTDOWN_TIMEOUT`` seconds to finish when it exits.
"""

from __future__ import annotations

import atexit
import secrets
import threading
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager

from flask import Flask

from ....logs import log_task_end, request_id_of, task_logging
from ...backend import FAILED, QUEUED, RUNNING, Busy, Idempotency, Progress
from ...cleaner import Cleaner
from ...owners import may_see
from ...problems import problem
from ...replay import Outcome, run_task
from ...snapshot import RequestSnapshot, ResponseSnapshot
from ...waiting import Waiters
from .heads import SharedHeads
from .metrics import ThreadMetrics
from .pool import WorkerPool
from .store import Task, TaskStore

STOPPED_PROBLEM = problem(503, "The service stopped before the task could start.")

# Backends still running, so that the process can shut them down as it exits.
_live_backends: weakref.WeakSet[ThreadBackend] = weakref.WeakSet()


class ThreadBackend:
    """Tasks in this process: a store, a worker pool and a cleaner."""

    def __init__(self, app: Flask) -> None:
        config = app.config
        self.app = app
        if not config.get("SECRET_KEY"):
            config["SECRET_KEY"] = secrets.token_bytes(32)
            app.logger.warning(
                "SECRET_KEY is not set (FLASK_SECRET_KEY): using a random key for this process."
                " Task owners and sessions will not be recognised after a restart."
            )
        self.shutdown_timeout = config["TASK_SHUTDOWN_TIMEOUT"]
        self.store = TaskStore()
        # Retained answers share one copy of each identical status and headers.
        self.shared_heads = SharedHeads()
        self.pool = WorkerPool(self._run, config["TASK_MAX_WORKERS"], config["TASK_MAX_QUEUED"])
        self.metrics = ThreadMetrics(self.pool)
        self.waiters = Waiters()
        store, retention = self.store, config["TASK_RETENTION"]

        # Holds the store, not the backend: see weakref.finalize below.
        def remove_expired() -> int:
            return store.remove_expired(store.clock() - retention)

        self.cleaner = Cleaner(remove_expired, config["TASK_CLEANUP_INTERVAL"], app.logger)
        self._stopped = False
        self.cleaner.start()
        # Stops the cleaner when an app that never ran a task is collected
        # (tests make many apps). Once a task ran, the pool's threads hold the
        # backend: ``shutdown()`` stops it, and runs at exit by itself.
        weakref.finalize(self, self.cleaner.stop)
        _live_backends.add(self)

    @property
    def clock(self) -> Callable[[], float]:
        """The function that tells the time in seconds, for expiry (monotonic)."""
        return self.store.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self.store.clock = clock

    def submit(
        self,
        owner: bytes | None,
        request: RequestSnapshot,
        idempotency: Idempotency | None,
        endpoint: str,
    ) -> tuple[Task, bool]:
        if idempotency is not None:
            existing = self.store.find_by_scope(idempotency[:2])
            if existing is not None:
                return existing, False
        if not self.pool.reserve():
            self.metrics.refused()
            raise Busy
        task_id = secrets.token_urlsafe(16)
        task = Task(task_id, owner, request, self.store.wall_clock(), idempotency, endpoint)
        held = self.store.add(task)
        if held is not task:
            self.pool.release()
            return held, False
        if not self.pool.run(task):
            self.store.discard(task)
            self.metrics.refused()
            raise Busy
        self.metrics.submitted(task)
        return task, True

    def get(self, task_id: str, requester: bytes | None) -> Task | None:
        task = self.store.get(task_id)
        return task if task is not None and may_see(task.owner, requester) else None

    def cancel(self, task_id: str, requester: bytes | None) -> tuple[str | None, Task | None]:
        task = self.get(task_id, requester)
        if task is None:
            return None, None
        request_id = _request_id(task)  # a cancelled task lets its request go
        previous = self.store.request_cancel(task)
        if previous == QUEUED:  # it is cancelled now, by this call only
            self.pool.cancel(task)  # free its place in the queue now
            with task_logging(task.id, request_id):
                self._ended(task)
        if self.store.get(task_id) is not task:
            return None, None
        if previous in (QUEUED, RUNNING):
            return previous, task
        self.store.discard(task)
        return previous, None

    def waiting_for(self, task_id: str) -> AbstractContextManager[threading.Event]:
        return self.waiters.waiting_for(task_id)

    def why_unavailable(self) -> str | None:
        return "The service is stopping: it takes no more tasks." if self._stopped else None

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop taking tasks; give running ones ``timeout`` seconds to finish.

        Tasks that never started end ``failed``: the service stopped.
        """
        if self._stopped:
            return
        self._stopped = True
        self.waiters.release()
        self.cleaner.stop()
        if timeout is None:
            timeout = self.shutdown_timeout
        for task in self.pool.close():
            with task_logging(task.id, _request_id(task)):
                self.store.finish(task, FAILED, None, STOPPED_PROBLEM)
                self.app.logger.warning(
                    "Task %s failed: the service stopped before it started", task.id
                )
                self._ended(task)
        if not self.pool.wait(timeout):
            for task in self.store.unfinished():
                self.app.logger.warning(
                    "Task %s was still running when the service stopped", task.id
                )

    def _run(self, task: Task) -> None:
        """In a worker thread: run the task unless it was cancelled while it waited."""
        request = task.request
        if request is None:
            return
        with task_logging(task.id, request_id_of(request.environ)):
            if not self.store.start(task):
                return
            self.metrics.started(task)
            outcome = run_task(self.app, _Running(self.store, task), request)
            self.pool.release_running()
            self.store.finish(task, *self._shared(outcome))
            self._ended(task)

    def _ended(self, task: Task) -> None:
        """Count and log the end of ``task``, and answer the requests held for it."""
        self.waiters.wake(task.id)
        self.metrics.ended(task)
        started = task.started_at
        queued = (task.updated_at if started is None else started) - task.created_at
        ran = 0.0 if started is None else task.updated_at - started
        log_task_end(self.app.logger, task.id, task.endpoint, task.status, queued, ran)

    def _shared(self, outcome: Outcome) -> Outcome:
        """``outcome``, its answer's status and headers one copy with equal ones."""
        answer = outcome.response
        if answer is None:
            return outcome
        shared = ResponseSnapshot(self.shared_heads.share(answer.head), answer.body)
        return outcome._replace(response=shared)


def _request_id(task: Task) -> str | None:
    """The ``X-Request-ID`` of a task that has not started (it still holds its request)."""
    request = task.request  # read once: the task's worker may drop it meanwhile
    return None if request is None else request_id_of(request.environ)


class _Running:
    """``current_task`` for a task of this process (a ``RunningTask``)."""

    __slots__ = ("_store", "_task", "id")

    def __init__(self, store: TaskStore, task: Task) -> None:
        self._store = store
        self._task = task
        self.id = task.id

    @property
    def cancelled(self) -> bool:
        return self._task.cancel_requested

    def report(self, progress: Progress) -> None:
        self._store.report(self._task, progress)


@atexit.register
def _shutdown_live_backends() -> None:
    for backend in list(_live_backends):
        backend.shutdown()
