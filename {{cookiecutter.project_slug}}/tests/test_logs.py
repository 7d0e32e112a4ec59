"""Logs name their task: served by gunicorn (and a worker), in text and in JSON.

And the handler that writes them never loses a line: in order, at exit, after a fork.
"""

import io
import json
import logging
import os
import signal
import struct
import subprocess
import sys
import threading
import time

import pytest
from helpers import submit_and_finish, wait_for

from {{ cookiecutter.project_slug }}.logs import (
    BatchingStreamHandler,
    JsonLineFormatter,
    TextFormatter,
    install_record_factory,
    task_logging,
)

REQUEST_ID = "req-7f3a"


def run_to_end(server, path):
    """Submit ``path`` with an ``X-Request-ID``, poll it to its end; its id and status code."""
    location, status = submit_and_finish(server, path, {"X-Request-ID": REQUEST_ID})
    return location.rsplit("/", 1)[1], status


def serve(gunicorn, served_env, served_workers, log_format):
    """The served app, and the log its tasks write into (the worker's, if there is one)."""
    worker = served_workers(FLASK_LOG_FORMAT=log_format)
    server = gunicorn("served_app:app", **served_env, FLASK_LOG_FORMAT=log_format)
    return server, worker[1] if worker else server.log


def lines_with(log, text):
    return [line for line in log.read_text().splitlines() if text in line]


def test_text_lines_name_the_task_and_its_request(gunicorn, served_env, served_workers):
    server, log = serve(gunicorn, served_env, served_workers, "text")
    task_id, status = run_to_end(server, "/nap/0")
    assert status == 200
    ended = f"Task {task_id} (nap) succeeded: "
    wait_for(lambda: lines_with(log, ended), what="the task's end to be logged")
    label = f"[task {task_id} request {REQUEST_ID}]"
    # The view's own line, once (not once more by another handler), and the end.
    assert [label in line for line in lines_with(log, "napped 0 s")] == [True]
    [end] = lines_with(log, ended)
    assert " INFO " in end and label in end and "s queued" in end and "s run" in end
    # A line made outside any task names none.
    assert all("[task " not in line for line in lines_with(server.log, "Booting worker"))


def test_a_failed_tasks_traceback_is_logged_once_with_its_id(gunicorn, served_env, served_workers):
    server, log = serve(gunicorn, served_env, served_workers, "text")
    task_id, status = run_to_end(server, "/fail")
    assert status == 500
    wait_for(
        lambda: lines_with(log, f"Task {task_id} (fail) failed: "),
        what="the task's end to be logged",
    )
    text = log.read_text()
    assert text.count("RuntimeError: the view failed, as the test asked") == 1
    assert text.count("Traceback (most recent call last)") == 1
    [error] = [line for line in lines_with(log, " ERROR ") if task_id in line]
    assert f"[task {task_id} request {REQUEST_ID}]" in error


def json_lines(log, after=None):
    """Every line of ``log`` (from the first that holds ``after``) as JSON."""
    lines = log.read_text().splitlines()
    if after is not None:
        lines = lines[next(i for i, line in enumerate(lines) if after in line) :]
    return [json.loads(line) for line in lines if line.strip()]


