"""The service with the tests' own views, for the servers tests start.

``gunicorn -c gunicorn.conf.py served_app:app``, from the project's folder with
``tests`` on ``PYTHONPATH``.
"""

from helpers import add_body_view, add_failing_view, add_nap_view

from {{ cookiecutter.project_slug }} import create_app

app = create_app()
add_nap_view(app)
add_body_view(app)
add_failing_view(app)


@app.get("/test/held")
def held():
    """How many requests this process holds for a task's end (``Prefer: wait``)."""
    return {"held": len(app.extensions["task_engine"].backend.waiters.task_ids)}
