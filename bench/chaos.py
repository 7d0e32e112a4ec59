"""Chaos: a celery bake under load while its workers, Redis and web server fail.

Run from a checkout of the template::

    python bench/chaos.py                      # bake, install, 60 s of load: about 2 minutes
    python bench/chaos.py --project PATH       # an existing celery bake, with PATH/.venv

It bakes the default project with ``task_backend=celery`` (or takes
``--project``), installs it into a fresh venv as the benchmark does
(``project.py``), and starts, all on 127.0.0.1: a ``redis-server`` that
persists every write (``--appendonly yes --appendfsync always``, its files in
a temporary folder), two Celery workers started with the baked README's
command (concurrency 4 each), and gunicorn with the baked
``gunicorn.conf.py`` (2 web processes). The app, ``chaos_app.py``, is the
baked ``create_app()`` plus one ``@async_api`` view, ``/chaos/<n>``, that
works 1 to 2 s, appends a line to the marker file ``markers/<n>`` (proof that
its work was done, once per run) and answers ``n``.

For ``--duration`` seconds it submits ``--rate`` tasks a second, each with a
new ``n`` (and ``Idempotency-Key``, so that a retried submit is the same
task), and polls every accepted task until it ends, while it SIGKILLs a
worker's process group and restarts it, stops Redis for 3 s (SIGTERM: a real
shutdown, then a restart on the same port and files) and restarts gunicorn.
Then it polls until every task has ended, or ``TASK_LEASE`` + 60 s have
passed, stops every process, and prints a Markdown table: what the clients
saw, checked against the marker files. It exits 0 when it measured, whatever
the figures say, and 1 with an ``ERROR: could not measure: ...`` line
otherwise.
"""

import argparse
import contextlib
import heapq
import http.client
import itertools
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import celerybench
from project import BenchError, Server, bake, install

BENCH_DIR = Path(__file__).resolve().parent

WEB_PROCESSES = 2
WORKERS = 2
CONCURRENCY = 4  # per worker
CLEANUP_INTERVAL = 2  # seconds between the reaper's passes
DEFAULT_LEASE = 30  # the service's own default TASK_LEASE
REDIS_DOWN_SECONDS = 3
MAX_DURATION = 90
MAX_RATE = 30
# Client side: threads that send requests, and how long one may take.
CLIENT_THREADS = 32
HTTP_TIMEOUT = 10
# Seconds after the load during which a submit refused for an outage is still retried.
SUBMIT_RETRY_GRACE = 15
# A poll answered 404 is asked again this many times before the task counts as lost.
NOT_FOUND_POLLS = 4

# The app the chaos runs: the baked service and one slow task that leaves a mark.
CHAOS_APP = '''\
"""The baked celery service with the chaos route, for gunicorn and the workers."""

import os
import time
from pathlib import Path

from {package} import async_api, create_app, current_task

MARKERS = Path(os.environ["CHAOS_MARKERS"])

app = create_app()
celery_app = app.extensions["celery"]
# The worker runs the tasks of Celery's default app: make it this one (as worker.py does).
celery_app.set_default()


@app.get("/chaos/<int:n>")
@async_api
def chaos(n):
    """Work 1 to 2 s, then append one line to the marker ``n``: one line per run."""
    seconds = 1 + (n * 7919 % 1000) / 1000
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if current_task.cancelled:  # its lease was lost: the task is no longer ours
            return {{"n": n, "stopped": True}}
        time.sleep(0.1)
    line = f"{{current_task.id}} {{os.getpid()}} {{os.getpgid(0)}} {{time.time():.3f}}\\n"
    with open(MARKERS / str(n), "a", encoding="utf-8") as marker:
        marker.write(line)
    return {{"n": n}}
'''

BUSY = "no room"  # in the 503 problem of a full queue
UNREACHABLE = "cannot be reached"  # in the 503 problem of Redis unreachable


def progress(message):
    print(f"# {message}", file=sys.stderr, flush=True)


