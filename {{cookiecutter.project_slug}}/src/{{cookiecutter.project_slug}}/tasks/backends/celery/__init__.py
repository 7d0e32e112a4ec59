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

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import redis
from billiard.exceptions import WorkerLostError
from celery import signals
from flask import Flask
from redis.backoff import NoBackoff
from redis.retry import Retry

from ....logs import log_task_end, request_id_of, task_logging
from ...backend import CANCELLED, QUEUED, Idempotency, Progress, Unavailable
from ...cleaner import Cleaner
from ...problems import problem
from ...replay import Outcome, run_task
from ...snapshot import RequestSnapshot
from ...waiting import Waiters
from .celery_app import REDIS_TIMEOUT, celery_init_app
from .ends import EndsListener
from .metrics import RedisMetrics, heartbeat_step
from .outage import Outage
from .store import Ended, RedisTaskStore, StoredTask, redis_unavailable

WORKER_LOST_PROBLEM = problem(
    500,
    "The task's worker stopped, or lost Redis for longer than the task's lease,"
    " before the task finished.",
)

# The one maxmemory-policy that never drops a key: a full Redis refuses new
# tasks (503) until retention frees memory, and loses none.
NO_EVICTION = "noeviction"
UNREACHABLE = "Redis, which holds the tasks, cannot be reached."

