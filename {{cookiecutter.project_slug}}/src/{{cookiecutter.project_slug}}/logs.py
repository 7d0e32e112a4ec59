"""Logs that name their task: every record made while a task runs carries its id.

A record factory gives every ``LogRecord``, from any logger, the ``task_id``
(and ``request_id``: the submitting request's ``X-Request-ID``) of the task
the current context runs, or None. A backend sets them around a task with
``task_logging``. ``LOG_FORMAT`` picks how lines are written: ``text``
(``[time] LEVEL in logger [task <id>]: message``) or ``json`` (one object per
line, written by python-json-logger). Where the app sets logging up, a
thread of its own writes the lines (``BackgroundStreamHandler``).
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
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from queue import Empty, SimpleQueue
from typing import Any, NamedTuple, TextIO

from flask import Flask
from flask.logging import default_handler
from pythonjsonlogger.json import JsonFormatter

TEXT = "text"
JSON = "json"
LOG_FORMATS = (TEXT, JSON)
# Longest X-Request-ID kept: it is the client's text, written into every line.
MAX_REQUEST_ID_LENGTH = 200
# Seconds the writer thread lets lines gather before it writes them, and
# most lines it joins into one write.
BATCH_SECONDS = 0.05
MAX_BATCH = 1000
# Seconds ``flush`` and ``close`` wait for the writer to catch up.
WRITER_TIMEOUT = 5.0


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


class _Flushed:
    """Put in the queue by ``flush``: set once every line before it is written."""

    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = threading.Event()


_STOP = object()  # put in the queue by ``close``: write what came before it, then end


class BackgroundStreamHandler(logging.StreamHandler[TextIO]):
    """A ``StreamHandler`` whose lines are written by a thread of its own, in batches.

    The thread that logs formats its line and queues the text, taking no
    lock for it; the writer wakes at most every ``BATCH_SECONDS`` and writes
    what gathered at once. Written directly, each line's write lets go of
    the GIL, and the thread must then take it back from the busy request
    threads; and the pool's threads, each logging its task's end, queued for
    the handler's lock. A threads bake lost a sixth of its submit rate that
    way (bench/RESULTS.md). Records themselves are not queued: held for the
    writer, they cost the logging thread more than formatting them there.

    A process forked from the one that made the handler (a task worker's
    pool, gunicorn's ``preload_app``) writes its lines directly: the thread does
    not follow a fork, and such a process may end with ``os._exit``, which
    would drop queued lines. ``logging.shutdown``, at exit, writes what is
    queued.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._pid = os.getpid()
        self._queue: SimpleQueue[object] = SimpleQueue()
        self._writer: threading.Thread | None = None
        self._starting = threading.Lock()
        self._draining = threading.Lock()
        # Held around every write to the stream, and across a fork (see
        # _hold_writes_across_forks): a process forked in the middle of a
        # write would inherit the stream's own lock taken, and hang at its
        # first line.
        self._write_lock = threading.Lock()
        self._closed = False
        _handlers.add(self)

    def handle(self, record: logging.LogRecord) -> bool:
        """As ``Handler.handle`` does, without the handler's lock: the queue needs none."""
        checked = self.filter(record)
        if isinstance(checked, logging.LogRecord):  # Python 3.12+: a filter may replace it
            record = checked
        if checked:
            self.emit(record)
        return bool(checked)

    def emit(self, record: logging.LogRecord) -> None:
        if self._closed or os.getpid() != self._pid:
            self._write_now(record)
            return
        try:
            # Formatted here, as StreamHandler does: the record is then done
            # with at once, and only its text waits for the writer.
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        if self._writer is None and not self._start_writer():
            self._write_batch([line])
            return
        self._queue.put(line)
        if self._closed and not self._writing():
            self._drain()  # closed as this line was queued: no writer will take it

    def _write_now(self, record: logging.LogRecord) -> None:
        """Write one line in this thread, as ``StreamHandler`` does."""
        self.acquire()
        try:
            with self._write_lock:
                super().emit(record)
        finally:
            self.release()

    def _start_writer(self) -> bool:
        """Start the writer thread, once.

        False where no thread can start: at interpreter shutdown, when the
        last lines (a stopping service's) are written directly.
        """
        with self._starting:
            if self._writer is None:
                writer = threading.Thread(target=self._write, name="log-writer", daemon=True)
                try:
                    writer.start()
                except RuntimeError:
                    return False
                self._writer = writer
        return True

    def flush(self) -> None:
        """Wait until every line queued so far is written, then flush the stream."""
        if self._closed or not self._writing():
            super().flush()
            return
        flushed = _Flushed()
        self._queue.put(flushed)
        if self._closed and not self._writing():
            self._drain()
        flushed.event.wait(WRITER_TIMEOUT)

    def close(self) -> None:
        """Write what is queued and end the writer; later lines are written directly.

        Under the handler's lock, as ``logging.shutdown`` calls it: a line
        written directly meanwhile waits, and comes after the queued ones.
        """
        self.acquire()
        try:
            self._closed = True
            if self._writing():
                self._queue.put(_STOP)
                assert self._writer is not None
                self._writer.join(WRITER_TIMEOUT)
            if os.getpid() == self._pid and not self._writing():
                self._drain()
            super().close()
        finally:
            self.release()

    def _drain(self) -> None:
        """Write, in this thread, what is queued: the writer has ended.

        Lines queued by threads that logged as it ended (``emit`` takes no
        lock). Only in the process that made the handler: a forked process
        leaves its copy of the queue alone, its parent writes it.
        """
        with self._draining:
            left = []
            with contextlib.suppress(Empty):
                while True:
                    left.append(self._queue.get_nowait())
            self._write_batch(left)

    def _writing(self) -> bool:
        """Whether this process's writer thread is there to write queued lines."""
        writer = self._writer
        return os.getpid() == self._pid and writer is not None and writer.is_alive()

    def _write(self) -> None:
        behind = False
        while True:
            first = self._queue.get()
            if type(first) is str and not behind:
                # Let the next lines join this one: one wake of this thread
                # and one write per batch, not per line.
                time.sleep(BATCH_SECONDS)
            batch = [first]
            with contextlib.suppress(Empty):
                while len(batch) < MAX_BATCH:
                    batch.append(self._queue.get_nowait())
            behind = len(batch) == MAX_BATCH  # more may wait: no pause next time
            self._write_batch(batch)
            if any(item is _STOP for item in batch):
                return

    def _write_batch(self, items: list[object]) -> None:
        """Write the lines among ``items``, then answer the ``flush`` calls among them."""
        lines = [item for item in items if type(item) is str]
        if lines:
            try:
                # Not under the handler's lock: a thread that logs must never
                # wait for this write.
                with self._write_lock:
                    self.stream.write("".join(lines))
                    self.stream.flush()
            except Exception:
                self._report_write_error()
        for item in items:
            if isinstance(item, _Flushed):
                item.event.set()

    def _report_write_error(self) -> None:
        """Say, as ``handleError`` does, that lines could not be written."""
        if logging.raiseExceptions and sys.stderr:
            sys.stderr.write("--- Logging error ---\n")
            traceback.print_exc(file=sys.stderr)


# Every BackgroundStreamHandler of the process, for _hold_writes_across_forks.
_handlers: weakref.WeakSet[BackgroundStreamHandler] = weakref.WeakSet()


def _hold_writes_across_forks() -> None:
    """Fork only between writes: a child must not inherit a stream's lock taken.

    CPython resets the logging handlers' locks in a forked child, not the
    locks inside a stream (``sys.stderr``'s buffer). A fork while the writer
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
        handler = BackgroundStreamHandler(sys.stderr)
        handler.setFormatter(formatter(app.config["LOG_FORMAT"]))
        root.addHandler(handler)
        # Python's warnings, too, become lines of this format (logger "py.warnings").
        logging.captureWarnings(True)
    app.logger.removeHandler(default_handler)
    if app.logger.level == logging.NOTSET:
        app.logger.setLevel(logging.INFO)
