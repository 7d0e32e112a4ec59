"""The example: any path becomes a task that works a while, reporting progress, then answers.

To remove it, delete this file and ``tests/test_example.py``, and the two
lines of ``app.py`` that name ``example``.
"""

from __future__ import annotations

import time
from typing import Any

import marshmallow as ma
from flask import Flask, current_app
from flask.views import MethodView

from .openapi import Blueprint, api_of
from .settings import ConfigError
from .tasks import async_api, current_task

STEPS = 10
# Seconds the example works: the setting EXAMPLE_TASK_SECONDS.
DEFAULT_SECONDS = 10

blp = Blueprint("example", __name__, description="Any path, worked on in the background.")


# What /<path:path> takes: no line break (Flask's path converter stops at
# one), no leading slash, no "." or ".." segment (resolved before routing:
# ./status is /status), and none of the paths the service's other routes
# take (with the docs at their default place, /docs/).
PATH_PARAMETER: dict[str, Any] = {
    "in": "path",
    "name": "path",
    "description": "Any path that no other route of the service takes.",
    "schema": {
        "type": "string",
        "pattern": r"^(?![^\n]*\n)(?!(?:[^\n]*/)?\.\.?(?:/|$))"
        r"(?!(?:status(?:/|$)|health$|favicon\.ico$|docs/?$|docs/openapi\.json$|docs/swagger-ui/))"
        r"[^/]",
    },
}


class AnswerSchema(ma.Schema):
    answer = ma.fields.String(required=True, metadata={"example": "The answer is: hello/world"})


@blp.route("/", endpoint="root", defaults={"path": ""})
@blp.route("/<path:path>", parameters=[PATH_PARAMETER])
class Answer(MethodView):
    @blp.response(200, AnswerSchema, description="The answer about the path.")
    @blp.alt_response(404, description="The path holds a line break: no route takes it.")
    @async_api
    def get(self, path: str) -> dict[str, str]:
        """Work on the path for EXAMPLE_TASK_SECONDS, then answer about it."""
        return {"answer": work_on(path)}


def work_on(path: str) -> str:
    """Work for ``EXAMPLE_TASK_SECONDS``, reporting progress, then answer about ``path``."""
    pause = current_app.config["EXAMPLE_TASK_SECONDS"] / STEPS
    for step in range(1, STEPS + 1):
        # A running task is never stopped from outside: it checks now and
        # then whether it was cancelled, and stops itself.
        if current_task.cancelled:
            return f"Cancelled before step {step} of {STEPS}"
        time.sleep(pause)
        current_task.report(step * 100 // STEPS, f"step {step} of {STEPS}")
    return f"The answer is: {path}"


def init_app(app: Flask) -> None:
    """Serve the example, after checking its setting."""
    seconds = app.config.setdefault("EXAMPLE_TASK_SECONDS", DEFAULT_SECONDS)
    if type(seconds) not in (int, float) or not 0 < seconds < float("inf"):
        raise ConfigError(f"EXAMPLE_TASK_SECONDS must be a number > 0, got {seconds!r}")
    api_of(app).register_blueprint(blp)