def test_json_logs_are_one_object_per_line(gunicorn, served_env, served_workers):
    server, log = serve(gunicorn, served_env, served_workers, "json")
    napped_id, _ = run_to_end(server, "/nap/0")
    failed_id, _ = run_to_end(server, "/fail")
    awaited = [f"Task {failed_id} (fail) failed"]
{%- if cookiecutter.task_backend == "celery" %}
    # The worker's own process writes this line, its pool processes the rest.
    awaited.append(f"run_task[{napped_id}] received")
{%- endif %}
    wait_for(
        lambda: all(text in log.read_text() for text in awaited),
        what=f"{awaited} to be logged",
    )
    # A worker prints its banner (not a log line) before it is ready.
    records = json_lines(log, after=None if log == server.log else "ready.")
    served = records if log == server.log else json_lines(server.log)
    [napped] = [record for record in records if record["message"] == "napped 0 s"]
    assert napped["task_id"] == napped_id and napped["request_id"] == REQUEST_ID
    assert (napped["level"], napped["logger"]) == ("INFO", "{{ cookiecutter.project_slug }}")
    assert napped["time"].endswith("+00:00")  # RFC 3339, UTC
    [failure] = [record for record in records if "exc_info" in record]
    assert failure["task_id"] == failed_id and failure["level"] == "ERROR"
    assert "RuntimeError: the view failed, as the test asked" in failure["exc_info"]
    [end] = [record for record in records if record["message"].startswith(f"Task {napped_id}")]
    assert end["task_id"] == napped_id and "succeeded" in end["message"]
{%- if cookiecutter.task_backend == "celery" %}
    # Celery's own lines about the task (received, succeeded in) name it too.
    celerys = [
        record
        for record in records
        if record["logger"].startswith("celery.") and napped_id in record["message"]
    ]
    assert len(celerys) >= 2 and all(record["task_id"] == napped_id for record in celerys)
{%- endif %}
    # gunicorn's own lines and its access log are JSON too.
    access = [record for record in served if record.get("path") == "/nap/0"]
    assert access and access[0]["method"] == "GET" and access[0]["status"] == 202
    assert access[0]["request_id"] == REQUEST_ID
    assert any(record["logger"] == "gunicorn.error" for record in served)


# The handler the app puts on the root logger: lines written in batches.


def writing_logger(name, stream):
    """A logger of its own whose lines a ``BatchingStreamHandler`` writes into ``stream``."""
    handler = BatchingStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(f"test_logs.{name}")
    logger.propagate = False
    logger.addHandler(handler)
    return logger, handler


def test_a_text_line_has_the_time_as_logging_writes_it_and_its_task():
    text, plain = TextFormatter(), logging.Formatter()
    record = logging.makeLogRecord({"msg": "tick", "levelname": "INFO", "name": "clock"})
    # The same second twice, the next one, back again, another day: each its own time.
    for created in (1_700_000_000.001, 1_700_000_000.999, 1_700_000_001.0, 1_700_000_000.5, 1.6e9):
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert text.format(record) == f"[{plain.formatTime(record)}] INFO in clock: tick"
    install_record_factory()  # as create_app does
    with task_logging("t-1", "r-1"):
        record = logging.getLogger("clock").makeRecord("clock", logging.INFO, "", 0, "", (), None)
    assert text.format(record).endswith("INFO in clock [task t-1 request r-1]: ")


def test_lines_are_written_in_order_as_they_read_when_logged():
    stream = io.StringIO()
    logger, handler = writing_logger("order", stream)
    try:
        cart = ["apple"]
        logger.warning("cart holds %s", cart)
        cart.append("pear")  # after the call: the line must not show it
        for number in range(100):
            logger.warning("line %d", number)
        handler.flush()  # writes the batch
        lines = stream.getvalue().splitlines()
        assert lines == ["cart holds ['apple']"] + [f"line {n}" for n in range(100)]
    finally:
        handler.close()


def test_close_writes_what_is_queued_and_later_lines_at_once():
    stream = io.StringIO()
    logger, handler = writing_logger("close", stream)
    for number in range(1000):
        logger.warning("line %d", number)
    handler.close()  # as logging.shutdown does at exit
    assert stream.getvalue().splitlines() == [f"line {n}" for n in range(1000)]
    logger.warning("after close")
    assert stream.getvalue().endswith("after close\n")