# Seconds between tries to record a task's end while Redis is away: doubling
# from the first to the last, so that a short blip costs little and a long
# outage is not hammered.
FINISH_RETRY_FIRST = 0.05
FINISH_RETRY_MAX = 1.0


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
            # No retries: a script whose reply was lost would run twice (a
            # task started twice, a cancel that forgets). The request answers
            # 503 at once and its client tries again.
            retry=Retry(NoBackoff(), 0),
        )
        # Half the wait for a reply: a submit Redis takes later than that is
        # refused, and the refusal still has time to come back.
        self.store = RedisTaskStore(
            self.redis, f"{app.name}:", config["TASK_RETENTION"], submit_deadline=REDIS_TIMEOUT / 2
        )
        self.metrics = RedisMetrics(self.store)
        self.waiters = Waiters()
        self._ends = EndsListener(self.redis, self.store.ends_channel, self.waiters)
        self._outage = Outage(app.logger)
        # Each worker of this Celery app says it is alive (async_api_workers),
        # and, idle or not, when Redis goes away and comes back.
        self.celery.steps["worker"].add(heartbeat_step(self.store, self.lease, self._outage))

        # shared=False: a task of this app only, never added to other Celery apps.
        @self.celery.task(name=f"{app.name}.run_task", ignore_result=True, shared=False)
        def run(task_id: str) -> None:
            self.run(task_id)

        # The Celery task a worker runs: its message carries only the task id.
        self.run_task = run
        # A pool process that dies is seen by its worker at once: its task
        # fails now, not a lease later.
        signals.task_failure.connect(self._on_failure, sender=run, weak=False)
        self._leases = _Leases(self.store, self.lease, self._outage)
        self._warn_if_evicting()
        # Started by the first request a web process answers, never at import:
        # a thread started before a Celery worker forks its pool would
        # deadlock the forked children.
        self.cleaner = Cleaner(
            self._reap,
            config["TASK_CLEANUP_INTERVAL"],
            app.logger,
            name="task-reaper",
        )

    # -- web side -------------------------------------------------------

    def submit(
        self,
        owner: bytes | None,
        request: RequestSnapshot,
        idempotency: Idempotency | None,
        endpoint: str,
    ) -> tuple[StoredTask, bool]:
        self.cleaner.start()
        task, new = self.store.submit(owner, request, idempotency, self.max_queued, endpoint)
        if task is None:
            # The task its Idempotency-Key held was forgotten in the meantime.
            task, new = self.store.submit(owner, request, idempotency, self.max_queued, endpoint)
            if task is None:
                raise Unavailable
        if new:
            try:
                self._send(task.id)
            except Unavailable:
                self.store.forget(task.id)
                raise
        return task, new

    def get(self, task_id: str, requester: bytes | None) -> StoredTask | None:
        self.cleaner.start()
        return self.store.get(task_id, requester)

    def cancel(self, task_id: str, requester: bytes | None) -> tuple[str | None, StoredTask | None]:
        before, task = self.store.cancel(task_id, requester)
        if before == QUEUED and task is not None and task.status == CANCELLED:
            queued = task.updated_at - task.created_at
            self._log_end(Ended(task_id, task.endpoint, CANCELLED, queued, 0.0))
        return before, task

    def waiting_for(self, task_id: str) -> AbstractContextManager[threading.Event]:
        self._ends.start()
        return self.waiters.waiting_for(task_id)

    def why_unavailable(self) -> str | None:
        """Why not, unless Redis takes a write now and keeps every key it is given.

        A full or read-only Redis refuses tasks; one that evicts keys loses
        them without a word.
        """
        self.cleaner.start()
        try:
            with redis_unavailable():
                self.redis.set(f"{self.app.name}:health", "ok", px=10_000)
            policy = self._eviction_policy()
        except Unavailable:
            return UNREACHABLE
        if policy not in (None, NO_EVICTION):
            return f"Redis evicts keys (maxmemory-policy {policy}): tasks would be lost."
        return None

    def shutdown(self, timeout: float | None = None) -> None:
        """Close this process's connections. Tasks are the workers' and Redis's: untouched."""
        self.waiters.release()
        self._ends.stop()
        self.cleaner.stop()
        self.celery.close()
        self.redis.close()

    def _eviction_policy(self) -> str | None:
        """Redis's ``maxmemory-policy``; None where Redis will not say.

        ``CONFIG GET`` first; ``INFO``, which managed Redis services that
        refuse ``CONFIG`` still answer, second.
        """
        with redis_unavailable():
            # redis-py types its replies for its sync and async clients at once.
            try:
                config: dict[str, Any] = self.redis.config_get("maxmemory-policy")  # type: ignore[assignment]
                return str(config["maxmemory-policy"])
            except (redis.ResponseError, KeyError):
                pass
            try:
                memory: dict[str, Any] = self.redis.info("memory")  # type: ignore[assignment]
            except redis.ResponseError:
                return None
        policy = memory.get("maxmemory_policy")
        return None if policy is None else str(policy)

    def _warn_if_evicting(self) -> None:
        """At start: one warning line if Redis may evict task state, or will not say."""
        try:
            policy = self._eviction_policy()
        except Unavailable:
            return  # not up yet: /health says so, and checks the policy once it is
        if policy is None:
            self.app.logger.warning(
                "Redis does not tell its maxmemory-policy: the task Redis must use"
                " noeviction, or finished tasks may vanish before their clients read them"
            )
        elif policy != NO_EVICTION:
            self.app.logger.warning(
                "Redis evicts keys (maxmemory-policy %s): finished tasks may vanish"
                " before their clients read them; set maxmemory-policy noeviction",
                policy,
            )

    def _send(self, task_id: str) -> None:
        """Send the message that has a worker run the task: its id, nothing more."""
        with redis_unavailable():
            # Celery's id is the task's own, so that Celery's log lines name it too.
            self.run_task.apply_async((task_id,), task_id=task_id)

    def _reap(self) -> int:
        """One reaper pass: fail tasks of lost workers, resend lost messages."""
        try:
            failed, resend = self.store.reap(WORKER_LOST_PROBLEM, self.lease)
            for task_id in resend:
                self._send(task_id)
        except Unavailable as error:
            # Said once per outage, not a traceback a pass: every request's
            # 503 and /readyz say it too.
            self._outage.lost("the task reaper", error)
            return 0
        self._outage.back()
        if failed:
            self.app.logger.warning(
                "%d tasks failed: their worker stopped: %s",
                len(failed),
                ", ".join(ended.task_id for ended in failed),
            )
        for ended in failed:
            self._log_end(ended)
        return len(failed)

    def _log_end(self, ended: Ended) -> None:
        with task_logging(ended.task_id):
            log_task_end(self.app.logger, *ended)

    # -- worker side ----------------------------------------------------

    def run(self, task_id: str) -> None:
        """In a worker: run the task, unless it was cancelled, expired or already taken."""
        claimed_at = time.monotonic()
        started = self.store.start(task_id, self.lease)
        if started is None:
            return
        running = _Running(self.store, task_id, self._outage, claimed_at + self.lease)
        with task_logging(task_id, request_id_of(started.request.environ)):
            # The lease is kept while the end is recorded too: a Redis outage
            # shorter than the lease must not fail a task whose view finished.
            with self._leases.renewed(running):
                outcome = run_task(self.app, running, started.request)
                ended = self._finish(running, outcome)
            if ended is not None:
                status, queued, ran = ended
                log_task_end(self.app.logger, task_id, started.endpoint, status, queued, ran)

    def _finish(self, running: _Running, outcome: Outcome) -> tuple[str, float, float] | None:
        """Record how the task ended, trying again for as long as its lease holds.

        FINISH acts only on a running task, so a try whose reply was lost
        and the try after it record the end once. Returns what FINISH did.
        """
        pause = FINISH_RETRY_FIRST
        while True:
            try:
                ended = self.store.finish(running.id, *outcome)
            except Unavailable as error:
                left = running.lease_ends - time.monotonic()
                if left <= 0:
                    # The reaper fails the task now: its answer is lost.
                    self.app.logger.error(
                        "Task %s finished, but Redis could not be told before its lease"
                        " lapsed (%s): it will be reported failed",
                        running.id,
                        error.__cause__,
                    )
                    return None
                self._outage.lost("recording a task's end", error)
                time.sleep(min(pause, left))
                pause = min(pause * 2, FINISH_RETRY_MAX)
            else:
                self._outage.back()
                return ended

    def _on_failure(self, task_id: str | None = None, exception: object = None, **_: Any) -> None:
        """In a worker's main process: a pool process died running ``task_id``."""
        if task_id is None or not isinstance(exception, WorkerLostError):
            return
        with task_logging(task_id):
            try:
                ended = self.store.lost(task_id, WORKER_LOST_PROBLEM)
            except Unavailable as error:
                self._outage.lost("failing a task whose process died", error)
                return  # its lease lapses, and a reaper fails it
            if ended is not None:
                self.app.logger.error(
                    "Task %s failed: its worker process died (%s)", task_id, exception
                )
                log_task_end(self.app.logger, *ended)


