"""Task metrics for Prometheus: their names, and the ``/metrics`` answer.

Every backend exports these names, so that dashboards and alerts work on
any project made from this template (a backend may add its own); where the figures are kept is the
backend's business (``tasks/backends/<backend>/metrics.py``). Endpoint labels
are the app's endpoint names, never URLs, so there are as many series as
routes.
"""

from __future__ import annotations

import bisect
import hmac
from collections.abc import Iterator, Mapping
from typing import NamedTuple

from flask import Request, Response
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .problems import problem, problem_response

# Upper bounds, in seconds, of the histograms' buckets: 5 ms to an hour.
BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)
# The histograms' ``le`` labels, as prometheus_client writes them.
BUCKET_LABELS = [*map(floatToGoString, BUCKETS), "+Inf"]
# The one reason a submit is refused that a metric counts: the queue was full.
BUSY = "busy"


class Name(NamedTuple):
    """A metric's name (without a counter's ``_total``) and its help text."""

    name: str
    help: str


SUBMITTED = Name("async_api_tasks_submitted", "Tasks submitted, by endpoint.")
FINISHED = Name("async_api_tasks_finished", "Tasks finished, by endpoint and final status.")
REFUSED = Name(
    "async_api_tasks_refused", "Submits refused with 503, by reason (busy: the queue was full)."
)
QUEUED = Name("async_api_tasks_queued", "Tasks waiting for a worker now.")
RUNNING = Name("async_api_tasks_running", "Tasks running now.")
OLDEST_QUEUED = Name(
    "async_api_oldest_queued_seconds", "Seconds the oldest waiting task has waited (0: none)."
)
QUEUED_SECONDS = Name(
    "async_api_task_queued_seconds",
    "Seconds from submit until a worker took the task (or it was cancelled), by endpoint.",
)
RUN_SECONDS = Name("async_api_task_run_seconds", "Seconds a task ran, by endpoint.")

# Counts by figure, endpoint and detail, as backends keep them:
# counts["submitted"][endpoint][""], counts["finished"][endpoint][status],
# counts["refused"][""][BUSY]; for the histograms ("queued", "run"),
# counts[...][endpoint][str(n)] for the n-th bucket alone (1 is BUCKETS[0],
# the last +Inf) and counts[...][endpoint]["sum"] in milliseconds.
Counts = Mapping[str, Mapping[str, Mapping[str, float]]]


def bucket_number(seconds: float) -> str:
    """The bucket ``seconds`` falls in alone, as ``Counts`` names it."""
    return _BUCKET_NUMBERS[bisect.bisect_left(BUCKETS, seconds)]


_BUCKET_NUMBERS = [str(number) for number in range(1, len(BUCKETS) + 2)]


class Gauges(NamedTuple):
    """The figures of now: tasks queued and running, and the oldest queued one's age."""

    queued: int
    running: int
    oldest_queued_seconds: float


def task_metrics(counts: Counts, gauges: Gauges) -> Iterator[Metric]:
    """The metrics every backend exports, from its counts and gauges."""
    submitted = CounterMetricFamily(*SUBMITTED, labels=["endpoint"])
    for endpoint, by_detail in sorted(counts.get("submitted", {}).items()):
        submitted.add_metric([endpoint], by_detail.get("", 0))
    finished = CounterMetricFamily(*FINISHED, labels=["endpoint", "status"])
    for endpoint, by_status in sorted(counts.get("finished", {}).items()):
        for status, value in sorted(by_status.items()):
            finished.add_metric([endpoint, status], value)
    refused = CounterMetricFamily(*REFUSED, labels=["reason"])
    refused.add_metric([BUSY], counts.get("refused", {}).get("", {}).get(BUSY, 0))
    yield from (submitted, finished, refused)
    yield _histogram(QUEUED_SECONDS, counts.get("queued", {}))
    yield _histogram(RUN_SECONDS, counts.get("run", {}))
    yield GaugeMetricFamily(*QUEUED, value=gauges.queued)
    yield GaugeMetricFamily(*RUNNING, value=gauges.running)
    yield GaugeMetricFamily(*OLDEST_QUEUED, value=gauges.oldest_queued_seconds)


def _histogram(name: Name, by_endpoint: Mapping[str, Mapping[str, float]]) -> HistogramMetricFamily:
    """A histogram of each endpoint, from its buckets counted alone and its sum in ms."""
    family = HistogramMetricFamily(*name, labels=["endpoint"])
    for endpoint, fields in sorted(by_endpoint.items()):
        buckets, total = [], 0.0
        for number, label in zip(_BUCKET_NUMBERS, BUCKET_LABELS, strict=True):
            total += fields.get(number, 0)
            buckets.append((label, total))
        family.add_metric([endpoint], buckets, fields.get("sum", 0) / 1000)
    return family


UNAUTHORIZED_PROBLEM = problem(
    401, "The metrics need the token of METRICS_TOKEN: Authorization: Bearer <token>."
)


def metrics_response(collector: Collector, token: str | None, request: Request) -> Response:
    """The figures of ``collector`` as Prometheus asks for them; ``401`` without ``token``."""
    if token is not None and not _bears(request, token):
        return problem_response(UNAUTHORIZED_PROBLEM, {"WWW-Authenticate": "Bearer"})
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encode(collector), content_type=content_type)


def _bears(request: Request, token: str) -> bool:
    """Whether ``request`` carries ``Authorization: Bearer <token>`` (compared in constant time)."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())