def request(port, path, headers=None):
    """``(status, headers, body)`` of a GET on a new connection; ``OSError`` if none."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    except http.client.HTTPException as error:
        raise OSError(f"{type(error).__name__}: {error}") from error
    finally:
        connection.close()


def retry_after(headers, default=1.0):
    try:
        return max(0.1, float(headers.get("Retry-After", default)))
    except ValueError:
        return default


@dataclass
class Task:
    """What the client knows of one ``n``."""

    n: int
    submits: int = 0
    task_id: str | None = None
    status_url: str | None = None
    accepted_at: float | None = None
    refused: str | None = None  # "busy", "unreachable", "no answer", or another status
    saw_unreachable: bool = False  # a submit answered 503, Redis unreachable
    saw_no_answer: bool = False  # a submit found no server (gunicorn restarting)
    polls: int = 0
    polls_unreachable: int = 0
    not_found: int = 0  # polls answered 404 without Task-Status
    found_after_not_found: bool = False
    status: str | None = None  # the last Task-Status seen
    final: str | None = None  # succeeded, failed, cancelled, lost
    ended_at: float | None = None
    answer: bytes = b""
    detail: str | None = None  # a failed task's problem detail


class Load:
    """Submits ``rate`` tasks a second for ``duration`` s and polls each until it ends.

    One scheduler thread (``run``) hands every request, due at its time, to a
    bounded pool of client threads; each answer schedules what follows it.
    """

    def __init__(self, port, rate, duration, drain, key_prefix):
        self.port = port
        self.rate = rate
        self.duration = duration
        self.drain = drain
        self.key_prefix = key_prefix
        self.tasks = {}
        self.lock = threading.Lock()
        self.heap = []
        self.sequence = itertools.count()
        self.in_flight = 0
        self.started = None
        self.load_end = None
        self.deadline = None
        self.submit_503 = 0  # 503 answers to submits, Redis unreachable
        self.submit_busy = 0  # 503 answers to submits, the queue full
        self.submit_no_answer = 0  # submits that found no server or no answer
        self.poll_no_answer = 0
        # When requests met Redis unreachable (503) or no server: (time.monotonic(), what).
        self.troubles = []
        self.unexpected = []  # (what, status, body) of answers the contract has no room for

    def later(self, delay, job, task):
        with self.lock:
            heapq.heappush(self.heap, (time.monotonic() + delay, next(self.sequence), job, task))

    def run(self, stop, failed):
        """Run the load, then the drain; return early on ``stop`` or a fault's ``failed``."""
        self.started = time.monotonic()
        self.load_end = self.started + self.duration
        self.deadline = self.load_end + self.drain
        interval = 1 / self.rate
        next_submit, n = self.started, 0
        with ThreadPoolExecutor(CLIENT_THREADS, thread_name_prefix="client") as pool:
            try:
                while not stop.is_set() and failed.get("error") is None:
                    now = time.monotonic()
                    if now >= self.deadline:
                        break
                    due = []
                    while next_submit <= now and next_submit < self.load_end:
                        n += 1
                        task = self.tasks[n] = Task(n)
                        due.append((self.submit, task))
                        next_submit += interval
                    with self.lock:
                        while self.heap and self.heap[0][0] <= now:
                            _, _, job, task = heapq.heappop(self.heap)
                            due.append((job, task))
                        self.in_flight += len(due)
                        idle = not self.heap and self.in_flight == 0
                    for job, task in due:
                        pool.submit(self._run_job, job, task)
                    if now >= self.load_end and idle:
                        break  # every task has ended
                    time.sleep(0.005)  # the scheduler's tick
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        return time.monotonic() - self.started

    def _run_job(self, job, task):
        try:
            job(task)
        except Exception as error:  # a bug here must not hang the load
            with self.lock:
                self.unexpected.append((job.__name__, type(error).__name__, str(error)[:200]))
        finally:
            with self.lock:
                self.in_flight -= 1

    def _may_retry_submit(self):
        return time.monotonic() < self.load_end + SUBMIT_RETRY_GRACE

    def submit(self, task):
        task.submits += 1
        headers = {"Idempotency-Key": f"{self.key_prefix}-{task.n}"}
        try:
            status, answer_headers, body = request(self.port, f"/chaos/{task.n}", headers)
        except OSError:
            with self.lock:
                self.submit_no_answer += 1
                self.troubles.append((time.monotonic(), "no answer"))
            task.saw_no_answer = True
            if self._may_retry_submit():
                self.later(0.5, self.submit, task)
            else:
                task.refused = "no answer"
            return
        if status == 202:
            monitor = json.loads(body)
            task.task_id, task.status_url = monitor["id"], monitor["status_url"]
            task.status = monitor["status"]
            task.accepted_at = time.monotonic()
            self.later(retry_after(answer_headers), self.poll, task)
        elif status == 503 and BUSY in body.decode(errors="replace"):
            # Backpressure (TASK_MAX_QUEUED): refused, not retried, so the load stays bounded.
            with self.lock:
                self.submit_busy += 1
            task.refused = "busy"
        elif status == 503 and UNREACHABLE in body.decode(errors="replace"):
            with self.lock:
                self.submit_503 += 1
                self.troubles.append((time.monotonic(), "503"))
            task.saw_unreachable = True
            if self._may_retry_submit():
                self.later(retry_after(answer_headers), self.submit, task)
            else:
                task.refused = "unreachable"
        else:
            task.refused = str(status)
            with self.lock:
                self.unexpected.append(("submit", status, body[:200]))

    def poll(self, task):
        if time.monotonic() >= self.deadline:
            return
        task.polls += 1
        try:
            status, headers, body = request(self.port, task.status_url)
        except OSError:
            with self.lock:
                self.poll_no_answer += 1
                self.troubles.append((time.monotonic(), "no answer"))
            self.later(0.5, self.poll, task)
            return
        task_status = headers.get("Task-Status")
        if task_status is None and status == 404:
            task.not_found += 1
            if task.not_found >= NOT_FOUND_POLLS:
                task.final, task.ended_at = "lost", time.monotonic()
            else:
                self.later(1, self.poll, task)
            return
        if task_status is None and status == 503:
            task.polls_unreachable += 1
            with self.lock:
                self.troubles.append((time.monotonic(), "503"))
            self.later(retry_after(headers), self.poll, task)
            return
        if task_status is None:
            with self.lock:
                self.unexpected.append(("poll", status, body[:200]))
            self.later(1, self.poll, task)
            return
        if task.not_found:
            task.found_after_not_found = True
        task.status = task_status
        if task_status in ("queued", "running"):
            self.later(retry_after(headers), self.poll, task)
            return
        task.final, task.ended_at, task.answer = task_status, time.monotonic(), body[:500]
        if task_status == "failed":
            with contextlib.suppress(ValueError):
                task.detail = json.loads(body).get("detail")


