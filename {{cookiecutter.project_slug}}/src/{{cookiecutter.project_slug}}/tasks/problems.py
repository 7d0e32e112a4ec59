"""Problem details (RFC 9457): the JSON shape of every error this service gives."""

import json

from flask import Response
from werkzeug.exceptions import HTTPException, InternalServerError

PROBLEM_MIMETYPE = "application/problem+json"


def problem(status, title, detail):
    """An RFC 9457 problem with no type of its own: ``title`` is the status's phrase."""
    return {"type": "about:blank", "title": title, "status": status, "detail": detail}


CANCELLED_PROBLEM = problem(409, "Conflict", "The task was cancelled before it finished.")


def problem_for_exception(error):
    """The problem a raised exception stands for; never its text or traceback."""
    if not isinstance(error, HTTPException):
        error = InternalServerError()
    return problem(error.code, error.name, error.description or error.name)


def problem_response(body, headers=None):
    """A response carrying the problem ``body`` with its own status code."""
    return Response(
        json.dumps(body),
        status=body["status"],
        headers=headers,
        mimetype=PROBLEM_MIMETYPE,
    )


def http_error_handler(error):
    """Flask error handler: answer every HTTP error as a problem.

    The error's own headers (``Allow`` on a 405, ``Retry-After`` on a 503)
    are kept.
    """
    response = error.get_response()
    response.set_data(json.dumps(problem_for_exception(error)))
    response.mimetype = PROBLEM_MIMETYPE
    return response
