"""The threads backend's task metrics: this process's own, in its memory.

Kept in a registry of the app's own, not prometheus_client's global one, so
that two apps in one process (tests make many) never count into each
other. The gauges are read from the pool when ``/metrics`` is asked, so a
task pays only for its counters and histograms.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric

from ...metrics import (
    BUCKETS,
    BUSY,
    FINISHED,
    OLDEST_QUEUED,
    QUEUED,
    QUEUED_SECONDS,
    REFUSED,
    RUN_SECONDS,
    RUNNING,
    SUBMITTED,
)
from .pool import WorkerPool
from .store import Task


class ThreadMetrics:
    """Counts the tasks of one app's backend; a prometheus_client ``Collector``."""

    def __init__(self, pool: WorkerPool[Task]) -> None:
        self._pool = pool
        self.registry = registry = CollectorRegistry(auto_describe=False)
        self._submitted = Counter(*SUBMITTED, ["endpoint"], registry=registry)
        self._finished = Counter(*FINISHED, ["endpoint", "status"], registry=registry)
        self._busy = Counter(*REFUSED, ["reason"], registry=registry).labels(BUSY)
        self._queued_seconds = Histogram(
            *QUEUED_SECONDS, ["endpoint"], registry=registry, buckets=BUCKETS
        )
        self._run_seconds = Histogram(
            *RUN_SECONDS, ["endpoint"], registry=registry, buckets=BUCKETS
        )
        Gauge(*QUEUED, registry=registry).set_function(lambda: pool.queued)
        Gauge(*RUNNING, registry=registry).set_function(lambda: pool.running)
        Gauge(*OLDEST_QUEUED, registry=registry).set_function(self._oldest_queued_seconds)

    def collect(self) -> Iterable[Metric]:
        """The figures, less the ``_created`` series prometheus_client adds.

        Without them the series are exactly those of a project on another
        backend, so that one dashboard reads both.
        """
        for metric in self.registry.collect():
            metric.samples = [
                sample for sample in metric.samples if sample.name != metric.name + "_created"
            ]
            yield metric

    def submitted(self, task: Task) -> None:
        self._submitted.labels(task.endpoint).inc()

    def refused(self) -> None:
        """A submit was refused: no room in the queue."""
        self._busy.inc()

    def started(self, task: Task) -> None:
        """``task`` left the queue for a worker."""
        assert task.started_at is not None, "the store marks a task started"
        self._queued_seconds.labels(task.endpoint).observe(
            max(0.0, task.started_at - task.created_at)
        )

    def ended(self, task: Task) -> None:
        """``task`` finished: ran, or left the queue without running (cancelled, or stopped)."""
        ended_at = task.updated_at  # a finished task's last change
        if task.started_at is None:
            self._queued_seconds.labels(task.endpoint).observe(max(0.0, ended_at - task.created_at))
        else:
            self._run_seconds.labels(task.endpoint).observe(max(0.0, ended_at - task.started_at))
        self._finished.labels(task.endpoint, task.status).inc()

    def _oldest_queued_seconds(self) -> float:
        oldest = self._pool.oldest()
        return 0.0 if oldest is None else max(0.0, time.time() - oldest.created_at)
