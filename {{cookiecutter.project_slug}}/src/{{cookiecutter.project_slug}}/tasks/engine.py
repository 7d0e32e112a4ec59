"""The task engine: one per app, in ``app.extensions["async_api"]``.

It knows nothing of REST layers. A layer routes ``STATUS_RULES`` to
``status_response`` and ``cancel_response``; ``async_api`` views call
``submit``. Every task is replayed through the app in a worker thread, and
what the view answered is kept until the cleaner drops it.
"""

import atexit
import functools
import hashlib
import hmac
import json
import secrets
import sys
import time
import weakref

from flask import Response, current_app, got_request_exception, request
from werkzeug.exceptions import InternalServerError
from werkzeug.routing import BaseConverter

from .backends.threads import ThreadBackend
from .cleaner import Cleaner
from .context import running_task
from .decorator import EXTENSION_KEY, is_async_view
from .problems import STOPPED_PROBLEM, problem, problem_for_exception, problem_response
from .snapshot import RequestSnapshot, ResponseSnapshot, SharedHeads
from .store import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, Task, TaskStore

# Every URL under /status is the status resource's: a malformed one (no id, a
# trailing slash, slashes inside) must answer 404, not fall through to a
# catch-all route and start a task. Layers add these rules with
# STATUS_RULE_OPTIONS, so that Werkzeug does not redirect doubled slashes.
STATUS_RULES = ("/status", "/status/<task_id:task_id>")
STATUS_RULE_OPTIONS = {"merge_slashes": False}

BUSY_PROBLEM = problem(
    503,
    "Service Unavailable",
    "Too many tasks are running or waiting; try again after Retry-After seconds.",
)
UNKNOWN_TASK_PROBLEM = problem(
    404,
    "Not Found",
    "There is no task with this id: it never existed, or it expired.",
)
MAX_IDEMPOTENCY_KEY_LENGTH = 255
BAD_IDEMPOTENCY_KEY_PROBLEM = problem(
    400,
    "Bad Request",
    f"An Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters long.",
)
IDEMPOTENCY_CONFLICT_PROBLEM = problem(
    409,
    "Conflict",
    "This Idempotency-Key was used for a different request (method, path, query or body).",
)

# Engines still running, so that the process can shut them down as it exits.
_live_engines = weakref.WeakSet()


def task_engine():
    """The task engine of the current app."""
    return current_app.extensions[EXTENSION_KEY]


def authorization_owner(request):
    """The default owner of a task: the credentials that submitted it."""
    return request.headers.get("Authorization") or None


class TaskIdConverter(BaseConverter):
    """Any text, slashes included: a malformed id reaches the status view."""

    regex = ".*"
    part_isolating = False


