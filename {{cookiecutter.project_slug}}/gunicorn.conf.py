"""Gunicorn settings for production: ``gunicorn -c gunicorn.conf.py``."""

import http
import json
import math
import os
import signal

from gunicorn import util


def _setting(key, default, convert, rule, most=math.inf):
    """The environment variable ``key`` as a number; stop at once, naming it, if it is not."""
    value = os.environ.get(key, default)
    try:
        number = convert(value)
    except ValueError:
        number = None
    if number is None or not math.isfinite(number) or not 0 < number <= most:
        raise SystemExit(f"{key} must be {rule}, got {value!r}")
    return number


wsgi_app = "{{ cookiecutter.project_slug }}:create_app()"
port = _setting("PORT", "8000", int, "a port number (1 to 65535)", most=65535)
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{port}"

{%- if cookiecutter.task_backend == "celery" %}
# Several worker processes: every task lives in Redis, so any process (on any
# machine sharing the Redis) answers for any task. Tasks run in Celery workers.
workers = _setting("WEB_CONCURRENCY", "4", int, "a whole number >= 1")
worker_class = "gthread"
threads = _setting("GUNICORN_THREADS", "8", int, "a whole number >= 1")

# A web process touches no task on SIGTERM: it finishes its requests and exits.
graceful_timeout = 30

# The app must load in each worker, not in the arbiter before the fork: its
# Redis connections and reaper thread would not survive a fork.
preload_app = False
{%- else %}
# One worker process. With the threads backend a task lives in the memory of
# the process that took it: with two workers, a poll that reaches the other
# one answers 404 (24 to 50 percent of polls, measured on a design that did).
# Scale with threads here, and with TASK_MAX_WORKERS for the tasks themselves.
# WEB_CONCURRENCY is read as gunicorn would, so that on_starting refuses it too.
workers = _setting("WEB_CONCURRENCY", "1", int, "a whole number >= 1")
worker_class = "gthread"
threads = _setting("GUNICORN_THREADS", "8", int, "a whole number >= 1")

# On SIGTERM running tasks get as long to finish as the app allows them
# (TASK_SHUTDOWN_TIMEOUT), and the server waits that long before it kills.
graceful_timeout = math.ceil(
    _setting("FLASK_TASK_SHUTDOWN_TIMEOUT", "30", float, "a number of seconds > 0")
)

# The app must load in the worker, not in the arbiter before the fork: its
# cleaner and worker threads would not survive a fork.
preload_app = False
{%- endif %}

accesslog = "-"
{%- if cookiecutter.task_backend == "celery" %}
# Gunicorn's usual line, and which worker process answered.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" pid=%(p)s'
{%- endif %}

# FLASK_LOG_FORMAT=json (the app's LOG_FORMAT setting): gunicorn's own lines
# are JSON objects too, one per line, and each access line adds the request's
# parts as fields. The app's lines go to the root logger's handler, which
# create_app adds (logs.py).
if os.environ.get("FLASK_LOG_FORMAT") == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": "WARNING", "handlers": []},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["errors"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
        },
        "handlers": {
            "errors": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "access",
                "stream": "ext://sys.stdout",
            },
        },
        "formatters": {
            "json": {"()": "{{ cookiecutter.project_slug }}.logs.JsonLineFormatter"},
            "access": {"()": "{{ cookiecutter.project_slug }}.logs.AccessJsonFormatter"},
        },
    }


def write_problem(sock, status_int, reason, mesg):
    """``gunicorn.util.write_error``, writing a problem (RFC 9457), as the app's errors are.

    Gunicorn answers a request it cannot read itself, before the app sees it:
    a request line longer than ``limit_request_line`` (414), a header longer
    than ``limit_request_field_size`` or more than ``limit_request_fields``
    of them (431), a malformed request line, header or ``Content-Length``
    (400). Its own page is HTML.
    """
    try:
        description = http.HTTPStatus(status_int).description
    except ValueError:  # a code Python has no words for
        description = reason
    problem = {
        "type": "about:blank",
        "title": reason,
        "status": status_int,
        "detail": mesg or description,
    }
    body = json.dumps(problem).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


util.write_error = write_problem

# Gunicorn 27's control socket lives at one path per user: two services (or
# two test runs) on one machine would fight over it. Nothing here uses it.
control_socket_disable = True


def on_starting(server):
    """Check the app's settings once, before any worker starts.

    A bad setting then stops the server with one line naming the key, rather
    than a traceback from every worker that fails to boot.
    """
{%- if cookiecutter.task_backend == "threads" %}
    # The final count: this file, WEB_CONCURRENCY, GUNICORN_CMD_ARGS and the
    # command line (--workers) have all been applied by now.
    if server.cfg.workers != 1:
        raise SystemExit(
            f"{{ cookiecutter.project_slug }}: refusing {server.cfg.workers} worker processes: "
            "tasks live in one process's memory, so a poll reaching another process "
            "answers 404; serve with 1 worker (more threads: GUNICORN_THREADS), or bake "
            "with task_backend=celery to run several processes."
        )
{% endif %}
    from flask import Flask

    from {{ cookiecutter.project_slug }}.app import configure
    from {{ cookiecutter.project_slug }}.settings import ConfigError

    try:
        configure(Flask("{{ cookiecutter.project_slug }}"))
    except ConfigError as error:
        raise SystemExit(f"{{ cookiecutter.project_slug }}: {error}") from None


def post_worker_init(worker):
    """On SIGTERM, answer the requests held by ``Prefer: wait`` at once, then stop as usual.

    gunicorn lets running requests finish before a worker exits: a held
    request would keep it up to TASK_MAX_WAIT seconds for nothing.
    """
    from {{ cookiecutter.project_slug }}.tasks.waiting import release_held

    stop = signal.getsignal(signal.SIGTERM)

    def release_then_stop(signum, frame):
        release_held()
        stop(signum, frame)

    signal.signal(signal.SIGTERM, release_then_stop)