class Stack:
    """Redis, the Celery workers and gunicorn of one chaos run, and the faults done to them."""

    def __init__(self, venv_python, project, workdir, package, lease):
        self.workdir = workdir
        self.package = package
        self.markers = workdir / "markers"
        self.markers.mkdir()
        aof_dir = workdir / "redis-data"
        aof_dir.mkdir()
        (workdir / "chaos_app.py").write_text(CHAOS_APP.format(package=package), encoding="utf-8")
        self.redis = celerybench.RedisServer(workdir, aof_dir=aof_dir)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FLASK_")},
            "PYTHONPATH": str(workdir),
            "CHAOS_MARKERS": str(self.markers),
            "FLASK_SECRET_KEY": "chaos",
            "FLASK_TASK_REDIS_URL": self.redis.url,
            "FLASK_TASK_MAX_WORKERS": str(CONCURRENCY),  # the worker's concurrency
            "FLASK_TASK_CLEANUP_INTERVAL": str(CLEANUP_INTERVAL),
            # Nothing expires while the run lasts: a 404 is a lost task.
            "FLASK_TASK_RETENTION": "3600",
            "WEB_CONCURRENCY": str(WEB_PROCESSES),
        }
        if lease is not None:
            self.env["FLASK_TASK_LEASE"] = str(lease)
        self.workers = [
            celerybench.CeleryWorker(
                venv_python,
                workdir,
                self.env,
                app="chaos_app:celery_app",
                name=f"worker-{index}",
                options=("--hostname", f"chaos{index}@%h"),
            )
            for index in range(1, WORKERS + 1)
        ]
        self.web = Server(
            "gunicorn", venv_python, project, workdir, "chaos_app:app", self.env, WEB_PROCESSES
        )
        self.timeline = []  # (seconds since the load started, fault, what happened)
        self.kills = []  # (time.time() of the kill, the process group killed)
        self.redis_down = []  # (time.time() stopped, time.time() answering again)
        self.origin = None  # time.monotonic() when the load started
        self.origin_wall = None  # time.time() then: marker lines hold wall times

    def start(self):
        progress("starting redis-server (append-only file, fsync always)")
        self.redis.start()
        for worker in self.workers:
            progress(f"starting {worker.log_path.stem}")
            worker.start(timeout=90)
        progress(f"starting gunicorn ({WEB_PROCESSES} web processes)")
        self.web.start(timeout=90)

    def stop(self):
        """Stop everything that runs, whatever state it is in."""
        for stop in (self.web.stop, *(worker.stop for worker in self.workers)):
            with contextlib.suppress(Exception):
                stop()
        if self.redis.process is not None and self.redis.process.poll() is None:
            self.redis.process.terminate()
            try:
                self.redis.process.wait(10)
            except Exception:
                self.redis.process.kill()
                self.redis.process.wait(10)

    def _running(self):
        """Tasks running now across the workers, as Redis says; None when it does not answer."""
        try:
            return self.redis.client.zcard(f"{self.package}:running")
        except Exception:
            return None

    def note(self, began, fault, what):
        """Add ``fault``, begun at ``began`` (``time.monotonic()``), to the timeline."""
        at = began - self.origin
        self.timeline.append((at, fault, what))
        progress(f"t={at:5.1f} s  {fault}: {what}")

    def kill_worker(self, index):
        worker = self.workers[index]
        group = worker.process.pid  # started in a session of its own: the group's leader
        began, running = time.monotonic(), self._running()
        killed_at = time.time()
        os.killpg(group, signal.SIGKILL)
        worker.process.wait(10)
        self.kills.append((killed_at, group))
        started = time.monotonic()
        worker.start(timeout=90)
        self.note(
            began,
            f"SIGKILL {worker.log_path.stem} (process group {group}), restart",
            f"{running} tasks in Redis's running set at the kill; "
            f"ready again after {time.monotonic() - started:.1f} s",
        )

    def stop_redis(self):
        began, running = time.monotonic(), self._running()
        stopped_at = time.time()
        self.redis.process.terminate()  # SIGTERM: Redis shuts down, the AOF synced
        self.redis.process.wait(20)
        self.redis.client.close()
        time.sleep(REDIS_DOWN_SECONDS)
        self.redis.start(timeout=30)
        self.redis_down.append((stopped_at, time.time()))
        self.note(
            began,
            "Redis stopped (SIGTERM), restarted",
            f"{running} tasks in Redis's running set at the stop; answering again after "
            f"{time.time() - stopped_at:.1f} s",
        )

    def restart_web(self):
        started = time.monotonic()
        took = self.web.terminate(timeout=40)
        if took is None:
            self.web.stop()
        self.web.start(timeout=90)
        self.note(
            started,
            "gunicorn restarted (SIGTERM, start)",
            f"exited in {took:.1f} s; serving again after {time.monotonic() - started:.1f} s"
            if took is not None
            else "killed after 40 s",
        )

    def schedule(self, duration):
        """The faults, at these fractions of the load's duration, one after the other."""
        return [
            (0.10, lambda: self.kill_worker(0)),
            (0.22, self.stop_redis),
            (0.35, self.restart_web),
            (0.48, lambda: self.kill_worker(1)),
            (0.60, self.stop_redis),
            (0.72, self.restart_web),
            (0.82, lambda: self.kill_worker(0)),
        ]

    def inject(self, duration, stop, failed):
        """Run the schedule in this thread; record an error in ``failed`` and return."""
        try:
            for fraction, fault in self.schedule(duration):
                if stop.wait(max(0.0, self.origin + fraction * duration - time.monotonic())):
                    return
                fault()
        except Exception as error:
            failed["error"] = f"a fault could not be injected: {type(error).__name__}: {error}"


