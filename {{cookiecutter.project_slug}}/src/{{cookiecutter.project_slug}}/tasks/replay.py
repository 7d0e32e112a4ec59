"""Run a task: replay its request through the app, as Flask would, and keep the answer.

Every backend runs its tasks through ``run_task``, so that a view answers the
same way whichever backend runs it: the app's ``before_request`` functions,
the REST layer's own response making and the error handlers all apply.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NamedTuple

from flask import Flask, got_request_exception
from werkzeug.exceptions import InternalServerError

from .backend import FAILED, SUCCEEDED
from .context import running_task
from .problems import problem_for_exception, problem_response
from .snapshot import ResponseSnapshot

if TYPE_CHECKING:
    from .backend import RunningTask
    from .snapshot import HeadCache, RequestSnapshot


class Outcome(NamedTuple):
    """How a task ended: its status, the view's answer and, if it failed, the problem."""

    status: str
    response: ResponseSnapshot | None
    error: dict | None


def run_task(
    app: Flask, task: RunningTask, request: RequestSnapshot, shared_heads: HeadCache | None = None
) -> Outcome:
    """Run the view of ``request`` as ``task`` (``current_task`` inside it)."""
    token = running_task.set(task)
    try:
        return _replay(app, request, shared_heads)
    except BaseException:
        # _replay turns every Exception into an answer; this is SystemExit
        # or the like. The task must still end, and the worker go on.
        app.logger.exception("Task %s was stopped by its own code", task.id)
        return Outcome(FAILED, None, problem_for_exception(None))
    finally:
        running_task.reset(token)


def _replay(app: Flask, request: RequestSnapshot, shared_heads: HeadCache | None) -> Outcome:
    """Run the request again, as Flask would, short of ``after_request``.

    Those run on each poll instead, on the response rebuilt for it.
    """
    with app.request_context(request.to_environ()):
        try:
            try:
                rv = app.preprocess_request()
                if rv is None:
                    rv = app.dispatch_request()
                status, error = SUCCEEDED, None
            except Exception as raised:
                status, error = FAILED, problem_for_exception(raised)
                rv = app.handle_user_exception(raised)
            answer = ResponseSnapshot.capture(app.make_response(rv), status, shared_heads)
            return Outcome(status, answer, error)
        except Exception as unhandled:
            # As Flask's handle_exception does: error monitors (Sentry, say)
            # listen for this signal.
            got_request_exception.send(app, _async_wrapper=app.ensure_sync, exception=unhandled)
            app.log_exception(sys.exc_info())
            return Outcome(
                FAILED,
                _server_error(app, unhandled, shared_heads),
                problem_for_exception(unhandled),
            )


def _server_error(app: Flask, error: Exception, shared_heads: HeadCache | None) -> ResponseSnapshot:
    """The app's own 500 answer, as Flask would give it for ``error``."""
    try:
        rv = app.handle_user_exception(InternalServerError(original_exception=error))
        return ResponseSnapshot.capture(app.make_response(rv), FAILED, shared_heads)
    except Exception:
        app.log_exception(sys.exc_info())
        return ResponseSnapshot.capture(
            problem_response(problem_for_exception(error)), FAILED, shared_heads
        )
