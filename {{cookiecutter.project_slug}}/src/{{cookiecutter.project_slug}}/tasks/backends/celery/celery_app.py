"""Celery, wired as Flask's own Celery pattern does it.

``celery_init_app`` makes a Celery app from ``app.config["CELERY"]`` and keeps
it at ``app.extensions["celery"]``; its tasks run inside the Flask app's
context. Unlike the pattern, no result backend is used: a task's state lives
in its own Redis keys (``store.py``), and a message carries only its id.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task, signals
from flask import Flask

# Seconds a web process waits on Redis before it answers 503.
REDIS_TIMEOUT = 2


@signals.setup_logging.connect(weak=False)
def keep_the_apps_logging(loglevel: int | str | None = None, **_: Any) -> None:
    """A worker writes its lines as the app does (``logs.py``), not as Celery would.

    With a receiver of this signal Celery leaves logging alone: each line is
    written once (Celery would add a root handler beside Flask's), in
    ``LOG_FORMAT``, naming its task. ``--loglevel`` still applies.
    """
    root = logging.getLogger()
    if loglevel:
        root.setLevel(loglevel)
    for handler in root.handlers:
        handler.addFilter(name_celerys_task)


def name_celerys_task(record: logging.LogRecord) -> bool:
    """Celery's own lines about a task (received, succeeded) name it in ``task_id`` too.

    They log outside the task's run, with the task's id in their ``data``.
    """
    data = getattr(record, "data", None)
    if getattr(record, "task_id", None) is None and isinstance(data, dict):
        task_id = data.get("id")
        if isinstance(task_id, str):
            record.task_id = task_id
    return True


def celery_config(app: Flask) -> dict[str, Any]:
    """``app.config["CELERY"]``: what this backend needs, then what the app set there."""
    config = app.config
    own = dict(config.get("CELERY", {}))
    transport_options = {
        "socket_timeout": REDIS_TIMEOUT,
        "socket_connect_timeout": REDIS_TIMEOUT,
        **own.pop("broker_transport_options", {}),
    }
    return {
        "broker_url": config["TASK_REDIS_URL"],
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": transport_options,
        # Fail a submit at once when the broker is down, rather than retrying.
        "task_publish_retry": False,
        # Messages are JSON and carry only the task id; no result backend.
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "result_backend": None,
        # A message is acknowledged as its task starts. Late acks would have
        # Redis deliver a long task again after its visibility timeout; a lost
        # worker's task is failed by the lease instead.
        "task_acks_late": False,
        # A worker takes a task only when it has a free slot: a busy worker
        # must not hoard queued tasks that an idle one could run.
        "worker_prefetch_multiplier": 1,
        "worker_disable_prefetch": True,
        # Celery 6's default. It cancels only tasks acknowledged late, and
        # these are acknowledged as they start: it changes nothing here but
        # the deprecation warning Celery 5 prints at every lost connection.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_concurrency": config["TASK_MAX_WORKERS"],
        "task_default_queue": app.name,
        **own,
    }


def celery_init_app(app: Flask) -> Celery[Task[Any, Any]]:
    """Make the app's Celery app, kept at ``app.extensions["celery"]``."""

    class FlaskTask(Task[Any, Any]):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    app.config["CELERY"] = celery_config(app)
    celery_app: Celery[Task[Any, Any]] = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    app.extensions["celery"] = celery_app
    return celery_app