def read_markers(folder):
    """``{n: [(task id, pid, process group, time.time()), ...]}``: one line per run of view n."""
    markers = {}
    for path in folder.iterdir():
        runs = []
        for line in path.read_text(encoding="utf-8").splitlines():
            task_id, pid, group, at = line.split()
            runs.append((task_id, int(pid), int(group), float(at)))
        markers[int(path.name)] = runs
    return markers


def count_in_logs(workdir, pattern):
    """Per log file, how many lines match ``pattern``, or, when it has a group, how
    many distinct values the group takes (a task id logged twice counts once)."""
    found = {}
    for log in sorted(workdir.glob("*.log")):
        hits = re.findall(pattern, log.read_text(errors="replace"), re.MULTILINE)
        if hits:
            found[log.name] = len(set(hits)) if re.compile(pattern).groups else len(hits)
    return found


def windows(times, origin, gap=2.0):
    """``"t=7.5-10.8 s, ..."``: the spans in which ``times`` fall, split at gaps over ``gap``."""
    spans = []
    for at in sorted(times):
        if spans and at - spans[-1][1] <= gap:
            spans[-1][1] = at
        else:
            spans.append([at, at])
    return ", ".join(f"t={a - origin:.1f}-{b - origin:.1f} s" for a, b in spans) or "none"


