"""The example: any path becomes a task that works a while, reporting progress, then answers.

To remove it, delete this file and ``tests/test_example.py``, and the two
lines of ``app.py`` that name ``example``.
"""

import time

from flask import Blueprint, Flask, current_app
from flask_restful import Resource

from .routes import ProblemApi
from .settings import ConfigError
from .tasks import async_api, current_task

STEPS = 10
# Seconds the example works: the setting EXAMPLE_TASK_SECONDS.
DEFAULT_SECONDS = 10


class Answer(Resource):
    """Any path, worked on in the background."""

    @async_api
    def get(self, path: str = "") -> str:
        return work_on(path)


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
    bp = Blueprint("example", __name__)
    ProblemApi(bp).add_resource(Answer, "/", "/<path:path>")
    app.register_blueprint(bp)
