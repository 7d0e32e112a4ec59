"""The routes, written with plain Flask: the example, task status, health."""

from flask import Blueprint
from flask.views import MethodView

from .example import work_on
from .tasks import STATUS_RULE_OPTIONS, STATUS_RULES, async_api, task_engine

bp = Blueprint("api", __name__)


class Answer(MethodView):
    """The example: any path, worked on in the background."""

    @async_api
    def get(self, path):
        return work_on(path)


class TaskStatus(MethodView):
    """Poll a task (``GET``) or cancel it (``DELETE``)."""

    def get(self, task_id=""):
        return task_engine().status_response(task_id)

    def delete(self, task_id=""):
        return task_engine().cancel_response(task_id)


@bp.get("/health")
def health():
    return task_engine().health_response()


answer = Answer.as_view("answer")
bp.add_url_rule("/", view_func=answer, defaults={"path": ""})
bp.add_url_rule("/<path:path>", view_func=answer)
task_status = TaskStatus.as_view("task_status")
for rule in STATUS_RULES:
    bp.add_url_rule(rule, view_func=task_status, **STATUS_RULE_OPTIONS)


def init_app(app):
    app.register_blueprint(bp)