def report(load, stack, markers, elapsed, lease, args):
    tasks = list(load.tasks.values())
    accepted = [task for task in tasks if task.task_id is not None]
    failed = [task for task in accepted if task.final == "failed"]
    failed_done = [task for task in failed if task.n in markers]

    def killed_right_after(task):
        """Its worker was SIGKILLed within 1 s of the marker: the kill beat the record."""
        _, _, group, at = markers[task.n][-1]
        return any(g == group and 0 <= killed - at <= 1 for killed, g in stack.kills)

    killed_race = [task for task in failed_done if killed_right_after(task)]
    during_redis = [
        task
        for task in failed_done
        if any(down - 5 <= markers[task.n][-1][3] <= up + 5 for down, up in stack.redis_down)
    ]
    twice = {n: runs for n, runs in markers.items() if len(runs) > 1}
    lost = [task for task in accepted if task.final == "lost"]
    unfinished = [task for task in accepted if task.final is None]
    succeeded = [task for task in accepted if task.final == "succeeded"]
    wrong_answer = [
        task for task in succeeded if json.loads(task.answer or b"{}").get("n") != task.n
    ]
    no_marker = [task for task in succeeded if task.n not in markers]
    never_accepted_marked = [task.n for task in tasks if task.task_id is None and task.n in markers]
    unreachable_submits = [task for task in tasks if task.saw_unreachable]
    no_answer_submits = [task for task in tasks if task.saw_no_answer]

    rows = [
        ("submitted (distinct n)", len(tasks), f"{args.rate}/s for {args.duration} s"),
        ("accepted (`202`)", len(accepted), ""),
        (
            "refused: queue full (`503`, TASK_MAX_QUEUED)",
            sum(task.refused == "busy" for task in tasks),
            "backpressure, not retried",
        ),
        (
            "refused for good: Redis unreachable or no server",
            sum(task.refused in ("unreachable", "no answer") for task in tasks),
            f"retried until {SUBMIT_RETRY_GRACE} s after the load",
        ),
        ("succeeded", len(succeeded), "answer checked: `n` back"),
        ("failed", len(failed), ""),
        (
            "**failed, yet their work was done** (marker exists)",
            len(failed_done),
            "0 with a correct service",
        ),
        (
            "... of which the marker was written < 5 s around a Redis stop",
            len(during_redis),
            "",
        ),
        (
            "... of which the worker was SIGKILLed < 1 s after the marker",
            len(killed_race),
            "the kill came between the work and its record",
        ),
        ("**run twice** (marker with > 1 line)", len(twice), "0 with a correct service"),
        ("**lost within retention** (poll `404`)", len(lost), "0 with a correct service"),
        (
            "answered `404`, then found again",
            sum(task.found_after_not_found for task in accepted),
            "",
        ),
        (
            "**not finished at the deadline**",
            len(unfinished),
            f"load end + TASK_LEASE + 60 s = +{load.drain:.0f} s",
        ),
        ("cancelled", sum(task.final == "cancelled" for task in accepted), "nobody cancels"),
        (
            "submits answered `503` Redis unreachable (each submit once)",
            len(unreachable_submits),
            f"{load.submit_503} answers in all; expected during the outage",
        ),
        (
            "polls answered `503` Redis unreachable",
            sum(task.polls_unreachable for task in accepted),
            "expected during the outage",
        ),
        (
            "submits that found no server (gunicorn restarting; each submit once)",
            len(no_answer_submits),
            f"retried; {load.submit_no_answer} submit and {load.poll_no_answer} poll attempts",
        ),
        ("succeeded without a marker", len(no_marker), "0: the view writes it first"),
        ("succeeded with another answer", len(wrong_answer), "0"),
        ("marker of a submit never accepted", len(never_accepted_marked), "0"),
        ("unexpected answers", len(load.unexpected), "none expected"),
    ]
    lease_text = f"{lease} s" if args.lease is not None else f"{lease} s (default)"
    print(f"## Chaos: celery bake, TASK_LEASE {lease_text}\n")
    print("| figure | count | note |")
    print("| --- | ---: | --- |")
    for name, count, note in rows:
        print(f"| {name} | {count} | {note} |")

    print("\n### Faults\n")
    print("| t (s) | fault | what happened |")
    print("| ---: | --- | --- |")
    for at, fault, what in stack.timeline:
        print(f"| {at:.1f} | {fault} | {what} |")

    print("\n### Notes\n")
    details = {}
    for task in failed:
        details[task.detail] = details.get(task.detail, 0) + 1
    for detail, count in sorted(details.items(), key=lambda item: -item[1]):
        print(f"- failed with detail {detail!r}: {count}")
    print(
        f"- {WEB_PROCESSES} web processes, {WORKERS} workers x {CONCURRENCY}, "
        f"TASK_CLEANUP_INTERVAL {CLEANUP_INTERVAL} s, tasks of 1 to 2 s; "
        f"load and drain took {elapsed:.0f} s; {sum(task.polls for task in tasks)} polls."
    )
    for kind in ("503", "no answer"):
        times = [at for at, what in load.troubles if what == kind]
        print(f"- requests answered {kind}: {windows(times, stack.origin)}")
    for what, pattern in (
        (
            "tasks the worker logged as 'finished, but Redis could not be told'",
            r"Task (\S+) finished, but Redis could not be told",
        ),
        ("the reaper's 'tasks failed: their worker stopped'", r"tasks failed: their worker"),
        ("'lost its lease'", r"lost its lease"),
        ("tracebacks", r"^Traceback"),
    ):
        print(f"- log lines, {what}: {count_in_logs(stack.workdir, pattern) or 'none'}")
    examples = [
        (task, markers[task.n]) for task in (failed_done + list(map(load.tasks.get, twice)))[:5]
    ]
    for task, runs in examples:
        ended = f"t={task.ended_at - stack.origin:.1f} s" if task.ended_at else "never"
        print(
            f"- n={task.n} task {task.task_id}: seen {task.final} at {ended}; marker lines: "
            + "; ".join(
                f"task {t}, pid {p}, worker group {g}, t={a - stack.origin_wall:.1f} s"
                for t, p, g, a in runs
            )
        )
    for what in load.unexpected[:5]:
        print(f"- unexpected: {what}")
    for task in unfinished[:5]:
        print(f"- not finished: n={task.n} task {task.task_id}, last status {task.status}")