def test_lines_logged_while_the_handler_closes_are_all_written():
    # At exit, logging.shutdown closes the handler while threads may still log.
    stream = io.StringIO()
    logger, handler = writing_logger("closing", stream)
    logger.warning("the first line")
    handler.flush()
    logging_now, closed = threading.Barrier(5), threading.Event()
    logged = {}

    def log_lines(name):
        number = 0
        while not closed.is_set() and number < 100_000:  # until close has returned
            logger.warning("%s %d", name, number)
            number += 1
            if number == 100:
                logging_now.wait(30)
        logged[name] = number

    threads = [threading.Thread(target=log_lines, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    logging_now.wait(30)
    closing = time.monotonic()
    handler.close()
    closed.set()
    # A deadline, not a duration: close once stalled for 5 s, waiting for a
    # writer thread that had stopped, holding every other line back.
    assert time.monotonic() - closing < 2.5
    for thread in threads:
        thread.join(30)
    lines = stream.getvalue().splitlines()
    assert sorted(lines) == sorted(
        ["the first line"]
        + [f"{name} {number}" for name, count in logged.items() for number in range(count)]
    )


def test_a_line_queued_as_the_handler_closes_is_written():
    stream = io.StringIO()
    logger, handler = writing_logger("queued-late", stream)
    logger.warning("the first line")
    handler.flush()
    formatting, closed = threading.Event(), threading.Event()

    class Slow:
        """An argument whose text is made while the handler closes."""

        def __str__(self):
            formatting.set()
            closed.wait(30)
            return "made while closing"

    late = threading.Thread(target=logger.warning, args=("%s", Slow()))
    late.start()
    formatting.wait(30)
    handler.close()
    closed.set()
    late.join(30)
    assert stream.getvalue().splitlines() == ["the first line", "made while closing"]


def test_a_dict_logged_in_json_keeps_its_keys_as_fields():
    stream = io.StringIO()
    logger, handler = writing_logger("json-dict", stream)
    handler.setFormatter(JsonLineFormatter())
    try:
        logger.warning({"event": "report built", "rows": 3})
        handler.flush()
    finally:
        handler.close()
    [line] = stream.getvalue().splitlines()
    record = json.loads(line)
    assert (record["event"], record["rows"], record["level"]) == ("report built", 3, "WARNING")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_process_writes_its_lines_before_it_ends(tmp_path):
    # A task worker's pool processes are forked, and may end with os._exit: a line
    # left in a batch would be lost.
    path = tmp_path / "log"
    with path.open("a", encoding="utf-8") as stream:
        logger, handler = writing_logger("fork", stream)
        try:
            logger.warning("the parent logs")
            handler.flush()
            pid = os.fork()
            if pid == 0:
                try:
                    logger.warning("child %d", os.getpid())
                finally:
                    os._exit(0)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
        finally:
            handler.close()
    assert path.read_text(encoding="utf-8").splitlines() == [
        "the parent logs",
        f"child {pid}",
    ]


def test_a_line_logged_as_the_interpreter_exits_is_written(tmp_path):
    # A stopping service logs from an atexit hook, when no thread can start.
    script = tmp_path / "last_words.py"
    script.write_text(
        "import atexit, logging, sys\n"
        "from {{ cookiecutter.project_slug }}.logs import BatchingStreamHandler\n"
        "logger = logging.getLogger('last_words')\n"
        "logger.addHandler(BatchingStreamHandler(sys.stdout))\n"
        "atexit.register(lambda: logger.warning('the service stopped'))\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "the service stopped\n", "")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads a pipe's fill (Linux)")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_process_forked_while_a_line_is_written_can_log():
    # A slow log pipe keeps a thread that logs inside its write: a process
    # forked then (a task worker's new pool process) must not inherit the
    # stream's lock taken, or its first line waits forever.
    import fcntl

    read_end, write_end = os.pipe()
    capacity = fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ)
    stream = os.fdopen(write_end, "w", encoding="utf-8")
    logger, handler = writing_logger("fork-mid-write", stream)
    forking = threading.Event()
    os.register_at_fork(before=lambda: forking.set() if logger.handlers else None)

    def read_all():
        forking.wait(30)  # drain the pipe only once the fork has begun
        with os.fdopen(read_end, "rb") as pipe:
            while pipe.read(65536):
                pass

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    writing = threading.Thread(target=logger.warning, args=("x" * (capacity * 2),))
    writing.start()
    try:
        wait_for(lambda: pipe_holds(read_end) >= capacity, what="a write to block on a full pipe")
        pid = os.fork()
        if pid == 0:
            try:
                logger.warning("the child logs")
            finally:
                os._exit(0)
        try:
            wait_for(lambda: os.waitpid(pid, os.WNOHANG)[0], what="the child to log and exit")
        except AssertionError:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise
    finally:
        logger.handlers.clear()  # the fork hook above does nothing from now on
        handler.close()
        stream.close()  # the reader's end of file
        reader.join(30)
        writing.join(30)


def pipe_holds(read_end):
    """Bytes waiting in a pipe."""
    import fcntl
    import termios

    return struct.unpack("i", fcntl.ioctl(read_end, termios.FIONREAD, b"\0\0\0\0"))[0]
