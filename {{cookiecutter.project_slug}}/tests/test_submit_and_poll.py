"""Submit and poll: submit answers 202 at once, polls answer 202, then the view's own answer."""

import re

import pytest
from flask import request
from helpers import comparable

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
MONITOR_KEYS = {"id", "status", "status_url", "created_at", "updated_at", "progress"}


def test_submit_answers_202_with_a_status_monitor(client, gate):
    response = client.get("/async/gated")
    assert response.status_code == 202
    monitor = response.get_json()
    assert set(monitor) == MONITOR_KEYS
    assert response.headers["Location"] == f"/status/{monitor['id']}"
    assert monitor["status_url"] == response.headers["Location"]
    assert int(response.headers["Retry-After"]) >= 1
    assert monitor["status"] in {"queued", "running"}
    assert response.headers["Task-Status"] == monitor["status"]
    assert RFC3339_UTC.match(monitor["created_at"])
    assert RFC3339_UTC.match(monitor["updated_at"])
    assert monitor["progress"] is None
    gate.open()


def test_poll_answers_202_while_the_task_runs(client, gate):
    location = client.get("/async/gated").headers["Location"]
    gate.wait_entered()
    response = client.get(location)
    assert response.status_code == 202
    assert response.headers["Location"] == location
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["Task-Status"] == "running"
    assert response.get_json()["status"] == "running"


def test_poll_answers_the_views_own_response_once_done(client, gate, poll_done):
    location = client.get("/async/gated").headers["Location"]
    gate.open()
    done = poll_done(client, location)
    assert done.status_code == 200
    assert done.get_data(as_text=True) == "released"
    assert done.headers["Task-Status"] == "succeeded"


@pytest.mark.parametrize(
    "path", ["/created/widget", "/missing", "/teapot", "/args/p/7", "/streamed"]
)
def test_done_answer_is_exactly_the_synchronous_one(client, poll_done, path):
    synchronous = client.get(f"/sync{path}")
    done = poll_done(client, client.get(f"/async{path}").headers["Location"])
    assert comparable(done) == comparable(synchronous)


def test_every_poll_rebuilds_the_same_answer(client, poll_done):
    location = client.get("/async/created/widget").headers["Location"]
    first = poll_done(client, location)
    second = client.get(location)
    third = client.get(location)
    assert comparable(first) == comparable(second) == comparable(third)
    # after_request runs once per poll: its header does not pile up.
    assert third.headers.getlist("X-After-Request") == ["once"]


def test_streamed_body_is_whole_on_every_poll(client, poll_done):
    location = client.get("/async/streamed").headers["Location"]
    first = poll_done(client, location)
    second = client.get(location)
    assert first.get_data(as_text=True) == "chunk 0;chunk 1;chunk 2;"
    assert second.get_data() == first.get_data()
    assert second.content_type.startswith("text/plain")


def test_a_view_returning_an_error_status_succeeds(client, poll_done):
    done = poll_done(client, client.get("/async/missing").headers["Location"])
    assert done.status_code == 404
    # Task-Status tells the view's 404 from an unknown task's.
    assert done.headers["Task-Status"] == "succeeded"


def test_submit_carries_after_request_headers_once(client, gate):
    response = client.get("/async/gated")
    assert response.headers.getlist("X-After-Request") == ["once"]
    gate.open()


def test_location_carries_the_apps_mount_prefix(app, poll_done):
    client = app.test_client()
    submitted = client.get("/async/echo/a", base_url="http://localhost/api")
    task_id = submitted.get_json()["id"]
    assert submitted.headers["Location"] == f"/api/status/{task_id}"
    assert submitted.get_json()["status_url"] == f"/api/status/{task_id}"
    done = poll_done(client, f"/status/{task_id}", base_url="http://localhost/api")
    assert done.status_code == 200


def test_teardown_request_runs_after_the_task(make_app, poll_done):
    app = make_app()
    torn_down = []

    @app.teardown_request
    def close_session(error):
        torn_down.append(request.path)

    client = app.test_client()
    poll_done(client, client.get("/async/echo/td").headers["Location"])
    # Once for the submit, once in the task, and once per poll.
    assert torn_down.count("/async/echo/td") == 2
