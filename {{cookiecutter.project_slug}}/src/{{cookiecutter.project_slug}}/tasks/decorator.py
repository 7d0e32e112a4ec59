"""``async_api``: the decorator that turns a view into a background task."""

import functools

from flask import current_app

from .context import running_task
from .engine import EXTENSION_KEY


def async_api(view):
    """Run ``view`` as a background task and answer ``202 Accepted`` at once.

    Works on a view function, a ``MethodView`` method or a REST-layer resource
    method. The task replays the whole request through the app, so the
    ``before_request`` functions, the REST layer's own response making and the
    error handlers all apply as they would synchronously; inside that replay
    this wrapper steps aside and calls ``view`` itself.
    """

    @functools.wraps(view)
    def submit_or_run(*args, **kwargs):
        if running_task.get() is not None:
            return view(*args, **kwargs)
        return current_app.extensions[EXTENSION_KEY].submit()

    return submit_or_run