class _Running:
    """``current_task`` for a task run by this worker (a ``RunningTask``)."""

    # Seconds a "not cancelled" answer is trusted: a view that checks in a
    # tight loop must not flood Redis, and a cancel still shows at once.
    CANCEL_CHECK_INTERVAL = 0.25

    def __init__(
        self, store: RedisTaskStore, task_id: str, outage: Outage, lease_ends: float
    ) -> None:
        self._store = store
        self._outage = outage
        self._cancelled = False
        self._checked_at = float("-inf")
        self.id = task_id
        # When (time.monotonic) the lease last taken or renewed lapses at the
        # latest: the time before the call that took it, plus the lease.
        self.lease_ends = lease_ends

    @property
    def cancelled(self) -> bool:
        now = time.monotonic()
        if not self._cancelled and now - self._checked_at >= self.CANCEL_CHECK_INTERVAL:
            self._checked_at = now
            try:
                self._cancelled = self._store.cancel_requested(self.id)
            except Unavailable as error:
                self._outage.lost("checking for a cancel", error)
            else:
                self._outage.back()
        return self._cancelled

    def stop(self) -> None:
        """The task no longer runs here (its lease lapsed): ask the view to stop."""
        self._cancelled = True

    def report(self, progress: Progress) -> None:
        try:
            self._store.report(self.id, progress)
        except Unavailable as error:
            self._outage.lost("reporting progress", error)
        else:
            self._outage.back()


class _Leases:
    """Renews the leases of the tasks this worker process runs, every third of a lease.

    One thread per process, started with its first task: never in a process
    that forks afterwards (a Celery worker forks its pool before any task).
    """

    def __init__(self, store: RedisTaskStore, lease: float, outage: Outage) -> None:
        self._store = store
        self._lease = lease
        self._outage = outage
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def renewed(self, task: _Running) -> Iterator[None]:
        """Keep ``task``'s lease while the block runs."""
        with self._lock:
            self._running[task.id] = task
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._renew, name="task-leases", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                del self._running[task.id]

    def _renew(self) -> None:
        while True:
            time.sleep(self._lease / 3)
            with self._lock:
                running = list(self._running.values())
            for task in running:
                asked_at = time.monotonic()
                try:
                    renewed = self._store.renew(task.id, self._lease)
                except Unavailable as error:
                    self._outage.lost("renewing a task's lease", error)
                    continue
                self._outage.back()
                if renewed:
                    task.lease_ends = asked_at + self._lease
                else:
                    with task_logging(task.id):
                        logging.getLogger(__name__).warning(
                            "Task %s lost its lease (it was failed as stopped): asking it to stop",
                            task.id,
                        )
                    task.stop()
