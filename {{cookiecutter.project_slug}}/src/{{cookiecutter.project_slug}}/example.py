"""The example task: work a while, reporting progress, then answer."""

import time

from flask import current_app

from .tasks import current_task

STEPS = 10


def work_on(path):
    """Work for ``EXAMPLE_TASK_SECONDS``, reporting progress, then answer about ``path``."""
    pause = current_app.config["EXAMPLE_TASK_SECONDS"] / STEPS
    for step in range(1, STEPS + 1):
        # Python cannot stop a thread from outside: a task checks now and then
        # whether it was cancelled, and stops itself.
        if current_task.cancelled:
            return f"Cancelled before step {step} of {STEPS}"
        time.sleep(pause)
        current_task.report(step * 100 // STEPS, f"step {step} of {STEPS}")
    return f"The answer is: {path}"
