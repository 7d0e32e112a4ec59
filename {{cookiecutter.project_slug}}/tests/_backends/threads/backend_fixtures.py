"""Fixtures for the threads backend: tasks run in the test process itself."""

import pytest
from helpers import FakeClock


@pytest.fixture
def backend_config():
    """Settings every test app gets on this backend."""
    return {"TASK_SHUTDOWN_TIMEOUT": 5}


@pytest.fixture
def served_env():
    """Environment variables a served copy of the app (``gunicorn``) needs on this backend."""
    return {}


@pytest.fixture
def served_workers():
    """``served_workers(**env)``: what runs the tasks of a served copy of the app: the
    server itself."""
    return lambda **env: None


class TaskRunner:
    """Nothing to start: the app's own worker threads run its tasks."""

    def start(self, app):
        pass

    def stop(self):
        pass


@pytest.fixture
def task_runner():
    return TaskRunner()


@pytest.fixture
def held_tasks():
    """``held_tasks(app)``: how many tasks the app holds, whatever their state."""
    return lambda app: len(app.extensions["task_engine"].backend.store)


@pytest.fixture
def stored_task():
    """``stored_task(app, task_id)``: every field the app keeps of a task, by name."""

    def stored(app, task_id):
        task = app.extensions["task_engine"].backend.store.get(task_id)
        return {name: getattr(task, name) for name in task.__slots__}

    return stored


@pytest.fixture
def clock(app):
    """The app's expiry clock, moved only by the test."""
    clock = FakeClock()
    app.extensions["task_engine"].backend.clock = clock
    return clock
