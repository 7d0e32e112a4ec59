"""The ends listener: one Redis subscription per web process, waking held requests.

The scripts that end a task publish its id (``scripts.py``); a web process
holding requests for tasks (``Prefer: wait``) listens on one connection, in
one thread, whatever the number of requests it holds.
"""

from __future__ import annotations

import contextlib
import threading

import redis
from redis.client import PubSub

from ...background import BackgroundThread
from ...waiting import Waiters

# Seconds between tries to subscribe again while Redis is away: doubling.
RECONNECT_FIRST = 0.1
RECONNECT_MAX = 2.0


class EndsListener:
    """Wakes the requests held for a task when Redis says that the task ended.

    Started by the first held request, never at import: a Celery worker
    forks its pool after importing the app. Each time it subscribes (the
    first time too) and each time it loses Redis, it has every held request
    read its task again, so that an end published while it was not listening
    keeps no request past its deadline, and a request held while Redis is
    away is answered at once.
    """

    def __init__(self, client: redis.Redis, channel: str, waiters: Waiters) -> None:
        self._client = client
        self._channel = channel
        self._waiters = waiters
        self._thread = BackgroundThread(self._listen, "task-ends")

    def start(self) -> None:
        """Start listening, unless it runs already or was stopped (cheap to call often)."""
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()

    def _listen(self, stopped: threading.Event) -> None:
        pause = RECONNECT_FIRST
        while not stopped.is_set():
            # redis-py leaves pubsub() unannotated; it returns a PubSub.
            subscription: PubSub = self._client.pubsub()  # type: ignore[no-untyped-call]
            try:
                subscription.subscribe(self._channel)  # type: ignore[no-untyped-call]
                while not stopped.is_set():
                    message = subscription.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "message":
                        self._waiters.wake(message["data"].decode())
                    elif message["type"] == "subscribe":
                        # Listening from now on; an end before now was missed.
                        self._waiters.wake_all()
                        pause = RECONNECT_FIRST
            except (redis.RedisError, OSError):
                self._waiters.wake_all()  # they read again: 503 while Redis is away
                stopped.wait(pause)
                pause = min(pause * 2, RECONNECT_MAX)
            finally:
                with contextlib.suppress(redis.RedisError, OSError):
                    subscription.close()
