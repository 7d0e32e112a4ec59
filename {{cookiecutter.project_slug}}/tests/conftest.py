import os
import shutil

import pytest
from helpers import Gate, Gunicorn, Prometheus, register_views
from task_client import wait_until_done

from {{ cookiecutter.project_slug }} import create_app

# Fixtures of the task backend this project runs on: ``backend_config``,
# ``task_runner``, ``held_tasks`` and ``stored_task``.
pytest_plugins = ["backend_fixtures"]

TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret",
    "TASK_MAX_WORKERS": 4,
    "TASK_MAX_QUEUED": 8,
}


@pytest.fixture
def gate():
    gate = Gate()
    yield gate
    gate.open()


@pytest.fixture
def make_app(gate, backend_config, task_runner):
    """Make apps with the test views, their tasks run; shut each one down after the test."""
    apps = []

    def make(**config):
        app = create_app({**TEST_CONFIG, **backend_config, **config})
        register_views(app, gate)
        task_runner.start(app)
        apps.append(app)
        return app

    yield make
    gate.open()
    task_runner.stop()
    for app in apps:
        app.extensions["task_engine"].shutdown(timeout=5)


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def engine(app):
    return app.extensions["task_engine"]


@pytest.fixture
def poll_done():
    """Poll a status URL until it stops answering 202, and return that answer."""
    return wait_until_done


@pytest.fixture
def gunicorn(tmp_path):
    """``gunicorn(**env)``: the service under gunicorn on 127.0.0.1; stopped after the test."""
    servers = []

    def start(app=None, **env):
        servers.append(Gunicorn(tmp_path / f"gunicorn-{len(servers)}.log", app, **env))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def prometheus(tmp_path):
    """``prometheus(ports, token)``: a real Prometheus scraping those servers; stopped after
    the test. Without one the test skips, saying how to get it; under ``CI=true`` it fails."""
    executable = shutil.which("prometheus")
    if executable is None:
        message = "no prometheus on PATH: apt-get install prometheus"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    servers = []

    def start(ports, token):
        folder = tmp_path / f"prometheus-{len(servers)}"
        folder.mkdir()
        servers.append(Prometheus(executable, folder, ports, token))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()