def package_of(project):
    """The import package of a bake: the folder under ``src/`` that holds ``worker.py``."""
    found = [path.parent.name for path in (project / "src").glob("*/worker.py")]
    if len(found) != 1 or not list((project / "src").glob("*/tasks/backends/celery")):
        raise BenchError(f"{project} is not a celery bake (no src/<package>/worker.py)")
    return found[0]


def parse(argv):
    parser = argparse.ArgumentParser(description="Chaos run of the baked celery service.")
    parser.add_argument(
        "--template",
        type=Path,
        default=BENCH_DIR.parent,
        help="the template checkout to bake (default: the one holding bench/)",
    )
    parser.add_argument(
        "--project",
        type=Path,
        help="an existing celery bake to run instead of baking one; its venv is --python",
    )
    parser.add_argument(
        "--python", type=Path, help="the python of --project's venv (default: PROJECT/.venv)"
    )
    parser.add_argument(
        "--duration",
        type=int,
        default=60,
        help=f"seconds of load (default 60, at most {MAX_DURATION})",
    )
    parser.add_argument(
        "--rate", type=int, default=25, help=f"submits a second (default 25, at most {MAX_RATE})"
    )
    parser.add_argument(
        "--lease",
        type=float,
        help=f"TASK_LEASE in seconds (default: the service's, {DEFAULT_LEASE})",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the run's folder (logs, markers) and say where"
    )
    args = parser.parse_args(argv)
    if not 10 <= args.duration <= MAX_DURATION:
        parser.error(f"--duration must be 10 to {MAX_DURATION}")
    if not 1 <= args.rate <= MAX_RATE:
        parser.error(f"--rate must be 1 to {MAX_RATE}")
    if args.lease is not None and not 1 <= args.lease <= 120:
        parser.error("--lease must be 1 to 120")
    return args


