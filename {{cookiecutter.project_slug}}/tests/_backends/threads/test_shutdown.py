"""H11, L5: stopping the service, in process and under gunicorn with SIGTERM."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import wait_for

PROJECT = Path(__file__).resolve().parents[1]


def test_shutdown_lets_running_tasks_finish_and_fails_queued_ones(make_app, gate, poll_done):
    app = make_app(TASK_MAX_WORKERS=1)
    client, engine = app.test_client(), app.extensions["async_api"]
    running = client.get("/async/held").headers["Location"]
    queued = client.get("/async/held").headers["Location"]
    gate.wait_entered()

    stopping = threading.Thread(target=engine.shutdown, kwargs={"timeout": 10})
    stopping.start()
    wait_for(lambda: client.get(queued).headers["Task-Status"] == "failed", what="queued to fail")
    assert client.get("/async/echo/late").status_code == 503
    gate.open()
    stopping.join(10)
    assert not stopping.is_alive()

    assert poll_done(client, running).get_data(as_text=True) == "released"
    stopped = client.get(queued)
    assert stopped.status_code == 503
    assert stopped.headers["Task-Status"] == "failed"
    assert stopped.content_type == "application/problem+json"
    assert "stopped" in stopped.get_json()["detail"]
    assert gate.entries == 1


def test_shutdown_gives_up_on_a_task_that_outlives_its_timeout(make_app, gate, caplog):
    app = make_app()
    client, engine = app.test_client(), app.extensions["async_api"]
    location = client.get("/async/held").headers["Location"]
    gate.wait_entered()
    engine.shutdown(timeout=0.05)
    task_id = location.rsplit("/", 1)[1]
    assert f"Task {task_id} was still running when the service stopped" in caplog.text


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Gunicorn:
    """The service under gunicorn with its own gunicorn.conf.py, on 127.0.0.1."""

    def __init__(self, tmp_path, **env):
        self.port = free_port()
        self.log = tmp_path / "gunicorn.log"
        environment = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "FLASK_SECRET_KEY": "test-secret",
            "PYTHONPATH": os.pathsep.join([str(PROJECT / "src"), os.environ.get("PYTHONPATH", "")]),
            **env,
        }
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
                cwd=PROJECT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self.healthy, timeout=20, what="gunicorn to answer /health")

    def get(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def healthy(self):
        if self.process.poll() is not None:
            raise AssertionError(f"gunicorn exited:\n{self.log.read_text()}")
        try:
            return self.get("/health")[0] == 200
        except OSError:
            return False

    def terminate(self):
        """SIGTERM; return the seconds until the process exited."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)
        return time.monotonic() - started

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def gunicorn(tmp_path):
    servers = []

    def start(**env):
        servers.append(Gunicorn(tmp_path, **env))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


GRACEFUL = "20"


def test_idle_service_stops_at_once_on_sigterm(gunicorn):
    server = gunicorn(FLASK_TASK_SHUTDOWN_TIMEOUT=GRACEFUL)
    took = server.terminate()
    log = server.log.read_text()
    assert server.process.returncode == 0, log
    assert "SIGKILL" not in log
    # Far inside the graceful timeout: nothing of ours held the process open.
    assert took < float(GRACEFUL) / 2, log


def test_sigterm_lets_the_running_task_finish_and_fails_the_queued_one(gunicorn):
    server = gunicorn(
        FLASK_TASK_SHUTDOWN_TIMEOUT=GRACEFUL,
        FLASK_TASK_MAX_WORKERS="1",
        FLASK_EXAMPLE_TASK_SECONDS="1",
    )
    status, running, _ = server.get("/running")
    assert status == 202
    status, queued, _ = server.get("/queued")
    assert status == 202
    wait_for(
        lambda: server.get(running["Location"])[1].get("Task-Status") == "running",
        what="the first task to run",
    )
    took = server.terminate()
    log = server.log.read_text()
    assert server.process.returncode == 0, log
    queued_id = queued["Location"].rsplit("/", 1)[1]
    running_id = running["Location"].rsplit("/", 1)[1]
    assert f"Task {queued_id} failed: the service stopped before it started" in log
    assert running_id not in log.replace(running["Location"], "")  # it finished quietly
    assert "SIGKILL" not in log
    assert took < float(GRACEFUL), log
