import pytest
from helpers import FakeClock, Gate, register_views, wait_for

from {{ cookiecutter.project_slug }} import create_app

TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret",
    "EXAMPLE_TASK_SECONDS": 0.01,
    "TASK_MAX_WORKERS": 4,
    "TASK_MAX_QUEUED": 8,
    "TASK_SHUTDOWN_TIMEOUT": 5,
}


@pytest.fixture
def gate():
    gate = Gate()
    yield gate
    gate.open()


@pytest.fixture
def make_app(gate):
    """Make apps with the test views; shut each one down after the test."""
    apps = []

    def make(**config):
        app = create_app({**TEST_CONFIG, **config})
        register_views(app, gate)
        apps.append(app)
        return app

    yield make
    gate.open()
    for app in apps:
        app.extensions["async_api"].shutdown(timeout=5)


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def clock(app):
    clock = FakeClock()
    app.extensions["async_api"].clock = clock
    return clock


@pytest.fixture
def engine(app):
    return app.extensions["async_api"]


@pytest.fixture
def poll_done():
    """Poll a status URL until it stops answering 202, and return that answer."""

    def poll(client, location, **kwargs):
        answers = []

        def done():
            answers.append(client.get(location, **kwargs))
            return answers[-1].status_code != 202

        wait_for(done, what=f"the task at {location} to finish")
        return answers[-1]

    return poll
