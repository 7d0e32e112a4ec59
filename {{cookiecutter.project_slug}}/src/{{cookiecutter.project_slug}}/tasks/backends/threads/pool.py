"""A bounded pool of worker threads in the web process.

``concurrent.futures.ThreadPoolExecutor`` queues without limit and runs queued
work at interpreter exit; this pool refuses work past ``max_workers`` running
plus ``max_queued`` waiting, can drop a queued task, and hands back what never
started when it shuts down.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

Work = TypeVar("Work")


class WorkerPool(Generic[Work]):
    """Run tasks on at most ``max_workers`` threads, with ``max_queued`` waiting."""

    def __init__(
        self,
        run: Callable[[Work], None],
        max_workers: int,
        max_queued: int,
        name: str = "task-worker",
    ) -> None:
        self._run = run
        self._max_workers = max_workers
        self._capacity = max_workers + max_queued
        self._name = name
        self._lock = threading.Lock()
        # Two conditions on one lock, so that each wakes only who needs it: a
        # submit wakes one idle worker, and the last task to end wakes
        # ``wait``. Waking every idle worker after every task cost about a
        # fifth of the submit rate under load.
        self._work_ready = threading.Condition(self._lock)
        self._all_done = threading.Condition(self._lock)
        self._queue: deque[Work] = deque()
        self._threads: list[threading.Thread] = []
        self._reserved = 0  # places claimed: queued, running, or about to be
        self._running = 0
        self._idle = 0
        self._closed = False
        # Whether the task this worker thread runs gave its place back already.
        self._released_early = threading.local()

    @property
    def workers(self) -> tuple[threading.Thread, ...]:
        """The worker threads started so far (at most ``max_workers``)."""
        return tuple(self._threads)

    @property
    def queued(self) -> int:
        """Tasks waiting for a worker now."""
        return len(self._queue)

    @property
    def running(self) -> int:
        """Tasks a worker runs now."""
        return self._running

    def oldest(self) -> Work | None:
        """The task that has waited longest, or None if none waits."""
        with self._lock:
            return self._queue[0] if self._queue else None

    def reserve(self) -> bool:
        """Claim a place for a task; False when every place is taken or the pool is closed."""
        with self._lock:
            if self._closed or self._reserved >= self._capacity:
                return False
            self._reserved += 1
            return True

    def release(self) -> None:
        """Give back a place claimed by ``reserve`` and not used."""
        with self._lock:
            self._reserved -= 1

    def run(self, task: Work) -> bool:
        """Queue ``task`` in the place it reserved; False if the pool closed meanwhile."""
        with self._lock:
            if self._closed:
                self._reserved -= 1
                return False
            self._queue.append(task)
            # Idle workers already woken still count as idle until they run:
            # start another thread when the queue outgrows them.
            if len(self._queue) > self._idle and len(self._threads) < self._max_workers:
                self._start_worker()
            else:
                self._work_ready.notify()
            return True

    def release_running(self) -> None:
        """From ``run``: its task is done, and its place free, before the end shows.

        A client that reads the end and submits again at once must find the
        place its task held, not a 503.
        """
        with self._lock:
            self._reserved -= 1
        self._released_early.done = True

    def cancel(self, task: Work) -> bool:
        """Drop ``task`` from the queue; False if it is not waiting there."""
        with self._lock:
            try:
                self._queue.remove(task)
            except ValueError:
                return False
            self._reserved -= 1
            return True

    def close(self) -> list[Work]:
        """Take no more tasks; return those that never started."""
        with self._lock:
            self._closed = True
            never_started = list(self._queue)
            self._queue.clear()
            self._reserved -= len(never_started)
            self._work_ready.notify_all()  # idle workers see the queue closed, and end
        return never_started

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for running tasks; whether they all ended."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._all_done.wait(remaining)
        return True

    def _start_worker(self) -> None:
        # Daemon threads: an idle pool must never hold the process open. Running
        # tasks get their time from ``shutdown``, which the app calls at exit.
        thread = threading.Thread(
            target=self._work, name=f"{self._name}-{len(self._threads) + 1}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._idle += 1
                    self._work_ready.wait()
                    self._idle -= 1
                if not self._queue:
                    return
                task = self._queue.popleft()
                self._running += 1
            self._released_early.done = False
            try:
                self._run(task)
            finally:
                with self._lock:
                    self._running -= 1
                    if not self._released_early.done:
                        self._reserved -= 1
                    if not self._running:
                        self._all_done.notify_all()
