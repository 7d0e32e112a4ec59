"""The task engine: one per app, in ``app.extensions["task_engine"]``.

It answers HTTP and knows nothing of REST layers: a layer routes
``STATUS_RULES`` to ``status_response`` and ``cancel_response``, ``/livez``
to ``liveness_response``, ``/readyz`` and ``/health`` to
``readiness_response``, and ``/metrics`` to ``metrics_response``;
``async_api`` views call ``submit``. Where
tasks are kept and run is the backend's business (``tasks/backends``).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from flask import Flask, Request, Response, current_app, request
from werkzeug.exceptions import (
    BadRequest,
    ClientDisconnected,
    HTTPException,
    RequestedRangeNotSatisfiable,
    RequestEntityTooLarge,
)
from werkzeug.routing import BaseConverter
from werkzeug.wrappers import Response as WerkzeugResponse

from .backend import (
    CANCELLED,
    QUEUED,
    RUNNING,
    Busy,
    Idempotency,
    TaskBackend,
    TaskState,
    Unavailable,
)
from .backends import Backend
from .decorator import EXTENSION_KEY, Submitted, is_async_view
from .metrics import metrics_response
from .monitor import monitor_response
from .owners import (
    MAX_IDEMPOTENCY_KEY_LENGTH,
    authorization_owner,
    fingerprint,
    owner_hash,
    same_request,
    valid_idempotency_key,
)
from .paths import DotSegmentsRemoved
from .problems import Problem, http_error_handler, problem, problem_response
from .snapshot import RequestSnapshot
from .waiting import requested_wait

# Every URL under /status is the status resource's: a malformed one (no id, a
# trailing slash, slashes inside) must answer 404, not fall through to a
# catch-all route and start a task. Layers add these rules with
# STATUS_RULE_OPTIONS, so that Werkzeug does not redirect doubled slashes.
STATUS_RULES = ("/status", "/status/<task_id:task_id>")
STATUS_RULE_OPTIONS: dict[str, Any] = {"merge_slashes": False}

# Names the owner of a task from its submitting request: a user id, say.
OwnerLoader = Callable[[Request], object | None]

BUSY_PROBLEM = problem(
    503, "There is no room for another task now; try again after Retry-After seconds."
)
UNAVAILABLE_PROBLEM = problem(
    503, "The task store cannot be reached; try again after Retry-After seconds."
)
UNKNOWN_TASK_PROBLEM = problem(
    404, "There is no task with this id: it never existed, or it expired."
)
BAD_IDEMPOTENCY_KEY_PROBLEM = problem(
    400, f"An Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters long."
)
SHORT_BODY = "The request body was shorter than its Content-Length; nothing was started."
UNREADABLE_BODY = (
    "The request body could not be read whole (a malformed or cut chunked body);"
    " nothing was started."
)
IDEMPOTENCY_CONFLICT_PROBLEM = problem(
    409, "This Idempotency-Key was used for a different request (method, path, query or body)."
)


def task_engine(app: Flask | None = None) -> TaskEngine:
    """The task engine of ``app``, or of the current app."""
    engine: TaskEngine = (app or current_app).extensions[EXTENSION_KEY]
    return engine


class TaskIdConverter(BaseConverter):
    """Any text, slashes included: a malformed id reaches the status view."""

    regex = ".*"
    part_isolating = False


class TaskEngine:
    """Runs ``async_api`` views as tasks for one app and answers about them.

    One engine per app: ``TaskEngine(app)`` keeps its state on itself, and
    its tasks in the backend this project was made with.
    """

    app: Flask
    backend: TaskBackend
    retry_after: str

    def __init__(self, app: Flask | None = None) -> None:
        self._owner_loader: OwnerLoader = authorization_owner
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        self.app = app
        self.retry_after = str(app.config["TASK_RETRY_AFTER"])
        self.max_wait: int = app.config["TASK_MAX_WAIT"]
        # Places for requests held by "Prefer: wait": taken without blocking,
        # so that a request past the limit is answered at once.
        self._holding = threading.BoundedSemaphore(app.config["TASK_MAX_WAITING"])
        app.extensions[EXTENSION_KEY] = self
        # Before routing: /./status/x must reach the status rules, not a catch-all.
        app.wsgi_app = DotSegmentsRemoved(app.wsgi_app)  # type: ignore[method-assign]
        app.url_map.converters["task_id"] = TaskIdConverter
        app.url_value_preprocessor(self._read_body_early)
        app.register_error_handler(Submitted, Submitted.get_response)
        self.backend = Backend(app)

    def owner_loader(self, loader: OwnerLoader) -> OwnerLoader:
        """Decorator: set ``loader(request) -> str | None`` that names a task's owner.

        The default is the request's ``Authorization`` header. Return a user
        id, say, to let the same user poll from fresh credentials.
        """
        self._owner_loader = loader
        return loader

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop the backend; see the backend for what happens to its tasks."""
        self.backend.shutdown(timeout)

    # -- HTTP answers ---------------------------------------------------

    def submit(self) -> WerkzeugResponse:
        """Start the current request as a task and answer ``202 Accepted``.

        With ``Prefer: wait=N`` the answer is held until the task ends or N
        seconds pass: a task done by then answers what its first poll would.
        """
        submitted = _unproxied(request)
        owner = self._owner(submitted)
        snapshot = RequestSnapshot.capture(submitted)
        key = submitted.headers.get("Idempotency-Key")
        idempotency = None
        if key is not None:
            if not valid_idempotency_key(key):
                return problem_response(BAD_IDEMPOTENCY_KEY_PROBLEM)
            idempotency = Idempotency(owner, key, fingerprint(snapshot))
        try:
            task, started = self.backend.submit(
                owner, snapshot, idempotency, submitted.endpoint or ""
            )
        except Busy:
            return self._unavailable(BUSY_PROBLEM)
        except Unavailable:
            return self._unavailable(UNAVAILABLE_PROBLEM)
        if (
            idempotency is not None
            and not started
            and not same_request(task.fingerprint, idempotency.fingerprint)
        ):
            return problem_response(IDEMPOTENCY_CONFLICT_PROBLEM)
        try:
            held, waited = self._hold(task, owner)
        except Unavailable:
            # The task is made: say where it is, rather than a 503 that
            # would have the client submit it again.
            held, waited = task, None
        if waited is None or held is None or held.status in (QUEUED, RUNNING):
            answer: WerkzeugResponse = self._monitor(task if held is None else held, 202)
        else:
            answer = self._answer(held)
            answer.headers["Content-Location"] = f"{request.script_root}/status/{held.id}"
        return _preference_applied(answer, waited)

    def status_response(self, task_id: str) -> WerkzeugResponse:
        """Answer a poll: 202 while the task works, then what the view answered.

        With ``Prefer: wait=N`` a poll of a working task is held until the
        task ends or N seconds pass.
        """
        requester = self._requester()
        try:
            task = self.backend.get(task_id, requester)
            waited = None
            if task is not None:
                task, waited = self._hold(task, requester)
        except Unavailable:
            return self._unavailable(UNAVAILABLE_PROBLEM)
        if task is None:
            return problem_response(UNKNOWN_TASK_PROBLEM)
        return _preference_applied(self._answer(task), waited)

    def _answer(self, task: TaskState) -> WerkzeugResponse:
        """What a poll of ``task`` answers: its monitor while it works, then its end."""
        status = task.status
        if status in (QUEUED, RUNNING):
            return self._monitor(task, 202)
        answer = task.response
        if answer is not None:
            try:
                return answer.to_response(request)
            except RequestedRangeNotSatisfiable as error:
                # Every answer about a known task says where it stands.
                unsatisfiable = http_error_handler(error)
                unsatisfiable.headers["Task-Status"] = status
                return unsatisfiable
        if status == CANCELLED:
            return self._monitor(task, 200)
        if task.error is not None:
            return problem_response(task.error, {"Task-Status": status})
        return problem_response(UNKNOWN_TASK_PROBLEM)  # forgotten meanwhile

    def cancel_response(self, task_id: str) -> Response:
        """Answer ``DELETE``: cancel a queued task, stop a running one, forget a finished one."""
        try:
            previous, task = self.backend.cancel(task_id, self._requester())
        except Unavailable:
            return self._unavailable(UNAVAILABLE_PROBLEM)
        if previous is None:
            return problem_response(UNKNOWN_TASK_PROBLEM)
        if task is None:
            forgotten = Response(status=204)
            del forgotten.headers["Content-Type"]  # there is no content
            forgotten.headers["Task-Status"] = previous  # how it ended
            return forgotten
        return self._monitor(task, 200 if previous == QUEUED else 202)

    def liveness_response(self) -> tuple[dict[str, str], int, dict[str, str]]:
        """``/livez``: 200 while the process runs. It asks nothing outside the process,
        so that an outage of a store never has an orchestrator restart healthy processes."""
        return {"status": "ok"}, 200, {}

    def readiness_response(self) -> tuple[dict[str, str], int, dict[str, str]]:
        """``/readyz`` (and ``/health``): 200 while tasks can be taken and answered,
        else 503 saying why."""
        reason = self.backend.why_unavailable()
        if reason is None:
            return {"status": "ok"}, 200, {}
        body = {"status": "unavailable", "detail": reason}
        return body, 503, {"Retry-After": self.retry_after}

    def metrics_response(self) -> Response:
        """``/metrics``: the task metrics, to the bearer of ``METRICS_TOKEN`` if it is set."""
        try:
            return metrics_response(
                self.backend.metrics, self.app.config["METRICS_TOKEN"], _unproxied(request)
            )
        except Unavailable:
            return self._unavailable(UNAVAILABLE_PROBLEM)

    # -- helpers --------------------------------------------------------

    def _read_body_early(self, endpoint: str | None, values: dict[str, Any] | None) -> None:
        """Read an async view's body before any ``before_request`` runs.

        URL value preprocessors run first. A ``before_request`` that reads
        ``request.form`` (CSRF protection does) would otherwise consume the
        stream, and the task, and the Idempotency-Key fingerprint, would see
        an empty body. A request without one (most GETs) has nothing to read,
        here or when its task replays it.
        """
        view = self.app.view_functions.get(endpoint or "")
        if view is not None and is_async_view(view, request.method):
            submitted = _unproxied(request)
            if _has_body(submitted.environ):
                _read_body_whole(submitted, self.app.config["MAX_CONTENT_LENGTH"])

    def _owner(self, current_request: Request) -> bytes | None:
        """A keyed hash of the owner of ``current_request``, or None."""
        secret_key = self.app.secret_key
        assert secret_key is not None, "the backend sets SECRET_KEY, or refuses to start without"
        return owner_hash(secret_key, self._owner_loader(current_request))

    def _hold(
        self, task: TaskState, requester: bytes | None
    ) -> tuple[TaskState | None, int | None]:
        """Hold the request until ``task`` ends, if it prefers to wait (``Prefer: wait=N``).

        Returns the task as it is then (None if it went meanwhile) and the
        seconds it was held for at most, or ``(task, None)`` when the
        preference is not applied: the request does not ask, or every place
        to wait is taken. A task done already is answered at once, as asked.
        """
        # The WSGI server joins repeated Prefer headers into one, as HTTP allows;
        # one lookup, rather than a scan of every header, on each submit and poll.
        prefer = request.environ.get("HTTP_PREFER")
        asked = None if prefer is None else requested_wait([prefer])
        if not asked:
            return task, None
        seconds = min(asked, self.max_wait)
        if task.status not in (QUEUED, RUNNING):
            return task, seconds
        if not self._holding.acquire(blocking=False):
            return task, None
        deadline = time.monotonic() + seconds
        current: TaskState | None = task
        try:
            with self.backend.waiting_for(task.id) as ended:
                while True:
                    # Read after the wait began: an end before it woke no one.
                    current = self.backend.get(task.id, requester)
                    if current is None or current.status not in (QUEUED, RUNNING):
                        break
                    left = deadline - time.monotonic()
                    if left <= 0 or self.backend.waiters.released:
                        break
                    ended.wait(left)
                    ended.clear()
        finally:
            self._holding.release()
        return current, seconds

    def _requester(self) -> bytes | None:
        """The keyed hash of the current request's owner: whose tasks it may see.

        Another owner's task is as unknown as one that never existed. The
        requester's hash is computed before the backend is asked, and the
        backend compares owners before it reads anything else, so that the
        cost of a poll does not tell whether the id exists.
        """
        return self._owner(_unproxied(request))

    def _monitor(self, task: TaskState, status_code: int) -> Response:
        return monitor_response(task, status_code, request.script_root, self.retry_after)

    def _unavailable(self, body: Problem) -> Response:
        return problem_response(body, {"Retry-After": self.retry_after})


