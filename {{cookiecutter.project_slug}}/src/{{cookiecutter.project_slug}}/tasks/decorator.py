"""``async_api``: the decorator that turns a view into a background task."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import current_app, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from .context import running_task

# Where the app keeps its task engine: ``app.extensions[EXTENSION_KEY]``.
EXTENSION_KEY = "task_engine"
# The attribute that marks a view function as an ``async_api`` one.
ASYNC_MARK = "async_api"

View = TypeVar("View", bound=Callable[..., Any])


def async_api(view: View) -> View:
    """Run ``view`` as a background task and answer ``202 Accepted`` at once.

    Works on a view function, a ``MethodView`` method or a REST-layer resource
    method, ``async def`` ones included, and keeps the view's type. The task
    replays the whole request through the app, so the ``before_request``
    functions, the REST layer's own response making and the error handlers
    all apply as they would synchronously; inside that replay this wrapper
    steps aside and runs ``view`` itself, as Flask would (``ensure_sync``).
    """

    @functools.wraps(view)
    def submit_or_run(*args: Any, **kwargs: Any) -> Any:
        if running_task.get() is not None:
            return current_app.ensure_sync(view)(*args, **kwargs)
        accepted = current_app.extensions[EXTENSION_KEY].submit()
        if _dispatched_directly(submit_or_run):
            return accepted
        # Decorators above this one (a REST layer's response serialising,
        # pagination, ETags) expect the view's own return value and would
        # mangle the 202: raise it past them, as ``abort(response)`` would.
        raise Submitted(accepted)

    setattr(submit_or_run, ASYNC_MARK, True)  # lets the engine find async views before they run
    return cast(View, submit_or_run)


def _dispatched_directly(wrapper: Callable[..., Any]) -> bool:
    """Whether Flask, a ``MethodView`` or a resource calls ``wrapper`` itself.

    Then the 202 can simply be returned: nothing stands between the two
    that would read it as the view's value, and no exception has to travel.
    """
    view_function = current_app.view_functions.get(request.endpoint or "")
    if view_function is wrapper:
        return True
    view_class = getattr(view_function, "view_class", None)
    # A resource's method_decorators wrap each method where we cannot see.
    if view_class is None or getattr(view_class, "method_decorators", None):
        return False
    return _handler(view_class, request.method) is wrapper


def _handler(view_class: type, method: str) -> object:
    """The method of a class-based view that answers ``method``, as Flask finds it."""
    handler = getattr(view_class, method.lower(), None)
    if handler is None and method == "HEAD":
        handler = getattr(view_class, "get", None)
    return handler


def is_async_view(view_function: Callable[..., Any], method: str) -> bool:
    """Whether ``method`` on the endpoint's ``view_function`` runs as a task.

    A plain function carries the mark itself; a class-based view (a
    ``MethodView``, a REST layer's resource) carries it on the method of its
    ``view_class``.
    """
    if getattr(view_function, ASYNC_MARK, False):
        return True
    view_class = getattr(view_function, "view_class", None)
    if view_class is None:
        return False
    return bool(getattr(_handler(view_class, method), ASYNC_MARK, False))


class Submitted(HTTPException):
    """The submit's ``202``, raised past the decorators above ``async_api``.

    An HTTP exception that carries its response, as ``abort(response)``
    raises: the engine's error handler answers it, and so does any REST
    layer that handles HTTP errors itself.
    """

    code = 202

    def __init__(self, response: Response) -> None:
        super().__init__(response=response)
