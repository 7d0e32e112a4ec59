"""The example: any path becomes a task that answers with the path.

To remove the example, delete this file, ``src/{{ cookiecutter.project_slug }}/example.py``
and the example's lines in ``app.py``.
"""

import pytest
from helpers import wait_for
from task_client import monitor, submit, wait_until_done

from {{ cookiecutter.project_slug }} import create_app
from {{ cookiecutter.project_slug }}.settings import ConfigError


@pytest.fixture
def client(make_app):
    return make_app(EXAMPLE_TASK_SECONDS=0.01).test_client()


def test_example_answers_with_its_path(client):
    done = wait_until_done(client, submit(client, "/some/deep/path"))
    assert done.status_code == 200
    assert "The answer is: some/deep/path" in done.get_data(as_text=True)


def test_example_at_the_root(client):
    done = wait_until_done(client, submit(client, "/"))
    assert "The answer is: " in done.get_data(as_text=True)


def test_example_reports_progress(client):
    key = {"Idempotency-Key": "working"}
    done = wait_until_done(client, submit(client, "/working", headers=key))
    assert done.status_code == 200
    # The finished answer is the view's own; a repeated submit shows the monitor.
    repeated = client.get("/working", headers=key).get_json()
    assert repeated["progress"] == {"percent": 100, "message": "step 10 of 10"}


def test_example_stops_when_cancelled(make_app):
    client = make_app(EXAMPLE_TASK_SECONDS=2).test_client()
    location = submit(client, "/slow")
    wait_for(lambda: monitor(client, location)["status"] == "running", what="the start")
    assert client.delete(location).status_code == 202
    done = wait_until_done(client, location)
    assert done.status_code == 200
    assert done.get_json()["status"] == "cancelled"


def test_example_works_ten_seconds_by_default(monkeypatch):
    monkeypatch.delenv("FLASK_EXAMPLE_TASK_SECONDS", raising=False)
    app = create_app({"SECRET_KEY": "x"})
    try:
        assert app.config["EXAMPLE_TASK_SECONDS"] == 10
    finally:
        app.extensions["task_engine"].shutdown()


@pytest.mark.parametrize("value", [0, -1, "soon", float("inf")])
def test_a_bad_example_setting_names_its_key(value):
    with pytest.raises(ConfigError, match="^EXAMPLE_TASK_SECONDS must be a number > 0"):
        create_app({"SECRET_KEY": "x", "EXAMPLE_TASK_SECONDS": value})
