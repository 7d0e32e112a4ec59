"""The status monitor: the JSON a client reads about a task while it works."""

from __future__ import annotations

import functools
import json
import time

from flask import Response

from .backend import RUNNING, TaskState


def monitor_response(
    task: TaskState, status_code: int, script_root: str, retry_after: str
) -> Response:
    """The task's monitor; a ``202`` also says where to poll and when."""
    status = task.status  # read once: another thread may change it
    status_url = f"{script_root}/status/{task.id}"
    headers = [("Content-Type", "application/json"), ("Task-Status", status)]
    if status_code == 202:
        headers += [("Location", status_url), ("Retry-After", retry_after)]
    created_at = rfc3339(task.created_at)
    updated_at = created_at if task.updated_at == task.created_at else rfc3339(task.updated_at)
    body: dict[str, object] = {
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
    if task.cancel_requested and status == RUNNING:
        body["cancel_requested"] = True
    if task.error is not None:
        body["error"] = task.error
    return Response(json.dumps(body), status_code, headers)


def rfc3339(timestamp: float) -> str:
    """``2026-11-25T10:00:00.123Z``: RFC 3339, UTC, to the millisecond."""
    seconds = int(timestamp)
    return f"{_utc_second(seconds)}.{int((timestamp - seconds) * 1000):03d}Z"


@functools.lru_cache(maxsize=4)  # under load most times fall in the same second
def _utc_second(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
