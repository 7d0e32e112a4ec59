"""The Celery backend's task metrics: the whole deployment's, kept in Redis.

The scripts that change a task's state count it as they do (``scripts.py``),
so a task costs no round trip more; ``/metrics`` reads every figure in one
(``RedisMetrics``). Any web process answers the same figures, and they
outlive restarts of web processes and workers. Each worker says it is alive
every third of a lease, idle or not (``heartbeat_step``).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from celery import bootsteps
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from ...backend import Unavailable
from ...metrics import Gauges, Name, task_metrics
from .outage import Outage
from .store import RedisTaskStore

# This backend's own: workers can be lost, and counted.
LOST = Name(
    "async_api_tasks_lost",
    "Tasks failed because their worker stopped (its lease lapsed), by endpoint.",
)
WORKERS = Name("async_api_workers", "Workers that said they were alive within the last lease.")


class RedisMetrics:
    """Reads the metrics from Redis when asked; a prometheus_client ``Collector``.

    Raises ``Unavailable`` when Redis does not answer: ``/metrics`` says so.
    """

    def __init__(self, store: RedisTaskStore) -> None:
        self._store = store

    def collect(self) -> Iterable[Metric]:
        figures = self._store.figures()
        # name -> endpoint -> detail -> count, from fields "<name>|<endpoint>|<detail>".
        counts: defaultdict[str, defaultdict[str, dict[str, float]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        for field, value in figures.counts.items():
            name, _, rest = field.partition("|")
            endpoint, _, detail = rest.rpartition("|")
            counts[name][endpoint][detail] = value
        gauges = Gauges(figures.queued, figures.running, figures.oldest_queued_ms / 1000)
        yield from task_metrics(counts, gauges)
        lost = CounterMetricFamily(*LOST, labels=["endpoint"])
        for endpoint, by_detail in sorted(counts["lost"].items()):
            lost.add_metric([endpoint], by_detail.get("", 0))
        yield lost
        yield GaugeMetricFamily(*WORKERS, value=figures.workers)


def heartbeat_step(
    store: RedisTaskStore, lease: float, outage: Outage
) -> type[bootsteps.StartStopStep]:
    """A step of the Celery worker that keeps it counted alive (``async_api_workers``).

    It beats on the worker's own timer, in the worker's main process: idle
    or busy, a worker is alive as long as it beats within a lease. A worker
    that stops leaves the count at once; a lost one, within a lease. A beat
    that cannot reach Redis says so through ``outage``: an idle worker, too,
    says once that Redis is away and once that it is back.
    """

    class Heartbeat(bootsteps.StartStopStep):
        requires = ("celery.worker.components:Timer",)

        def __init__(self, worker: Any, **kwargs: Any) -> None:
            super().__init__(worker, **kwargs)
            self._beating: Any = None

        def start(self, worker: Any) -> None:
            def beat() -> None:
                try:
                    store.heartbeat(worker.hostname, lease)
                except Unavailable as error:
                    outage.lost("the worker's heartbeat", error)
                else:
                    outage.back()

            beat()
            self._beating = worker.timer.call_repeatedly(lease / 3, beat)

        def stop(self, worker: Any) -> None:
            if self._beating is not None:
                self._beating.cancel()
                self._beating = None
                _quietly(lambda: store.leave(worker.hostname))()

        def terminate(self, worker: Any) -> None:
            self.stop(worker)  # a cold shutdown leaves as a warm one does

    return Heartbeat


def _quietly(call: Callable[[], None]) -> Callable[[], None]:
    """``call``, which does nothing while Redis is away: the count of workers says so."""

    def called() -> None:
        with contextlib.suppress(Unavailable):
            call()

    return called
