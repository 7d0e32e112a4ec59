"""Task state in Redis: each transition one script (``scripts.py``), each read one trip.

Every web process and every worker, on any machine, reads and changes the
same keys, so any of them answers for any task.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any, NamedTuple, cast

import redis
from kombu.exceptions import OperationalError

from ...backend import FAILED, Busy, Idempotency, Progress, Unavailable
from ...problems import CANCELLED_PROBLEM, Problem
from ...snapshot import Head, RequestSnapshot, ResponseSnapshot
from . import scripts


@contextlib.contextmanager
def redis_unavailable() -> Iterator[None]:
    """Turn every failure to reach Redis (or the broker on it) into ``Unavailable``.

    Unreachable, too slow, out of memory, read-only: not the request's
    fault, and it may pass. The client is told to try again.
    """
    try:
        yield
    except (redis.RedisError, OperationalError, OSError) as error:
        raise Unavailable from error


# How many tasks one call of the reap script looks at; a pass calls it until
# it has seen them all, so that Redis is never held long by one call.
REAP_BATCH = 500


class Ended(NamedTuple):
    """A task's end, as the script that ended it saw it, for its log line."""

    task_id: str
    endpoint: str
    status: str
    queued: float  # seconds
    ran: float


class Started(NamedTuple):
    """A task a worker took: its request, its view's endpoint, and seconds it was queued."""

    request: RequestSnapshot
    endpoint: str
    queued: float


class StoredTask:
    """A task as read from its Redis hash (a ``TaskState``)."""

    __slots__ = (
        "id",
        "owner",
        "status",
        "created_at",
        "updated_at",
        "progress",
        "cancel_requested",
        "error",
        "response",
        "fingerprint",
        "endpoint",
    )

    def __init__(self, task_id: str, fields: dict[bytes, bytes]) -> None:
        self.id = task_id
        self.owner = fields.get(b"owner")
        self.status = fields[b"status"].decode()
        self.created_at = int(fields[b"created"]) / 1000
        self.updated_at = int(fields[b"updated"]) / 1000
        progress = fields.get(b"progress")
        self.progress: Progress | None = None
        if progress is not None:
            percent, message = json.loads(progress)
            self.progress = percent, message
        self.cancel_requested = b"cancel" in fields
        error = fields.get(b"error")
        self.error: Problem | None = None if error is None else json.loads(error)
        head = fields.get(b"head")
        self.response: ResponseSnapshot | None = None
        if head is not None:
            self.response = ResponseSnapshot(head_from_json(head), fields[b"answer"])
        self.fingerprint = fields.get(b"fp")
        # Read by a cancel only; a poll does not read it.
        self.endpoint = fields.get(b"endpoint", b"").decode("utf-8", "replace")


def head_from_json(text: bytes) -> Head:
    """The (status line, headers) that ``json.dumps(head)`` wrote."""
    status, headers = json.loads(text)
    return status, tuple((name, value) for name, value in headers)


def request_to_json(request: RequestSnapshot) -> str:
    """The request's environ as JSON text, ASCII only; its body goes apart, as bytes."""
    environ = {key: value for key, value in request.environ.items() if key != "wsgi.version"}
    return json.dumps(environ)


def request_from_json(text: bytes, body: bytes) -> RequestSnapshot:
    """The request that ``request_to_json`` and its ``body`` were made from."""
    environ = json.loads(text)
    environ["wsgi.version"] = (1, 0)
    return RequestSnapshot(environ, body)