class AsyncTasks:
    """Runs ``async_api`` views as tasks for one app and answers about them.

    One engine per app: ``AsyncTasks(app)`` keeps its state on itself.
    """

    def __init__(self, app=None):
        self._owner_loader = authorization_owner
        self._stopped = False
        if app is not None:
            self.init_app(app)

    def init_app(self, app):
        config = app.config
        self.app = app
        self.retry_after = str(config["TASK_RETRY_AFTER"])
        self.shutdown_timeout = config["TASK_SHUTDOWN_TIMEOUT"]
        # Expiry is measured on the monotonic clock: a step of the wall clock
        # (NTP) must neither keep tasks nor drop them early.
        self.store = TaskStore(time.monotonic)
        self.shared_heads = SharedHeads()
        self.backend = ThreadBackend(
            self._run, config["TASK_MAX_WORKERS"], config["TASK_MAX_QUEUED"]
        )
        self.cleaner = Cleaner(
            lambda store=self.store, retention=config["TASK_RETENTION"]: store.remove_expired(
                store.clock() - retention
            ),
            config["TASK_CLEANUP_INTERVAL"],
            app.logger,
        )
        app.extensions[EXTENSION_KEY] = self
        app.url_map.converters["task_id"] = TaskIdConverter
        app.url_value_preprocessor(self._read_body_early)
        self.cleaner.start()
        # Stops the cleaner when an app that never ran a task is collected
        # (tests make many apps). Once a task ran, the pool's threads hold the
        # engine: ``shutdown()`` stops it, and runs at exit by itself.
        weakref.finalize(self, self.cleaner.stop)
        _live_engines.add(self)

    @property
    def clock(self):
        """The function that tells the time in seconds, for expiry (monotonic)."""
        return self.store.clock

    @clock.setter
    def clock(self, clock):
        self.store.clock = clock

    def owner_loader(self, loader):
        """Decorator: set ``loader(request) -> str | None`` that names a task's owner.

        The default is the request's ``Authorization`` header. Return a user
        id, say, to let the same user poll from fresh credentials.
        """
        self._owner_loader = loader
        return loader

    # -- HTTP answers ---------------------------------------------------

    def submit(self):
        """Start the current request as a task and answer ``202 Accepted``."""
        submitted = request._get_current_object()  # one proxy lookup, not many
        owner = self._owner(submitted)
        snapshot = RequestSnapshot.capture(submitted)
        key = submitted.headers.get("Idempotency-Key")
        idempotency = None
        if key is not None:
            if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
                return problem_response(BAD_IDEMPOTENCY_KEY_PROBLEM)
            idempotency = ((owner, key), _fingerprint(snapshot))
            existing = self.store.find_by_scope(idempotency[0])
            if existing is not None:
                return self._idempotent_answer(existing, idempotency)
        if not self.backend.reserve():
            return problem_response(BUSY_PROBLEM, {"Retry-After": self.retry_after})
        task = Task(secrets.token_urlsafe(16), owner, snapshot, self.store.clock(), idempotency)
        held = self.store.add(task)
        if held is not task:
            self.backend.release()
            return self._idempotent_answer(held, idempotency)
        if not self.backend.run(task):
            self.store.discard(task)
            return problem_response(BUSY_PROBLEM, {"Retry-After": self.retry_after})
        return self._monitor_response(task, 202)

    def status_response(self, task_id):
        """Answer a poll: 202 while the task works, then what the view answered."""
        task = self._find(task_id)
        if task is None:
            return problem_response(UNKNOWN_TASK_PROBLEM)
        status = task.status
        if status in (QUEUED, RUNNING):
            return self._monitor_response(task, 202)
        answer = task.response
        if answer is not None:
            return answer.to_response()
        if status == CANCELLED:
            return self._monitor_response(task, 200)
        if task.error is not None:
            return problem_response(task.error, {"Task-Status": status})
        return problem_response(UNKNOWN_TASK_PROBLEM)  # forgotten meanwhile

    def cancel_response(self, task_id):
        """Answer ``DELETE``: cancel a queued task, stop a running one, forget a finished one."""
        task = self._find(task_id)
        if task is None:
            return problem_response(UNKNOWN_TASK_PROBLEM)
        previous = self.store.request_cancel(task)
        if previous == QUEUED:
            self.backend.cancel(task)  # free its place in the queue now
            return self._monitor_response(task, 200)
        if previous == RUNNING:
            return self._monitor_response(task, 202)
        self.store.discard(task)
        forgotten = Response(status=204)
        del forgotten.headers["Content-Type"]  # there is no content
        return forgotten

    # -- lifecycle ------------------------------------------------------

    def shutdown(self, timeout=None):
        """Stop taking tasks; give running ones ``timeout`` seconds to finish.

        Tasks that never started end ``failed``: the service stopped.
        """
        if self._stopped:
            return
        self._stopped = True
        self.cleaner.stop()
        if timeout is None:
            timeout = self.shutdown_timeout
        for task in self.backend.close():
            self.store.finish(task, FAILED, None, STOPPED_PROBLEM)
            self.app.logger.warning(
                "Task %s failed: the service stopped before it started", task.id
            )
        if not self.backend.wait(timeout):
            for task in self.store.unfinished():
                self.app.logger.warning(
                    "Task %s was still running when the service stopped", task.id
                )

    # -- inside the worker thread ---------------------------------------

    def _run(self, task):
        if not self.store.start(task):
            return  # cancelled while it waited
        token = running_task.set((self.store, task))
        try:
            outcome = self._replay(task)
        except BaseException:
            # _replay turns every Exception into an answer; this is SystemExit
            # or the like. The task must still end, and the worker go on.
            self.app.logger.exception("Task %s was stopped by its own code", task.id)
            outcome = (FAILED, None, problem_for_exception(None))
        finally:
            running_task.reset(token)
        self.store.finish(task, *outcome)

    def _replay(self, task):
        """Run the request again, as Flask would, short of ``after_request``.

        Those run on each poll instead, on the response rebuilt for it.
        """
        app = self.app
        with app.request_context(task.request.to_environ()):
            try:
                try:
                    rv = app.preprocess_request()
                    if rv is None:
                        rv = app.dispatch_request()
                    status, error = SUCCEEDED, None
                except Exception as raised:
                    status, error = FAILED, problem_for_exception(raised)
                    rv = app.handle_user_exception(raised)
                answer = ResponseSnapshot.capture(app.make_response(rv), status, self.shared_heads)
                return status, answer, error
            except Exception as unhandled:
                # As Flask's handle_exception does: error monitors (Sentry, say)
                # listen for this signal.
                got_request_exception.send(app, _async_wrapper=app.ensure_sync, exception=unhandled)
                app.log_exception(sys.exc_info())
                return FAILED, self._server_error(unhandled), problem_for_exception(unhandled)

    def _server_error(self, error):
        """The app's own 500 answer, as Flask would give it for ``error``."""
        app = self.app
        try:
            rv = app.handle_user_exception(InternalServerError(original_exception=error))
            return ResponseSnapshot.capture(app.make_response(rv), FAILED, self.shared_heads)
        except Exception:
            app.log_exception(sys.exc_info())
            return ResponseSnapshot.capture(
                problem_response(problem_for_exception(error)), FAILED, self.shared_heads
            )

    # -- helpers --------------------------------------------------------

    def _read_body_early(self, endpoint, values):
        """Read an async view's body before any ``before_request`` runs.

        URL value preprocessors run first. A ``before_request`` that reads
        ``request.form`` (CSRF protection does) would otherwise consume the
        stream, and the task, and the Idempotency-Key fingerprint, would see
        an empty body.
        """
        view = self.app.view_functions.get(endpoint)
        if view is not None and is_async_view(view, request.method):
            request.get_data(cache=True, parse_form_data=False)

    def _owner(self, current_request):
        """A keyed hash of the owner of ``current_request``, or None."""
        owner = self._owner_loader(current_request)
        if owner is None:
            return None
        key = self.app.secret_key
        if isinstance(key, str):
            key = key.encode()
        return hmac.new(key, str(owner).encode(), hashlib.sha256).digest()

    def _find(self, task_id):
        """The task, if it exists and the current request may see it.

        Another owner's task is as unknown as one that never existed, and the
        owners are compared in constant time.
        """
        owner = self._owner(request._get_current_object())
        task = self.store.get(task_id)
        if task is None or task.owner is None:
            return task
        if owner is None or not hmac.compare_digest(task.owner, owner):
            return None
        return task

    def _idempotent_answer(self, task, idempotency):
        """The held task's monitor, if the repeat is the same request; else 409."""
        if not hmac.compare_digest(task.idempotency[1], idempotency[1]):
            return problem_response(IDEMPOTENCY_CONFLICT_PROBLEM)
        return self._monitor_response(task, 202)

    def _monitor_response(self, task, status_code):
        status = task.status  # read once: another thread may change it
        status_url = f"{request.script_root}/status/{task.id}"
        headers = [("Content-Type", "application/json"), ("Task-Status", status)]
        if status_code == 202:
            headers += [("Location", status_url), ("Retry-After", self.retry_after)]
        # Times are kept on the monotonic clock; shown on the wall clock.
        to_wall = time.time() - self.store.clock()
        created_at = _rfc3339(task.created_at + to_wall)
        if task.updated_at == task.created_at:
            updated_at = created_at
        else:
            updated_at = _rfc3339(task.updated_at + to_wall)
        body = {
            "id": task.id,
            "status": status,
            "status_url": status_url,
            "created_at": created_at,
            "updated_at": updated_at,
            "progress": None,
        }
        if task.progress is not None:
            percent, message = task.progress
            body["progress"] = {"percent": percent, "message": message}
        if task.error is not None:
            body["error"] = task.error
        return Response(json.dumps(body), status_code, headers)


def _fingerprint(snapshot):
    """What makes two submits the same request, for ``Idempotency-Key``."""
    environ = snapshot.environ
    digest = hashlib.sha256()
    for part in (
        environ["REQUEST_METHOD"],
        environ.get("PATH_INFO", ""),
        environ.get("QUERY_STRING", ""),
    ):
        digest.update(part.encode("latin-1") + b"\0")
    digest.update(snapshot.body)
    return digest.digest()


def _rfc3339(timestamp):
    """``2026-11-25T10:00:00.123Z``: RFC 3339, UTC, to the millisecond."""
    seconds = int(timestamp)
    return f"{_utc_second(seconds)}.{int((timestamp - seconds) * 1000):03d}Z"


@functools.lru_cache(maxsize=4)  # under load most times fall in the same second
def _utc_second(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


@atexit.register
def _shutdown_live_engines():
    for engine in list(_live_engines):
        engine.shutdown()
