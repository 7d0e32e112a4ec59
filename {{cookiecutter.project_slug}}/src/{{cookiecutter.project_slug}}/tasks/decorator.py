"""``async_api``: the decorator that turns a view into a background task."""

import functools

from flask import current_app

from .context import running_task

# Where the app keeps its task engine: ``app.extensions[EXTENSION_KEY]``.
EXTENSION_KEY = "async_api"


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
        # Raised, not returned: decorators above this one (a REST layer's
        # response serialising, pagination, ETags) expect the view's own
        # return value, and would mangle the 202. The engine answers it.
        raise Submitted(current_app.extensions[EXTENSION_KEY].submit())

    submit_or_run.async_api = True  # lets the engine find async views before they run
    return submit_or_run


def is_async_view(view_function, method):
    """Whether ``method`` on the endpoint's ``view_function`` runs as a task.

    A plain function carries the mark itself; a class-based view (a
    ``MethodView``, a REST layer's resource) carries it on the method of its
    ``view_class``.
    """
    if getattr(view_function, "async_api", False):
        return True
    view_class = getattr(view_function, "view_class", None)
    if view_class is None:
        return False
    handler = getattr(view_class, method.lower(), None)
    if handler is None and method == "HEAD":
        handler = getattr(view_class, "get", None)
    return getattr(handler, "async_api", False)


class Submitted(Exception):
    """Carries the submit's answer past the decorators above ``async_api``."""

    def __init__(self, response):
        super().__init__()
        self.response = response
