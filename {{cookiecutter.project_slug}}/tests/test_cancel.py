"""Cancel: DELETE /status/<id> cancels queued tasks, stops running ones, forgets finished ones."""

from {{ cookiecutter.project_slug }} import async_api


def test_cancelled_queued_task_never_starts(make_app, gate, poll_done):
    app = make_app(TASK_MAX_WORKERS=1)
    client = app.test_client()
    running = client.get("/async/gated").headers["Location"]
    queued = client.get("/async/gated").headers["Location"]
    gate.wait_entered()

    cancelled = client.delete(queued)
    assert cancelled.status_code == 200
    assert cancelled.headers["Task-Status"] == "cancelled"
    monitor = cancelled.get_json()
    assert monitor["status"] == "cancelled"
    assert monitor["error"]["status"] == 409
    assert {"type", "title", "status", "detail"} <= set(monitor["error"])

    gate.open()
    poll_done(client, running)
    # The single worker takes tasks in order: once a later task is done, the
    # cancelled one would have run before it, had it been going to.
    poll_done(client, client.get("/async/echo/later").headers["Location"])
    assert gate.entries == 1
    polled = client.get(queued)
    assert polled.status_code == 200
    assert polled.get_json()["status"] == "cancelled"


def test_cancelled_queued_task_frees_its_place(make_app, gate):
    app = make_app(TASK_MAX_WORKERS=1, TASK_MAX_QUEUED=1)
    client = app.test_client()
    client.get("/async/gated")
    gate.wait_entered()
    queued = client.get("/async/gated").headers["Location"]
    assert client.get("/async/gated").status_code == 503
    client.delete(queued)
    assert client.get("/async/gated").status_code == 202


def test_running_task_is_asked_to_stop_and_ends_cancelled(client, gate, poll_done):
    location = client.get("/async/gated").headers["Location"]
    gate.wait_entered()

    asked = client.delete(location)
    assert asked.status_code == 202
    assert asked.headers["Task-Status"] == "running"
    assert asked.get_json()["status"] == "running"
    # Polls show that a cancel was asked for while the task still runs.
    assert asked.get_json()["cancel_requested"] is True
    assert client.get(location).get_json()["cancel_requested"] is True

    gate.open()
    done = poll_done(client, location)
    assert gate.saw_cancelled == [True]
    assert done.status_code == 200
    assert done.headers["Task-Status"] == "cancelled"
    assert done.get_json()["status"] == "cancelled"
    assert done.get_json()["error"]["status"] == 409


def test_running_task_that_raises_after_cancel_ends_cancelled(make_app, gate, poll_done):
    app = make_app()

    @app.get("/fails-late")
    @async_api
    def fails_late():
        gate.hold()
        raise RuntimeError("too late")

    client = app.test_client()
    location = client.get("/fails-late").headers["Location"]
    gate.wait_entered()
    client.delete(location)
    gate.open()
    assert poll_done(client, location).get_json()["status"] == "cancelled"


def test_finished_task_is_forgotten_at_once(client, poll_done):
    location = client.get("/async/echo/a").headers["Location"]
    poll_done(client, location)
    forgotten = client.delete(location)
    assert forgotten.status_code == 204
    assert forgotten.get_data() == b""
    assert "Content-Type" not in forgotten.headers
    assert forgotten.headers["Task-Status"] == "succeeded"  # how it ended
    assert client.get(location).status_code == 404


def test_cancelled_task_is_forgotten_by_a_second_delete(make_app, gate):
    client = make_app(TASK_MAX_WORKERS=1).test_client()
    client.get("/async/gated")
    gate.wait_entered()
    queued = client.get("/async/gated").headers["Location"]
    assert client.delete(queued).status_code == 200
    forgotten = client.delete(queued)
    assert forgotten.status_code == 204
    assert forgotten.headers["Task-Status"] == "cancelled"
    assert client.get(queued).status_code == 404


def test_cancel_of_an_unknown_task_is_a_404_problem(client):
    response = client.delete("/status/nothing-here")
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    assert "Task-Status" not in response.headers
