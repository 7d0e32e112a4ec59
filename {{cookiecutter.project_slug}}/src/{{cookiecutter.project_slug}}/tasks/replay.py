"""Run a task: replay its request through the app, as Flask would, and keep the answer.

Every backend runs its tasks through ``run_task``, so that a view answers the
same way whichever backend runs it: the app's ``before_request`` functions,
the REST layer's own response making and the error handlers all apply.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from flask import Flask, got_request_exception
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import InternalServerError

from .backend import FAILED, SUCCEEDED
from .context import running_task
from .problems import Problem, answer_too_large_problem, problem_for_exception, problem_response
from .snapshot import AnswerTooLarge, ResponseSnapshot

if TYPE_CHECKING:
    from .backend import RunningTask
    from .snapshot import RequestSnapshot

# Whether this Flask's dispatch methods take the request's context (3.2 on).
_DISPATCH_TAKES_CONTEXT = "ctx" in inspect.signature(Flask.preprocess_request).parameters


class Outcome(NamedTuple):
    """How a task ended: its status, the view's answer and, if it failed, the problem."""

    status: str
    response: ResponseSnapshot | None
    error: Problem | None


def run_task(app: Flask, task: RunningTask, request: RequestSnapshot) -> Outcome:
    """Run the view of ``request`` as ``task`` (``current_task`` inside it)."""
    token = running_task.set(task)
    try:
        return _replay(app, request)
    except AnswerTooLarge as too_large:
        app.logger.warning("Task %s failed: %s (TASK_MAX_ANSWER_BYTES)", task.id, too_large)
        return Outcome(FAILED, None, answer_too_large_problem(too_large.limit))
    except BaseException:
        # _replay turns every Exception into an answer; this is SystemExit
        # or the like. The task must still end, and the worker go on.
        app.logger.exception(
            "Task %s was stopped before it finished (its process is being stopped, or its"
            " code exited)",
            task.id,
        )
        return Outcome(FAILED, None, problem_for_exception(None))
    finally:
        running_task.reset(token)


def _replay(app: Flask, request: RequestSnapshot) -> Outcome:
    """Run the request again, as Flask would, short of ``after_request``.

    Those run on each poll instead, on the response rebuilt for it.
    """
    max_bytes: int = app.config["TASK_MAX_ANSWER_BYTES"]
    with app.request_context(request.to_environ()) as context:
        flask = _Dispatch(app, context)
        try:
            try:
                rv = flask.preprocess_request()
                if rv is None:
                    rv = flask.dispatch_request()
                status, error = SUCCEEDED, None
            except Exception as raised:
                status, error = FAILED, problem_for_exception(raised)
                rv = flask.handle_user_exception(raised)
            answer = ResponseSnapshot.capture(app.make_response(rv), status, max_bytes)
            return Outcome(status, answer, error)
        except AnswerTooLarge:
            raise  # the view did its work; its answer is what cannot be kept
        except Exception as unhandled:
            # As Flask's handle_exception does: error monitors (Sentry, say)
            # listen for this signal.
            got_request_exception.send(app, _async_wrapper=app.ensure_sync, exception=unhandled)
            flask.log_exception()
            answer = _server_error(flask, unhandled, max_bytes)
            return Outcome(FAILED, answer, problem_for_exception(unhandled))


def _server_error(flask: _Dispatch, error: Exception, max_bytes: int) -> ResponseSnapshot:
    """The app's own 500 answer, as Flask would give it for ``error``."""
    try:
        rv = flask.handle_user_exception(InternalServerError(original_exception=error))
        return ResponseSnapshot.capture(flask.app.make_response(rv), FAILED, max_bytes)
    except Exception:
        flask.log_exception()
        fallback = problem_response(problem_for_exception(error))
        return ResponseSnapshot.capture(fallback, FAILED, max_bytes)


class _Dispatch:
    """Flask's request dispatch steps for one request, called as this Flask wants them.

    Flask 3.2 hands the request's context to them as their first argument
    (``preprocess_request(ctx)``); Flask 3.1 finds it itself.
    """

    def __init__(self, app: Flask, context: object) -> None:
        self.app = app
        self._context = (context,) if _DISPATCH_TAKES_CONTEXT else ()

    def _call(self, step: Callable[..., Any], *args: object) -> Any:
        return step(*self._context, *args)

    def preprocess_request(self) -> ResponseReturnValue | None:
        rv: ResponseReturnValue | None = self._call(self.app.preprocess_request)
        return rv

    def dispatch_request(self) -> ResponseReturnValue:
        rv: ResponseReturnValue = self._call(self.app.dispatch_request)
        return rv

    def handle_user_exception(self, error: Exception) -> ResponseReturnValue:
        rv: ResponseReturnValue = self._call(self.app.handle_user_exception, error)
        return rv

    def log_exception(self) -> None:
        """Log the exception being handled, as Flask does for an unhandled one."""
        self._call(self.app.log_exception, sys.exc_info())