def _preference_applied(answer: WerkzeugResponse, waited: int | None) -> WerkzeugResponse:
    """``answer``, saying that the request was held (``Preference-Applied``), if it was."""
    if waited is not None:
        answer.headers["Preference-Applied"] = f"wait={waited}"
    return answer


def _unproxied(proxy: Request) -> Request:
    """The request behind Flask's proxy: one lookup, rather than one per use."""
    current: Request = cast(Any, proxy)._get_current_object()
    return current


def _has_body(environ: dict[str, Any]) -> bool:
    """Whether a request comes with a body: a length other than 0, or chunks.

    A request with neither ``Content-Length`` nor ``Transfer-Encoding`` has
    none (RFC 9112, 6.3).
    """
    return environ.get("CONTENT_LENGTH", "") not in ("", "0") or (
        "HTTP_TRANSFER_ENCODING" in environ
    )


def _read_body_whole(submitted: Request, limit: int | None) -> None:
    """Read and keep the body of ``submitted``; a body not whole answers 400, too long 413.

    A task must never run on part of a body. Under gunicorn Werkzeug does
    not count the bytes of a body with a ``Content-Length`` (the server says
    it ends the stream itself), so a client that stops early would be taken
    at its word; the length is checked here instead.
    """
    try:
        _read_chunked_body_whole(submitted.environ, limit)
        body = submitted.get_data(cache=True, parse_form_data=False)
    except ClientDisconnected:  # Werkzeug's count of a Content-Length fell short
        raise BadRequest(SHORT_BODY) from None
    except HTTPException:
        raise
    except Exception:
        # The input stream is the WSGI server's, and PEP 3333 does not say
        # what its read raises: Werkzeug takes OSError and ValueError for a
        # lost client, gunicorn raises its own parse errors (plain Exception
        # subclasses) for a malformed chunk. Whatever it is, there is no
        # whole body to run a task on, and no traceback to log.
        raise BadRequest(UNREADABLE_BODY) from None
    length = submitted.content_length
    if length is not None and len(body) < length:
        raise BadRequest(SHORT_BODY)


def _read_chunked_body_whole(environ: dict[str, Any], limit: int | None) -> None:
    """Read a body of unknown length (``Transfer-Encoding: chunked``) up to ``limit``.

    Werkzeug stops reading such a body at ``MAX_CONTENT_LENGTH`` and never
    looks further, so a longer body would be cut without a word and its task
    run on part of it. Past the limit this answers 413 instead; within it,
    the body is read whole and given a length, as if the client had sent one.
    Without a limit it is read whole too, so that a malformed one is found
    before any task is made.
    """
    if environ.get("CONTENT_LENGTH") or "wsgi.input_terminated" not in environ:
        return
    stream, parts, size = environ["wsgi.input"], [], 0
    while limit is None or size <= limit:
        step = 64 * 1024 if limit is None else min(64 * 1024, limit + 1 - size)
        part = stream.read(step)
        if not part:
            break
        parts.append(part)
        size += len(part)
    if limit is not None and size > limit:
        raise RequestEntityTooLarge()
    body = b"".join(parts)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
