"""Task metrics for Prometheus: their names, and the ``/metrics`` answer.

Every backend exports these names, so that dashboards and alerts work on
any project made from this template (a backend may add its own); where the figures are kept is the
backend's business (``tasks/backends/<backend>/metrics.py``). Endpoint labels
are the app's endpoint names, never URLs, so there are as many series as
routes.
"""

from __future__ import annotations

import hmac
from typing import NamedTuple

from flask import Request, Response
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

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
