"""G1 and G7 for a developer: Flask's development server, as the baked README starts it.

``flask --app <slug> run --debug`` (the debugger and the reloader) is how a
Flask developer iterates, with either backend. The README's command runs here
word for word, on the port its ``curl`` examples use (8000), and one task
runs end to end over HTTP. For a celery bake a ``redis-server`` and a Celery
worker run beside it, started with the README's own commands, and the honcho
``Procfile.dev`` runs the same commands.
"""

import os
import re
import socket
import sys
import urllib.parse

import pytest
from test_celery_service import Processes, find_redis_server, wait_for_line
from test_installed_project import (
    free_port,
    http_get,
    poll_until_done,
    readme_command,
    wait_until_serving,
)

from conftest import clean_env

# The README's commands use port 8000: keep the tests that serve on it on one
# xdist worker, one at a time.
pytestmark = pytest.mark.xdist_group("port-8000")

README_PORT = 8000
DEVELOPMENT_SERVER = r"^flask --app \S+ run\b.*--debug"
WORKER = r"^celery --app \S+ worker\b"


@pytest.fixture
def processes(tmp_path):
    started = Processes(tmp_path)
    yield started
    started.stop_all()


def port_is_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def developer_env(project, **extra):
    """What the README's virtual environment gives: its tools on PATH, the package importable."""
    bin_dir = os.path.dirname(sys.executable)
    return clean_env(
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        PYTHONPATH=str(project / "src"),
        FLASK_EXAMPLE_TASK_SECONDS="0.2",
        **extra,
    )


def serve_one_task(processes, project, env):
    """Start the README's development server, run one task through it, check the reloader."""
    command = readme_command(project, DEVELOPMENT_SERVER, "development server (flask run --debug)")
    assert re.search(rf"--port {README_PORT}\b", command), (
        f"{command!r} does not serve on the port of the README's curl calls ({README_PORT})"
    )
    if not port_is_free(README_PORT):
        pytest.fail(f"port {README_PORT} is taken on 127.0.0.1: free it to run this test")
    server, log = processes.start("flask-run", command, project, env)
    base = f"http://127.0.0.1:{README_PORT}"
    status, _, body = wait_until_serving(server, f"{base}/health", log)
    assert status == 200, body

    status, headers, body = http_get(f"{base}/some/path")
    assert status == 202, body
    location = urllib.parse.urljoin(f"{base}/some/path", headers["Location"])
    status, headers, body = poll_until_done(location)
    assert status == 200, body
    assert headers["Task-Status"] == "succeeded"
    assert b"The answer is: some/path" in body

    output = log.read_text(errors="replace")
    assert "Debugger is active" in output, output
    assert "Restarting with" in output, f"no reloader:\n{output}"


def test_the_development_server_runs_tasks_with_threads(bake, processes):
    project = bake(rest_layer="flask", task_backend="threads")
    serve_one_task(processes, project, developer_env(project))


def test_the_development_server_runs_tasks_with_celery(bake, processes, tmp_path):
    project = bake(rest_layer="flask", task_backend="celery")
    # The README's Redis, on a port of its own: 6379 may be the developer's.
    redis_command = readme_command(project, r"^redis-server\b", "Redis")
    redis_port = free_port()
    redis_command = re.sub(r"^redis-server\b", find_redis_server(project), redis_command)
    redis_command = re.sub(r"--port \d+", f"--port {redis_port}", redis_command)
    redis, redis_log = processes.start("redis", redis_command, tmp_path, clean_env())
    wait_for_line(redis, redis_log, r"[Rr]eady to accept connections")

    env = developer_env(
        project,
        FLASK_SECRET_KEY="change-me",
        FLASK_TASK_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
    )
    worker, worker_log = processes.start(
        "worker", readme_command(project, WORKER, "Celery worker"), project, env
    )
    wait_for_line(worker, worker_log, r"ready\.")
    serve_one_task(processes, project, env)


def test_procfile_dev_runs_the_readmes_development_commands(baked):
    project = baked({"rest_layer": "flask", "task_backend": "celery"})
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert "honcho -f Procfile.dev start" in readme
    entries = dict(
        line.split(": ", 1)
        for line in (project / "Procfile.dev").read_text(encoding="utf-8").splitlines()
        if line.strip()
    )
    assert set(entries) == {"web", "worker", "redis"}
    assert entries["web"] == readme_command(project, DEVELOPMENT_SERVER, "development server")
    assert entries["worker"] == readme_command(project, WORKER, "Celery worker")
    procfile = (project / "Procfile").read_text(encoding="utf-8")
    assert entries["redis"] in procfile, "Procfile.dev starts Redis as Procfile does"