class RedisClock:
    """Redis's ``TIME`` in milliseconds, told here without asking: its offset from
    ``time.monotonic()``, learnt once by asking and again from each time a
    script answers with.

    Learnt from a reply, the offset is short by the reply's way back, so a
    deadline set with it comes early, never late.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._offset_ms: float | None = None

    def now_ms(self) -> float:
        """Redis's time now, as far as this process can tell; asks Redis the first time."""
        if self._offset_ms is None:
            with redis_unavailable():
                seconds, microseconds = cast(tuple[int, int], self._redis.time())
            self.learn(seconds * 1000 + microseconds // 1000)
        assert self._offset_ms is not None
        return time.monotonic() * 1000 + self._offset_ms

    def learn(self, redis_ms: int) -> None:
        """Redis said its time was ``redis_ms`` (a script's ``now``) just now."""
        self._offset_ms = redis_ms - time.monotonic() * 1000


class Figures(NamedTuple):
    """The metrics as Redis keeps them (``scripts.METRICS``)."""

    # The metrics hash: ``<name>|<endpoint>|<detail>`` to a count.
    counts: dict[str, int]
    queued: int
    running: int
    oldest_queued_ms: int
    workers: int


class RedisTaskStore:
    """Tasks in Redis under ``prefix``: a hash per task, sets of queued and running ids,
    the metrics, and the workers alive."""

    def __init__(
        self, client: redis.Redis, prefix: str, retention: float, submit_deadline: float
    ) -> None:
        self.redis = client
        # A submit that reaches Redis this many seconds after it was sent
        # records nothing: its web process has answered 503, or is about to.
        self._submit_deadline_ms = submit_deadline * 1000
        self._clock = RedisClock(client)
        self._prefix = prefix
        self._task_prefix = f"{prefix}task:"
        self._queued = f"{prefix}queued"
        self._queued_since = f"{prefix}queued_since"
        self._running = f"{prefix}running"
        self._metrics = f"{prefix}metrics"
        self._workers = f"{prefix}workers"
        # Where the scripts publish the id of each task that ends.
        self.ends_channel = f"{prefix}ends"
        self._retention_ms = max(1, round(retention * 1000))
        self._scripts = {name: client.register_script(code) for name, code in scripts.ALL.items()}

    def _key(self, task_id: str) -> str:
        return self._task_prefix + task_id

    def _call(self, script: str, keys: list[str], args: list[str | bytes | int]) -> Any:
        """Run ``script``; its reply, as the script's comment in ``scripts.py`` says."""
        with redis_unavailable():
            return self._scripts[script](keys=keys, args=args)

    # -- web side -------------------------------------------------------

    def submit(
        self,
        owner: bytes | None,
        request: RequestSnapshot,
        idempotency: Idempotency | None,
        max_queued: int,
        endpoint: str,
    ) -> tuple[StoredTask | None, bool]:
        """Hold a new queued task: ``(task, True)``; or ``(held task, False)``; or raise ``Busy``.

        The held task is None if it went in the meantime.
        """
        task_id = secrets.token_urlsafe(16)
        keys = [self._key(task_id), self._queued, self._queued_since, self._metrics]
        fingerprint = b""
        if idempotency is not None:
            keys.append(self._scope_key(idempotency))
            fingerprint = idempotency.fingerprint
        deadline = self._clock.now_ms() + self._submit_deadline_ms
        outcome, detail = self._call(
            "submit",
            keys,
            [
                task_id,
                max_queued,
                request_to_json(request),
                request.body,
                owner or b"",
                fingerprint,
                self._task_prefix,
                endpoint,
                round(deadline),
            ],
        )
        if outcome == b"late":
            # Redis was stalled, or its clock leapt: either way nothing is
            # recorded, and the next submit's deadline is set by its clock now.
            self._clock.learn(int(detail))
            raise Unavailable
        if outcome == b"busy":
            raise Busy
        if outcome == b"held":
            # Held under this owner's key: its owner is this one.
            return self.get(cast(bytes, detail).decode(), owner), False
        self._clock.learn(int(detail))
        # What the script wrote, without another trip to read it back.
        fields: dict[bytes, bytes] = {b"status": b"queued", b"created": detail, b"updated": detail}
        if owner is not None:
            fields[b"owner"] = owner
        if idempotency is not None:
            fields[b"fp"] = fingerprint
        return StoredTask(task_id, fields), True

    def get(self, task_id: str, requester: bytes | None) -> StoredTask | None:
        """The task, unless it is gone or another owner's (whose fields are never read)."""
        values: list[bytes | None] | None = self._call(
            "read", [self._key(task_id)], [requester or b"", *scripts.READ_FIELDS]
        )
        if not values or values[0] is None:
            return None
        fields = {
            name.encode(): value
            for name, value in zip(scripts.READ_FIELDS, values, strict=True)
            if value is not None
        }
        return StoredTask(task_id, fields)

    def cancel(self, task_id: str, requester: bytes | None) -> tuple[str | None, StoredTask | None]:
        """Cancel, ask to stop, or forget: the status before (None: gone, or another
        owner's), and the task now."""
        reply: list[Any] | None = self._call(
            "cancel",
            [self._key(task_id), self._queued, self._queued_since, self._metrics],
            [
                requester or b"",
                task_id,
                self._retention_ms,
                json.dumps(CANCELLED_PROBLEM),
                self.ends_channel,
            ],
        )
        if reply is None:
            return None, None
        before: bytes | None
        after: list[bytes]
        before, after = reply
        if before is None:
            return None, None
        fields = dict(zip(after[::2], after[1::2], strict=True))
        return before.decode(), StoredTask(task_id, fields) if fields else None

    def forget(self, task_id: str) -> None:
        """Drop a task that was never handed to a worker, and its Idempotency-Key."""
        self._call("forget", [self._key(task_id), self._queued, self._queued_since], [task_id])

    def reap(self, worker_lost: Problem, lease: float) -> tuple[list[Ended], list[str]]:
        """Fail running tasks whose lease lapsed; take queued ones whose message may be lost.

        Returns the tasks that failed, and the ids of queued tasks to send again.
        """
        failed: list[Ended] = []
        resend: list[str] = []
        while True:
            lapsed: list[list[Any]]
            looked_at: int
            ids: list[bytes]
            lapsed, looked_at, ids = self._call(
                "reap",
                [self._running, self._queued, self._metrics, self._workers],
                [
                    self._task_prefix,
                    self._retention_ms,
                    json.dumps(worker_lost),
                    REAP_BATCH,
                    round(lease * 1000),
                    self.ends_channel,
                ],
            )
            failed += [
                Ended(task_id.decode(), endpoint.decode(), FAILED, queued / 1000, ran / 1000)
                for task_id, endpoint, queued, ran in lapsed
            ]
            resend += [task_id.decode() for task_id in ids]
            if looked_at < REAP_BATCH and len(ids) < REAP_BATCH:
                return failed, resend

    def lost(self, task_id: str, worker_lost: Problem) -> Ended | None:
        """Fail a running task whose worker process died; None if it no longer runs."""
        outcome: list[Any] | None = self._call(
            "lost",
            [self._key(task_id), self._running, self._metrics],
            [task_id, self._retention_ms, json.dumps(worker_lost), self.ends_channel],
        )
        if not outcome:
            return None
        endpoint, queued, ran = outcome
        return Ended(task_id, endpoint.decode(), FAILED, queued / 1000, ran / 1000)

    # -- worker side ----------------------------------------------------

    def start(self, task_id: str, lease: float) -> Started | None:
        """Mark a queued task running and take its request; None if it must not run."""
        taken: list[Any] | None = self._call(
            "start",
            [self._key(task_id), self._queued, self._running, self._queued_since, self._metrics],
            [task_id, round(lease * 1000)],
        )
        if taken is None:
            return None
        environ, body, endpoint, queued = taken
        return Started(request_from_json(environ, body), endpoint.decode(), queued / 1000)

    def renew(self, task_id: str, lease: float) -> bool:
        """Extend a running task's lease; False once it is no longer running."""
        return bool(
            self._call("renew", [self._key(task_id), self._running], [task_id, round(lease * 1000)])
        )

    def report(self, task_id: str, progress: Progress) -> None:
        self._call("report", [self._key(task_id)], [json.dumps(progress)])

    def cancel_requested(self, task_id: str) -> bool:
        with redis_unavailable():
            return bool(self.redis.hexists(self._key(task_id), "cancel"))

    def finish(
        self, task_id: str, status: str, response: ResponseSnapshot | None, error: Problem | None
    ) -> tuple[str, float, float] | None:
        """End a running task: its final status (a cancel asked for wins) and the
        seconds it was queued and ran; None if it was not running."""
        head, answer = "", b""
        if response is not None:
            status_line, headers = response.head
            head, answer = json.dumps([status_line, headers]), response.body
        ended: list[Any] | None = self._call(
            "finish",
            [self._key(task_id), self._running, self._metrics],
            [
                task_id,
                status,
                head,
                answer,
                "" if error is None else json.dumps(error),
                self._retention_ms,
                json.dumps(CANCELLED_PROBLEM),
                self.ends_channel,
            ],
        )
        if not ended:
            return None
        final, queued, ran = ended
        return final.decode(), queued / 1000, ran / 1000

    def heartbeat(self, worker: str, lease: float) -> None:
        """``worker`` is alive for one more ``lease`` seconds."""
        self._call("heartbeat", [self._workers], [worker, round(lease * 1000)])

    def leave(self, worker: str) -> None:
        """``worker`` stops: it is alive no more."""
        with redis_unavailable():
            self.redis.zrem(self._workers, worker)

    # -- metrics --------------------------------------------------------

    def figures(self) -> Figures:
        """Every metric at once, in one round trip."""
        fields, queued, running, oldest_ms, workers = self._call(
            "metrics",
            [self._metrics, self._queued, self._running, self._queued_since, self._workers],
            [],
        )
        counts = {
            name.decode("utf-8", "replace"): int(value)
            for name, value in zip(fields[::2], fields[1::2], strict=True)
        }
        return Figures(counts, queued, running, oldest_ms, workers)

    def _scope_key(self, idempotency: Idempotency) -> str:
        """One key per (owner, Idempotency-Key): a digest, so any key text is safe."""
        key = idempotency.key.encode("utf-8", "surrogatepass")
        scope = (idempotency.owner or b"") + b"\0" + key
        return f"{self._prefix}idempotency:{hashlib.sha256(scope).hexdigest()}"
