"""The package's public API, the example task and the health check."""

from helpers import wait_for

import {{ cookiecutter.project_slug }} as package


def test_public_api_is_importable_from_the_package():
    assert set(package.__all__) == {"create_app", "async_api", "current_task"}
    app = package.create_app({"SECRET_KEY": "x", "TASK_RETENTION": 5})
    try:
        assert app.config["TASK_RETENTION"] == 5  # the mapping is applied last
        assert app.extensions["async_api"]
    finally:
        app.extensions["async_api"].shutdown()


def test_health_answers_at_once(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert "Task-Status" not in response.headers


def test_example_answers_with_its_path(client, poll_done):
    submitted = client.get("/some/deep/path")
    assert submitted.status_code == 202
    done = poll_done(client, submitted.headers["Location"])
    assert done.status_code == 200
    assert "The answer is: some/deep/path" in done.get_data(as_text=True)


def test_example_at_the_root(client, poll_done):
    submitted = client.get("/")
    assert submitted.status_code == 202
    done = poll_done(client, submitted.headers["Location"])
    assert "The answer is: " in done.get_data(as_text=True)


def test_example_reports_progress(client, poll_done):
    key = {"Idempotency-Key": "working"}
    done = poll_done(client, client.get("/working", headers=key).headers["Location"])
    assert done.status_code == 200
    # The finished answer is the view's own; a repeated submit shows the monitor.
    monitor = client.get("/working", headers=key).get_json()
    assert monitor["progress"] == {"percent": 100, "message": "step 10 of 10"}


def test_example_stops_when_cancelled(make_app, poll_done):
    client = make_app(EXAMPLE_TASK_SECONDS=2).test_client()
    location = client.get("/slow").headers["Location"]
    wait_for(lambda: client.get(location).get_json()["status"] == "running", what="the start")
    assert client.delete(location).status_code == 202
    done = poll_done(client, location)
    assert done.status_code == 200
    assert done.get_json()["status"] == "cancelled"
