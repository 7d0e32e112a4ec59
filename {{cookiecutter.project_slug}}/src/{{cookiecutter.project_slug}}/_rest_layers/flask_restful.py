"""The routes, written with flask-restful: task status, probes and metrics."""

from flask import Flask
from flask_restful import Api, Resource
from werkzeug.wrappers import Response

from .tasks import STATUS_RULE_OPTIONS, STATUS_RULES, task_engine


class ProblemApi(Api):
    """An ``Api`` that leaves errors to the app's own handlers.

    flask-restful would answer errors in its own ``{"message": ...}`` shape;
    this service answers every error as ``application/problem+json``, from
    one handler, whichever layer raised it.
    """

    def _init_app(self, app: Flask) -> None:
        # flask-restful's own _init_app also routes every error of the app
        # through its handler first: a cost on every error (it matches the
        # URL again), and a call Flask 3.2 no longer makes that way. Only
        # the resources are registered here.
        for resource, urls, kwargs in self.resources:
            self._register_view(app, resource, *urls, **kwargs)


class TaskStatus(Resource):
    """Poll a task (``GET``) or cancel it (``DELETE``)."""

    def get(self, task_id: str = "") -> Response:
        return task_engine().status_response(task_id)

    def delete(self, task_id: str = "") -> Response:
        return task_engine().cancel_response(task_id)


class Liveness(Resource):
    def get(self) -> tuple[dict[str, str], int, dict[str, str]]:
        return task_engine().liveness_response()


class Readiness(Resource):
    def get(self) -> tuple[dict[str, str], int, dict[str, str]]:
        return task_engine().readiness_response()


class Metrics(Resource):
    def get(self) -> Response:
        return task_engine().metrics_response()


def init_app(app: Flask) -> None:
    api = ProblemApi(app)
    api.add_resource(Liveness, "/livez")
    api.add_resource(Readiness, "/readyz", "/health")  # /health: readiness's first name
    api.add_resource(Metrics, "/metrics")
    api.add_resource(TaskStatus, *STATUS_RULES, **STATUS_RULE_OPTIONS)
