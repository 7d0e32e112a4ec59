"""Logs that name their task: every record made while a task runs carries its id.

A record factory gives every ``LogRecord``, from any logger, the ``task_id``
(and ``request_id``: the submitting request's ``X-Request-ID``) of the task
the current context runs, or None. A backend sets them around a task with
``task_logging``. ``LOG_FORMAT`` picks how lines are written: ``text``
(``[time] LEVEL in logger [task <id>]: message``) or ``json`` (one object per
line, written by python-json-logger).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any, NamedTuple

from flask import Flask
from flask.logging import default_handler
from pythonjsonlogger.json import JsonFormatter

TEXT = "text"
JSON = "json"
LOG_FORMATS = (TEXT, JSON)
# Longest X-Request-ID kept: it is the client's text, written into every line.
MAX_REQUEST_ID_LENGTH = 200


class LogIds(NamedTuple):
    """What a record made in the current context is about."""

    task_id: str | None
    request_id: str | None


_NO_TASK = LogIds(None, None)
_current: ContextVar[LogIds] = ContextVar("log_ids", default=_NO_TASK)


@contextlib.contextmanager
def task_logging(task_id: str, request_id: str | None = None) -> Iterator[None]:
    """Within the block, every record carries ``task_id`` and ``request_id``."""
    token = _current.set(LogIds(task_id, request_id))
    try:
        yield
    finally:
        _current.reset(token)


def request_id_of(environ: Mapping[str, Any]) -> str | None:
    """The ``X-Request-ID`` a request came with: visible ASCII, bounded, else None."""
    value = environ.get("HTTP_X_REQUEST_ID")
    if not isinstance(value, str) or not value or len(value) > MAX_REQUEST_ID_LENGTH:
        return None
    return value if value.isascii() and value.isprintable() else None


def log_task_end(
    logger: logging.Logger, task_id: str, endpoint: str, status: str, queued: float, ran: float
) -> None:
    """The one line that says a task ended, and how long it waited and ran."""
    logger.info(
        "Task %s (%s) %s: %.3f s queued, %.3f s run", task_id, endpoint, status, queued, ran
    )


def install_record_factory() -> None:
    """Give every record ``task_id`` and ``request_id`` (once per process)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "names_tasks", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.task_id, record.request_id = _current.get()
        return record

    factory.names_tasks = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class TextFormatter(logging.Formatter):
    """Flask's line, with the task (and request) it is about, when there is one."""

    FORMAT = "[%(asctime)s] %(levelname)s in %(name)s%(task)s: %(message)s"

    def __init__(self) -> None:
        super().__init__(self.FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        task_id = getattr(record, "task_id", None)
        request_id = getattr(record, "request_id", None)
        label = ""
        if task_id is not None:
            label = f" [task {task_id}" + (f" request {request_id}]" if request_id else "]")
        return self.FORMAT % {**record.__dict__, "task": label}


class JsonLineFormatter(JsonFormatter):
    """One JSON object per record: time (RFC 3339, UTC), level, logger, message, ids.

    A traceback goes in ``exc_info``, as text. Fields a caller adds with
    ``extra=`` are kept too.
    """

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s %(task_id)s %(request_id)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        )


class AccessJsonFormatter(JsonLineFormatter):
    """gunicorn's access log as JSON: its usual line, and the request's parts as fields."""

    # gunicorn's access log atoms, and the field each becomes.
    ATOMS = {
        "h": "remote_addr",
        "m": "method",
        "U": "path",
        "q": "query",
        "s": "status",
        "B": "bytes",
        "M": "duration_ms",
        "a": "user_agent",
        "p": "pid",
        "{x-request-id}i": "request_id",
    }
    NUMBERS = frozenset({"status", "bytes", "duration_ms", "pid"})

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        atoms = record.args
        if isinstance(atoms, Mapping):
            for atom, field in self.ATOMS.items():
                value = atoms.get(atom)
                if value in (None, "-", ""):
                    continue
                if field in self.NUMBERS and isinstance(value, str | int):
                    digits = str(value).strip("<>")  # gunicorn writes the pid as <1234>
                    value = int(digits) if digits.isdigit() else value
                log_data[field] = value


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of ``LOG_FORMAT``."""
    return JsonLineFormatter() if log_format == JSON else TextFormatter()


def init_app(app: Flask) -> None:
    """Name tasks in every record, and write the app's lines as ``LOG_FORMAT`` says.

    Where nothing configured logging yet (the root logger has no handler),
    one handler on the root writes every logger's lines (and Python's
    warnings) to stderr, the app's from ``INFO`` up and other libraries' from
    ``WARNING``. Where something
    did (``logging.config``, a test runner), its handlers are kept. Flask's
    own handler is dropped either way, so that no line is written twice.
    """
    install_record_factory()
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter(app.config["LOG_FORMAT"]))
        root.addHandler(handler)
        # Python's warnings, too, become lines of this format (logger "py.warnings").
        logging.captureWarnings(True)
    app.logger.removeHandler(default_handler)
    if app.logger.level == logging.NOTSET:
        app.logger.setLevel(logging.INFO)
