"""The Celery backend: tasks run in Celery workers; all their state lives in Redis.

Any number of web processes, on any number of machines, answer for every
task: they read and change it in Redis only (``store.py``). A worker takes
a task's id from the queue, claims it with a lease that it renews while the
task runs, replays the request through the app and stores the answer. A
reaper in each web process fails tasks whose worker stopped (their lease
lapsed) every ``TASK_CLEANUP_INTERVAL`` seconds; Redis itself expires
finished tasks ``TASK_RETENTION`` seconds after they finished.
"""

from __future__ import annotations

import threading

import redis
from flask import Flask
from kombu.exceptions import OperationalError
from redis.backoff import NoBackoff
from redis.retry import Retry

from ...backend import QUEUED, RUNNING, Idempotency, Unavailable
from ...cleaner import Cleaner
from ...problems import problem
from ...replay import Outcome, run_task
from ...snapshot import RequestSnapshot
from .celery_app import REDIS_TIMEOUT, celery_init_app
from .store import RedisTaskStore, StoredTask

WORKER_LOST_PROBLEM = problem(
    500,
    "Internal Server Error",
    "The worker running the task stopped before the task finished.",
)


class CeleryBackend:
    """Tasks in Redis, run by Celery workers."""

    def __init__(self, app: Flask) -> None:
        config = app.config
        self.app = app
        self.max_queued = config["TASK_MAX_QUEUED"]
        self.lease = config["TASK_LEASE"]
        self.celery = celery_init_app(app)
        self.redis = redis.Redis.from_url(
            config["TASK_REDIS_URL"],
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
            # One quick retry on a fresh connection (Redis restarted), no more:
            # a request must get its 503 in bounded time.
            retry=Retry(NoBackoff(), 1),
        )
        self.store = RedisTaskStore(self.redis, f"{app.name}:", config["TASK_RETENTION"])

        # shared=False: a task of this app only, never added to other Celery apps.
        @self.celery.task(name=f"{app.name}.run_task", ignore_result=True, shared=False)
        def run(task_id: str) -> None:
            self.run(task_id)

        # The Celery task a worker runs: its message carries only the task id.
        self.run_task = run
        # Started by the first request a web process answers, never at import:
        # a thread started before a Celery worker forks its pool would
        # deadlock the forked children.
        self.cleaner = Cleaner(
            lambda: self.store.reap(WORKER_LOST_PROBLEM),
            config["TASK_CLEANUP_INTERVAL"],
            app.logger,
            name="task-reaper",
        )

    # -- web side -------------------------------------------------------

    def submit(
        self, owner: bytes | None, request: RequestSnapshot, idempotency: Idempotency | None
    ) -> tuple[StoredTask, bool]:
        self.cleaner.ensure_started()
        task_id, new = self.store.submit(owner, request, idempotency, self.max_queued)
        if new:
            try:
                self.run_task.apply_async((task_id,))
            except (OperationalError, redis.RedisError, OSError) as error:
                self.store.forget(task_id)
                raise Unavailable from error
        task = self.store.get(task_id)
        if task is None:
            raise Unavailable  # expired in the instant between; the client retries
        return task, new

    def get(self, task_id: str) -> StoredTask | None:
        self.cleaner.ensure_started()
        return self.store.get(task_id)

    def cancel(self, task: StoredTask) -> tuple[str | None, StoredTask | None]:
        previous = self.store.cancel(task.id)
        if previous in (QUEUED, RUNNING):
            return previous, self.store.get(task.id)
        return previous, None

    def healthy(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    def shutdown(self, timeout: float | None = None) -> None:
        """Close this process's connections. Tasks are the workers' and Redis's: untouched."""
        self.cleaner.stop()
        self.celery.close()
        self.redis.close()

    # -- worker side ----------------------------------------------------

    def run(self, task_id: str) -> None:
        """In a worker: run the task, unless it was cancelled, expired or already taken."""
        request = self.store.start(task_id, self.lease)
        if request is None:
            return
        with _Lease(self.store, task_id, self.lease, self.app.logger):
            outcome = run_task(self.app, _Running(self.store, task_id, self.app), request)
        self._finish(task_id, outcome)

    def _finish(self, task_id: str, outcome: Outcome) -> None:
        try:
            self.store.finish(task_id, *outcome)
        except Unavailable:
            # The lease is no longer renewed: the reaper will end the task.
            self.app.logger.exception("Task %s finished, but Redis could not be told", task_id)


class _Running:
    """``current_task`` for a task run by this worker (a ``RunningTask``)."""

    def __init__(self, store: RedisTaskStore, task_id: str, app: Flask) -> None:
        self._store = store
        self._app = app
        self._cancelled = False
        self.id = task_id

    @property
    def cancelled(self) -> bool:
        if not self._cancelled:
            try:
                self._cancelled = self._store.cancel_requested(self.id)
            except redis.RedisError:
                self._app.logger.warning("Task %s: Redis did not say if it was cancelled", self.id)
        return self._cancelled

    def report(self, progress: tuple[float, str | None]) -> None:
        try:
            self._store.report(self.id, progress)
        except Unavailable:
            self._app.logger.warning("Task %s: Redis did not take its progress", self.id)


class _Lease:
    """Renews a running task's lease every third of it, until the task ends."""

    def __init__(self, store: RedisTaskStore, task_id: str, lease: float, logger) -> None:
        self._store = store
        self._task_id = task_id
        self._lease = lease
        self._logger = logger
        self._ended = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{task_id}", daemon=True)

    def __enter__(self) -> _Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._ended.set()
        self._thread.join()

    def _renew(self) -> None:
        while not self._ended.wait(self._lease / 3):
            try:
                if not self._store.renew(self._task_id, self._lease):
                    return
            except Unavailable:
                self._logger.warning("Task %s: Redis did not renew its lease", self._task_id)
