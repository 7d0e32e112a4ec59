"""One cleaner pass over many retained tasks, measured inside one process.

``run.py`` runs this file with the python of the venv the baked project is
installed in: ``python inprocess.py --tasks 100000``. It fills a real app's
task store through the store's own API, with a fake clock so that one
percent of the tasks finished long ago, then times one
``store.remove_expired(cutoff)`` with the store's lock wrapped so that every
hold of it is timed. It prints one JSON object.

The reference is the original design's way: one pass over every task, under
one hold of a lock, building the dict of the tasks that stay.
"""

import argparse
import json
import secrets
import threading
import time

from async_flask_service import create_app
from async_flask_service.tasks.backend import SUCCEEDED
from async_flask_service.tasks.backends.threads.store import Task
from async_flask_service.tasks.snapshot import ResponseSnapshot
from flask import Response

# When the expired tasks finished, when the others did, and the cutoff between.
LONG_AGO, RECENTLY, CUTOFF = 1_000_000.0, 1_001_000.0, 1_000_500.0


class TimedLock:
    """Wraps a lock and records how long each hold of it lasted."""

    def __init__(self, lock):
        self._lock = lock
        self._acquired_at = None
        self.holds = 0
        self.longest = 0.0

    def acquire(self, blocking=True, timeout=-1):
        acquired = self._lock.acquire(blocking, timeout)
        if acquired:
            self._acquired_at = time.perf_counter()
        return acquired

    def release(self):
        held = time.perf_counter() - self._acquired_at
        self._lock.release()
        self.holds += 1
        self.longest = max(self.longest, held)

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc_info):
        self.release()


class FakeClock:
    """A clock that tells whatever time it was set to."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def fill(backend, clock, count, expired):
    """Hold ``count`` finished tasks, the first ``expired`` of them finished long ago.

    Returns ``{id: (task, finished at)}``, for the reference pass.
    """
    tasks = {}
    # Captured as the engine captures a view's answer, so its layout is the engine's.
    captured = ResponseSnapshot.capture(
        Response(b"{}\n", mimetype="application/json"), SUCCEEDED, max_bytes=1024
    )
    answer = ResponseSnapshot(backend.shared_heads.share(captured.head), captured.body)
    store = backend.store
    for index in range(count):
        clock.now = LONG_AGO if index < expired else RECENTLY
        task = Task(secrets.token_urlsafe(16), None, None, clock.now)
        store.add(task)
        store.start(task)
        store.finish(task, SUCCEEDED, answer)
        tasks[task.id] = (task, clock.now)
    return tasks


def original_pass(tasks):
    """The original design's cleaner: one hold, every task looked at, a new dict.

    ``tasks`` is ``{id: (task, finished at)}``, the engine's own fields aside.
    """
    lock = threading.Lock()
    started = time.perf_counter()
    with lock:
        kept = {task_id: held for task_id, held in tasks.items() if held[1] >= CUTOFF}
    return time.perf_counter() - started, len(kept)


def measure(count, expired):
    app = create_app({"SECRET_KEY": "bench", "TASK_RETENTION": 3600, "TASK_CLEANUP_INTERVAL": 3600})
    backend = app.extensions["task_engine"].backend
    store = backend.store
    clock = FakeClock(LONG_AGO)
    store.clock = clock
    tasks = fill(backend, clock, count, expired)
    if len(store) != count:
        raise SystemExit(f"the store holds {len(store)} tasks, not {count}")

    reference_seconds, kept = original_pass(tasks)
    store._lock = timed = TimedLock(store._lock)
    started = time.perf_counter()
    removed = store.remove_expired(CUTOFF)
    pass_seconds = time.perf_counter() - started
    if removed != expired or len(store) != count - expired or kept != count - expired:
        raise SystemExit(f"removed {removed} of {expired} expired tasks; {len(store)} left")
    return {
        "tasks": count,
        "expired": expired,
        "pass_seconds": pass_seconds,
        "longest_hold_seconds": timed.longest,
        "holds": timed.holds,
        "original_pass_seconds": reference_seconds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--expired-percent", type=float, default=1.0)
    args = parser.parse_args()
    expired = round(args.tasks * args.expired_percent / 100)
    print(json.dumps(measure(args.tasks, expired)))


if __name__ == "__main__":
    main()
