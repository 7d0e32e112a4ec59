"""Logs that name their task: every record made while a task runs carries its id.

A record factory gives every ``LogRecord``, from any logger, the ``task_id``
(and ``request_id``: the submitting request's ``X-Request-ID``) of the task
the current context runs, or None. A backend sets them around a task with
``task_logging``. ``LOG_FORMAT`` picks how lines are written: ``text``
(``[time] LEVEL in logger [task <id>]: message``) or ``json`` (one object per
line, written by python-json-logger). Where the app sets logging up, its
lines are written in batches (``BatchingStreamHandler``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Mapping
from contextvars import ContextVar, Token
from typing import Any, NamedTuple, TextIO

from flask import Flask
from flask.logging import default_handler
from pythonjsonlogger.json import JsonFormatter

TEXT = "text"
JSON = "json"
LOG_FORMATS = (TEXT, JSON)
# Longest X-Request-ID kept: it is the client's text, written into every line.
MAX_REQUEST_ID_LENGTH = 200
# Seconds lines gather before a thread that logs writes them at once, and
# the longest a line waits when the process goes quiet.
BATCH_SECONDS = 0.05
TAIL_SECONDS = 0.25


class LogIds(NamedTuple):
    """What a record made in the current context is about."""

    task_id: str | None
    request_id: str | None


_NO_TASK = LogIds(None, None)
_current: ContextVar[LogIds] = ContextVar("log_ids", default=_NO_TASK)


class task_logging:  # lower case, as contextlib's context managers are
    """Within the block, every record carries ``task_id`` and ``request_id``.

    A class rather than a ``contextlib.contextmanager``: it is entered for
    every task, and a generator costs several times more to run.
    """

    __slots__ = ("_ids", "_token")
    _token: Token[LogIds]

    def __init__(self, task_id: str, request_id: str | None = None) -> None:
        self._ids = LogIds(task_id, request_id)

    def __enter__(self) -> None:
        self._token = _current.set(self._ids)

    def __exit__(self, *exc_info: object) -> None:
        _current.reset(self._token)


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
    """Flask's line, with the task (and request) it is about, when there is one:
    ``[%(asctime)s] %(levelname)s in %(name)s [task <id> request <id>]: %(message)s``.

    Every task writes a line when it ends, so the line is built without a
    copy of the record's fields, and the time's date and seconds are
    formatted once a second, not once a line.
    """

    def __init__(self) -> None:
        super().__init__()
        self._second: tuple[int, str] = (-1, "")  # one tuple: threads swap it whole

    def usesTime(self) -> bool:
        return True  # format() then sets record.asctime, which formatMessage writes

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached_second, text = self._second
        if second != cached_second:
            text = time.strftime(self.default_time_format, self.converter(second))
            self._second = (second, text)
        return f"{text},{int(record.msecs):03d}"  # as logging's default_msec_format

    def formatMessage(self, record: logging.LogRecord) -> str:
        task_id = getattr(record, "task_id", None)
        label = ""
        if task_id is not None:
            request_id = getattr(record, "request_id", None)
            label = f" [task {task_id}" + (f" request {request_id}]" if request_id else "]")
        return f"[{record.asctime}] {record.levelname} in {record.name}{label}: {record.message}"


class BatchingStreamHandler(logging.StreamHandler[TextIO]):
    """A ``StreamHandler`` that writes its lines in batches, at most every ``BATCH_SECONDS``.

    The thread that logs formats its line and adds it to the batch, taking
    no lock for it; the first thread to log once the batch is due writes
    it. Lines logged as the process goes quiet are written by a thread of
    the handler's own within ``TAIL_SECONDS``; ``flush`` and ``close`` write
    at once. Written one by one, each line's write lets go of the GIL,
    and the thread must then take it back from the busy request threads;
    a thread that only wrote the lines waited for the GIL on every batch,
    woken again each time another thread let go of it. A threads bake lost
    a sixth of its submit rate the first way (bench/RESULTS.md).

    A process forked from the one that made the handler (a task worker's
    pool, gunicorn's ``preload_app``) writes each line at once: such a
    process may end with ``os._exit``, which would drop a batch.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._pid = os.getpid()
        self._lines: deque[str] = deque()
        self._due = 0.0  # time.monotonic() when the next batch may be written
        # Set while lines wait for the tail thread; it writes them TAIL_SECONDS later.
        self._waiting = threading.Event()
        self._tail: threading.Thread | None = None
        self._tail_starting = threading.Lock()
        # Held around every write to the stream, and across a fork (see
        # _hold_writes_across_forks): a process forked in the middle of a
        # write would inherit the stream's own lock taken, and hang at its
        # first line.
        self._write_lock = threading.Lock()
        self._closed = False
        _handlers.add(self)

    def handle(self, record: logging.LogRecord) -> bool:
        """As ``Handler.handle`` does, without the handler's lock: the batch needs none."""
        checked = self.filter(record)
        if isinstance(checked, logging.LogRecord):  # Python 3.12+: a filter may replace it
            record = checked
        if checked:
            self.emit(record)
        return bool(checked)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self._lines.append(line)
        if self._closed or os.getpid() != self._pid:
            self._write(wait=True)
        elif time.monotonic() >= self._due:
            self._write(wait=False)  # another thread writing now takes this line, or the tail
        if self._lines and not self._waiting.is_set():
            self._waiting.set()
            self._start_tail()

    def flush(self) -> None:
        """Write every line logged so far, and flush the stream."""
        self._write(wait=True)

    def close(self) -> None:
        """Write what waits; later lines are written at once."""
        self._closed = True
        self._write(wait=True)
        super().close()

    def _write(self, wait: bool) -> None:
        """Write the batch; without ``wait``, only if no other thread writes now."""
        if not self._write_lock.acquire(blocking=wait):
            return
        try:
            self._due = time.monotonic() + BATCH_SECONDS
            lines = []
            with contextlib.suppress(IndexError):
                while True:
                    lines.append(self._lines.popleft())
            if lines:
                self.stream.write("".join(lines))
                self.stream.flush()
        except Exception:
            self._report_write_error()
        finally:
            self._write_lock.release()

    def _start_tail(self) -> None:
        """Start the thread that writes a quiet process's last lines, once per process."""
        with self._tail_starting:
            tail = self._tail
            if tail is not None and tail.is_alive():
                return
            tail = threading.Thread(target=self._write_tails, name="log-tail", daemon=True)
            try:
                tail.start()
            except RuntimeError:  # at interpreter shutdown: write now
                self._write(wait=True)
                return
            self._tail = tail

    def _write_tails(self) -> None:
        while True:
            self._waiting.wait()
            time.sleep(TAIL_SECONDS)
            self._waiting.clear()  # a line logged from here on sets it again
            self._write(wait=True)

    def _report_write_error(self) -> None:
        """Say, as ``handleError`` does, that lines could not be written."""
        if logging.raiseExceptions and sys.stderr:
            sys.stderr.write("--- Logging error ---\n")
            traceback.print_exc(file=sys.stderr)


# Every BatchingStreamHandler of the process, for _hold_writes_across_forks.
_handlers: weakref.WeakSet[BatchingStreamHandler] = weakref.WeakSet()


def _hold_writes_across_forks() -> None:
    """Fork only between writes: a child must not inherit a stream's lock taken.

    CPython resets the logging handlers' locks in a forked child, not the
    locks inside a stream (``sys.stderr``'s buffer). A fork while another
    thread is in the middle of a write (a slow log pipe) would leave the
    child's first line waiting forever.
    """

    def before() -> None:
        for handler in list(_handlers):
            handler._write_lock.acquire()

    def after_in_parent() -> None:
        for handler in list(_handlers):
            handler._write_lock.release()

    def after_in_child() -> None:
        for handler in list(_handlers):
            handler._write_lock = threading.Lock()
            handler._lines.clear()  # the parent's: the parent writes them

    if hasattr(os, "register_at_fork"):
        os.register_at_fork(
            before=before, after_in_parent=after_in_parent, after_in_child=after_in_child
        )


_hold_writes_across_forks()


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
        handler = BatchingStreamHandler(sys.stderr)
        handler.setFormatter(formatter(app.config["LOG_FORMAT"]))
        root.addHandler(handler)
        # Python's warnings, too, become lines of this format (logger "py.warnings").
        logging.captureWarnings(True)
    app.logger.removeHandler(default_handler)
    if app.logger.level == logging.NOTSET:
        app.logger.setLevel(logging.INFO)
