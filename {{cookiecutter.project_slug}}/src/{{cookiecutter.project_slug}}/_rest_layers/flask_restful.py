"""The routes, written with flask-restful: task status and health."""

from flask_restful import Api, Resource

from .tasks import STATUS_RULE_OPTIONS, STATUS_RULES, task_engine


class ProblemApi(Api):
    """An ``Api`` that leaves errors to the app's own handlers.

    flask-restful would answer errors in its own ``{"message": ...}`` shape;
    this service answers every error as ``application/problem+json``, from
    one handler, whichever layer raised it.
    """

    def handle_error(self, e):
        raise e


class TaskStatus(Resource):
    """Poll a task (``GET``) or cancel it (``DELETE``)."""

    def get(self, task_id=""):
        return task_engine().status_response(task_id)

    def delete(self, task_id=""):
        return task_engine().cancel_response(task_id)


class Health(Resource):
    def get(self):
        return task_engine().health_response()


def init_app(app):
    api = ProblemApi(app)
    api.add_resource(Health, "/health")
    api.add_resource(TaskStatus, *STATUS_RULES, **STATUS_RULE_OPTIONS)