def chaos(args, workdir):
    if args.project is None:
        progress(f"baking {args.template.resolve()} with task_backend=celery")
        project = bake(args.template.resolve(), workdir, task_backend="celery")
        progress("installing the celery bake into a fresh venv")
        venv_python = install(project, workdir)
    else:
        project = args.project.resolve()
        venv_python = (args.python or project / ".venv" / "bin" / "python").absolute()
        if not venv_python.is_file():
            raise BenchError(f"no python at {venv_python}: give --python")
    package = package_of(project)
    lease = args.lease if args.lease is not None else DEFAULT_LEASE
    stack = Stack(venv_python, project, workdir, package, args.lease)
    stop, failed = threading.Event(), {}
    injector = None
    try:
        stack.start()
        load = Load(stack.web.port, args.rate, args.duration, lease + 60, f"chaos-{os.getpid()}")
        progress(f"load: {args.rate} submits a second for {args.duration} s, faults meanwhile")
        stack.origin, stack.origin_wall = time.monotonic(), time.time()
        injector = threading.Thread(
            target=stack.inject, args=(args.duration, stop, failed), name="faults"
        )
        injector.start()
        elapsed = load.run(stop, failed)
        stop.set()
        injector.join()
        if failed.get("error"):
            raise BenchError(failed["error"])
    except BaseException as error:
        stop.set()
        if injector is not None:
            injector.join()
        if isinstance(error, BenchError | OSError | RuntimeError):
            logs = "\n".join(
                f"{part.log_path.name}:\n{part.log_tail(15)}"
                for part in (stack.web, *stack.workers)
            )
            raise BenchError(f"{error}\n{logs}") from error
        raise
    finally:
        progress("stopping every process")
        stack.stop()
    report(load, stack, read_markers(stack.markers), elapsed, lease, args)


def main(argv=None):
    args = parse(argv)

    def interrupted(signum, frame):
        raise KeyboardInterrupt  # SIGTERM: stop every process, as Ctrl-C does

    signal.signal(signal.SIGTERM, interrupted)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="async-flask-chaos-"))
    try:
        chaos(args, workdir)
    except (BenchError, OSError, RuntimeError, ValueError) as error:
        print(f"ERROR: could not measure: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ERROR: could not measure: interrupted", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            progress(f"the run's folder (logs, markers, Redis files): {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nWhole run: {time.monotonic() - started:.0f} s, on {os.cpu_count()} CPUs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
