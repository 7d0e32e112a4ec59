"""The routes, written with plain Flask: task status, probes and metrics."""

from flask import Blueprint, Flask
from flask.views import MethodView
from werkzeug.wrappers import Response

from .tasks import STATUS_RULE_OPTIONS, STATUS_RULES, task_engine

bp = Blueprint("api", __name__)


class TaskStatus(MethodView):
    """Poll a task (``GET``) or cancel it (``DELETE``)."""

    def get(self, task_id: str = "") -> Response:
        return task_engine().status_response(task_id)

    def delete(self, task_id: str = "") -> Response:
        return task_engine().cancel_response(task_id)


@bp.get("/livez")
def liveness() -> tuple[dict[str, str], int, dict[str, str]]:
    return task_engine().liveness_response()


@bp.get("/readyz")
@bp.get("/health")  # readiness's first name
def readiness() -> tuple[dict[str, str], int, dict[str, str]]:
    return task_engine().readiness_response()


@bp.get("/metrics")
def metrics() -> Response:
    return task_engine().metrics_response()


task_status = TaskStatus.as_view("task_status")
for rule in STATUS_RULES:
    bp.add_url_rule(rule, view_func=task_status, **STATUS_RULE_OPTIONS)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
