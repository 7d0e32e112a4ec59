"""The routes, written with flask-smorest: task status, probes, metrics, and the API's documents.

``init_app`` makes the app's ``Api`` (``openapi.ProblemApi``): it serves the
OpenAPI document at ``/docs/openapi.json`` and Swagger UI at ``/docs/``.
Register a blueprint of your own there, so that it is documented too.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.typing import ResponseReturnValue
from flask.views import MethodView

from .openapi import (
    CANCEL_OPERATION,
    METRICS_MIMETYPE,
    METRICS_TOKEN_SCHEME,
    POLL_HEADER_NAMES,
    STATUS_OPERATION,
    Blueprint,
    Decorator,
    Doc,
    ProblemApi,
    ref,
)
from .schemas import HealthSchema, ProblemSchema, TaskMonitorSchema
from .tasks import STATUS_RULE_OPTIONS, STATUS_RULES, task_engine
from .tasks.problems import PROBLEM_MIMETYPE

blp = Blueprint("tasks", __name__, description="The tasks that `@async_api` operations start.")

TASK_HEADERS: dict[str, Doc] = {"Task-Status": ref("headers", "Task-Status")}
POLL_HEADERS = {name: ref("headers", name) for name in POLL_HEADER_NAMES}
RETRY_HEADERS = {"Retry-After": ref("headers", "Retry-After")}
AUTHENTICATE = {"WWW-Authenticate": ref("headers", "WWW-Authenticate")}


def problem(
    status_code: int, description: str, headers: dict[str, Doc] | None = None
) -> Decorator[Any]:
    """Document a problem answer."""
    return blp.alt_response(
        status_code,
        schema=ProblemSchema,
        content_type=PROBLEM_MIMETYPE,
        description=description,
        headers=headers,
    )


UNKNOWN = "No such task: it never existed, it expired, or it is someone else's."
UNAVAILABLE = "The task store cannot be reached: try again after Retry-After seconds."


class TaskStatus(MethodView):
    @blp.doc(operationId=STATUS_OPERATION)
    @blp.alt_response(
        200,
        schema=TaskMonitorSchema,
        description="Done: the answer of the operation that started the task (each such"
        " operation's 202 says what it is), or, for a cancelled task, its monitor.",
        headers=TASK_HEADERS,
        success=True,
    )
    @blp.alt_response(
        202,
        schema=TaskMonitorSchema,
        description="Still queued or running: poll again after Retry-After seconds.",
        headers=POLL_HEADERS,
        success=True,
    )
    @problem(404, UNKNOWN)
    @problem(500, "The task failed with an unexpected error.", TASK_HEADERS)
    @problem(503, UNAVAILABLE, RETRY_HEADERS)
    def get(self, task_id: str = "") -> ResponseReturnValue:
        """Poll a task: 202 while it works, then its own answer."""
        return task_engine().status_response(task_id)

    @blp.doc(operationId=CANCEL_OPERATION)
    @blp.alt_response(
        200,
        schema=TaskMonitorSchema,
        description="The task was queued: it is cancelled and will never run.",
        headers=TASK_HEADERS,
        success=True,
    )
    @blp.alt_response(
        202,
        schema=TaskMonitorSchema,
        description="The task is running: it is asked to stop, and ends cancelled when it does.",
        headers=POLL_HEADERS,
        success=True,
    )
    @blp.alt_response(
        204,
        description="The task was done: it is forgotten. Task-Status says how it ended.",
        headers=TASK_HEADERS,
        success=True,
    )
    @problem(404, UNKNOWN)
    @problem(503, UNAVAILABLE, RETRY_HEADERS)
    def delete(self, task_id: str = "") -> ResponseReturnValue:
        """Cancel a task, or forget a finished one."""
        return task_engine().cancel_response(task_id)


class Liveness(MethodView):
    @blp.doc(operationId="get_liveness")
    @blp.response(
        200,
        HealthSchema,
        description="The process runs. Nothing outside it is asked: a liveness probe.",
    )
    def get(self) -> ResponseReturnValue:
        """Whether the process runs (a liveness probe: restart it if not)."""
        return task_engine().liveness_response()


def readiness_answers(view: Any) -> Any:
    """Document a readiness probe's answers."""
    ok = blp.response(
        200, HealthSchema, description="Up, and the task store answers (the queue may be full)."
    )
    unavailable = blp.alt_response(
        503,
        schema=HealthSchema,
        description="The task store cannot be reached.",
        headers=RETRY_HEADERS,
    )
    return ok(unavailable(view))


class Readiness(MethodView):
    @blp.doc(operationId="get_readiness")
    @readiness_answers
    def get(self) -> ResponseReturnValue:
        """Whether the service can take and answer tasks (a readiness probe)."""
        return task_engine().readiness_response()


class Health(MethodView):
    @blp.doc(operationId="get_health")
    @readiness_answers
    def get(self) -> ResponseReturnValue:
        """Whether the service can take and answer tasks: ``/readyz``'s first name."""
        return task_engine().readiness_response()


class Metrics(MethodView):
    @blp.doc(operationId="get_metrics", security=[{METRICS_TOKEN_SCHEME: []}, {}])
    @blp.response(
        200,
        content_type=METRICS_MIMETYPE,
        description="The task metrics, in the Prometheus text format (OpenMetrics when"
        " the client asks for it).",
    )
    @problem(401, "METRICS_TOKEN is set, and this request does not bear it.", AUTHENTICATE)
    def get(self) -> ResponseReturnValue:
        """Task metrics for Prometheus: counts, waits and run times, never a task's data."""
        return task_engine().metrics_response()


NO_TASK_ID_RULE, TASK_STATUS_RULE = STATUS_RULES
blp.route(TASK_STATUS_RULE, **STATUS_RULE_OPTIONS)(TaskStatus)
blp.route("/livez")(Liveness)
blp.route("/readyz")(Readiness)
blp.route("/health")(Health)
blp.route("/metrics")(Metrics)


def init_app(app: Flask) -> None:
    api = ProblemApi(app)
    api.register_blueprint(blp)
    # A status URL with no id answers 404 like any unknown id. It is no
    # operation of its own, so it is routed on the app, out of the document.
    no_task_id = TaskStatus.as_view("no_task_id")
    app.add_url_rule(NO_TASK_ID_RULE, view_func=no_task_id, **STATUS_RULE_OPTIONS)
