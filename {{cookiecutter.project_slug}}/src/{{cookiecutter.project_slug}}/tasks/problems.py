"""Problem details (RFC 9457): the JSON shape of every error this service gives."""

from __future__ import annotations

import http
import json
from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

from flask import Response
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response as WerkzeugResponse

PROBLEM_MIMETYPE = "application/problem+json"


class Problem(TypedDict):
    """An RFC 9457 problem with no type of its own: ``title`` is the status's phrase."""

    type: str
    title: str
    status: int
    detail: str
    # What was wrong with each part of a request that did not validate.
    errors: NotRequired[Any]


def problem(status: int, detail: str, title: str | None = None) -> Problem:
    """The problem of ``status`` (its title is the status's phrase) saying ``detail``."""
    if title is None:
        title = http.HTTPStatus(status).phrase
    return {"type": "about:blank", "title": title, "status": status, "detail": detail}


CANCELLED_PROBLEM = problem(409, "The task was cancelled before it finished.")


def answer_too_large_problem(limit: int) -> Problem:
    """The problem of a task whose view answered more than it may keep."""
    return problem(
        500,
        f"The task's answer was larger than TASK_MAX_ANSWER_BYTES ({limit} bytes):"
        " nothing of it was kept.",
    )


def problem_for_exception(error: BaseException | None) -> Problem:
    """The problem a raised exception stands for; never its text or traceback."""
    if not isinstance(error, HTTPException) or error.code is None:
        error = InternalServerError()
    code = error.code or 500
    return problem(code, error.description or error.name, title=error.name)


def problem_response(body: Problem, headers: Mapping[str, str] | None = None) -> Response:
    """A response carrying the problem ``body`` with its own status code."""
    return Response(
        json.dumps(body),
        status=body["status"],
        headers=headers,
        mimetype=PROBLEM_MIMETYPE,
    )


def http_error_handler(error: HTTPException) -> WerkzeugResponse:
    """Flask error handler: answer every HTTP error as a problem.

    The error's own headers (``Allow`` on a 405, ``Retry-After`` on a 503)
    are kept.
    """
    response = error.get_response()
    response.set_data(json.dumps(problem_for_exception(error)))
    response.mimetype = PROBLEM_MIMETYPE
    return response
