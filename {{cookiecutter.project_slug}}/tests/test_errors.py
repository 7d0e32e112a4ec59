"""Errors: in views, and ids that name no task."""

import json
import logging

import pytest
from helpers import raw_http

from {{ cookiecutter.project_slug }} import async_api


def test_http_error_finishes_with_that_error(client, poll_done):
    synchronous = client.get("/sync/teapot")
    done = poll_done(client, client.get("/async/teapot").headers["Location"])
    assert done.status_code == 418
    assert done.headers["Task-Status"] == "failed"
    assert done.get_data() == synchronous.get_data()
    assert done.content_type == "application/problem+json"


def test_exception_finishes_as_a_500_problem_without_its_text(client, poll_done, caplog):
    caplog.set_level(logging.ERROR)
    done = poll_done(client, client.get("/async/crash").headers["Location"])
    assert done.status_code == 500
    assert done.headers["Task-Status"] == "failed"
    assert done.content_type == "application/problem+json"
    body = done.get_json()
    assert body["status"] == 500
    assert {"type", "title", "status", "detail"} <= set(body)
    text = done.get_data(as_text=True)
    assert "secret database password" not in text
    assert "Traceback" not in text
    # The traceback goes to the application log instead.
    assert "secret database password" in caplog.text
    assert "RuntimeError" in caplog.text


# Not "..": /status/.. is / (RFC 3986 resolves dot segments, as curl and
# proxies do before the service sees it), the example's root.
@pytest.mark.parametrize("task_id", ["doesnotexist", "A" * 22, "x" * 500, "%00", "..."])
def test_unknown_or_malformed_id_is_a_404_problem(client, task_id):
    response = client.get(f"/status/{task_id}")
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    assert response.get_json()["status"] == 404
    assert "Task-Status" not in response.headers


@pytest.mark.parametrize("suffix", ["", "/", "/a/b", "/{id}/", "/{id}/more", "//{id}", "/%2F{id}"])
def test_malformed_status_urls_answer_404_and_start_nothing(
    app, client, suffix, poll_done, held_tasks
):
    task_id = client.get("/async/echo/a").get_json()["id"]
    poll_done(client, f"/status/{task_id}")
    for method in ("GET", "DELETE"):
        response = client.open(f"/status{suffix.format(id=task_id)}", method=method)
        assert response.status_code == 404
        assert response.content_type == "application/problem+json"
        assert "Task-Status" not in response.headers
    assert held_tasks(app) == 1


def get_raw(server, path, idempotency_key):
    """``GET path`` sent as is: a test client might resolve its dot segments itself."""
    message = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nIdempotency-Key: {idempotency_key}\r\n"
        "Connection: close\r\n\r\n"
    )
    return raw_http(server.port, message.encode())


# The last three: "..%2F" is no dot segment, however the server decodes it.
DOTTED_STATUS_PATHS = [
    "/./status/x",
    "/status/./x",
    "/a/../status/x",
    "/%2e/status/x",
    "/status/..%2Fx",
    "/status/%2E%2e%2fx",
    "/./status/x%2F",
]


@pytest.mark.parametrize("path", DOTTED_STATUS_PATHS)
def test_dot_segments_cannot_take_a_status_url_to_the_catch_all(gunicorn, served_env, path):
    server = gunicorn("served_app:app", **served_env)
    status, headers, body = get_raw(server, path, "dots")
    assert status == 404
    assert headers["Content-Type"] == "application/problem+json"
    assert "Task-Status" not in headers
    assert json.loads(body)["status"] == 404
    # No task was started: the key is still free for a real task's path.
    status, headers, _ = get_raw(server, "/nap/0", "dots")
    assert status == 202
    assert headers["Location"].startswith("/status/")


# Requests gunicorn cannot read, answered before the app sees them.
UNREADABLE = {
    "a request line over 4094 bytes": (414, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n"),
    "a header over 8190 bytes": (431, b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"),
    "over 100 headers": (
        431,
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: a\r\n" % n for n in range(150)) + b"\r\n",
    ),
    "no request line": (400, b"GARBAGE\r\n\r\n"),
    "a bad Content-Length": (400, b"POST /nap/0 HTTP/1.1\r\nContent-Length: abc\r\n\r\n"),
}


def test_requests_the_server_cannot_read_answer_problems(gunicorn, served_env):
    server = gunicorn("served_app:app", **served_env)
    for what, (code, message) in UNREADABLE.items():
        status, headers, body = raw_http(server.port, message)
        assert status == code, what
        assert headers["Content-Type"] == "application/problem+json", what
        problem = json.loads(body)
        assert problem["status"] == code, what
        assert problem["title"] and problem["detail"], what
    assert "Traceback" not in server.log.read_text()


def test_ids_are_long_random_and_have_no_slash(make_app):
    client = make_app(TASK_MAX_QUEUED=100).test_client()
    ids = {client.get("/async/echo/a").get_json()["id"] for _ in range(50)}
    assert len(ids) == 50
    for task_id in ids:
        assert "/" not in task_id
        # 22 URL-safe base64 characters carry 132 bits; 128 of them random.
        assert len(task_id) >= 22


def test_unknown_route_and_method_answer_problems(client):
    response = client.delete("/health")
    assert response.status_code == 405
    assert response.content_type == "application/problem+json"
    assert "GET" in response.headers["Allow"]


def test_failed_task_monitor_carries_its_problem(client, poll_done):
    key = {"Idempotency-Key": "crash-1"}
    location = client.get("/async/crash", headers=key).headers["Location"]
    poll_done(client, location)
    # A repeated submit answers the task's monitor rather than its answer.
    monitor = client.get("/async/crash", headers=key).get_json()
    assert monitor["status"] == "failed"
    assert monitor["error"] == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": monitor["error"]["detail"],
    }
    assert "secret database password" not in monitor["error"]["detail"]


def test_a_view_that_exits_still_ends_failed_and_the_worker_goes_on(make_app, poll_done):
    app = make_app(TASK_MAX_WORKERS=1)

    @app.get("/exits")
    @async_api
    def exits():
        raise SystemExit(3)

    client = app.test_client()
    done = poll_done(client, client.get("/exits").headers["Location"])
    assert done.status_code == 500
    assert done.headers["Task-Status"] == "failed"
    # The single worker survived and takes the next task.
    assert poll_done(client, client.get("/async/echo/a").headers["Location"]).status_code == 200


def test_an_unhandled_error_in_a_task_reaches_error_monitors(app, poll_done):
    from flask import got_request_exception

    seen = []

    def record(sender, exception, **extra):
        seen.append(exception)

    got_request_exception.connect(record, app)
    try:
        client = app.test_client()
        poll_done(client, client.get("/async/crash").headers["Location"])
    finally:
        got_request_exception.disconnect(record, app)
    assert [type(error) for error in seen] == [RuntimeError]


def test_the_apps_own_error_handlers_apply_in_a_task(make_app, poll_done):
    app = make_app()

    @app.errorhandler(KeyError)
    def missing_key(error):
        return {"detail": f"missing {error}"}, 422

    @app.get("/sync/lookup")
    def lookup():
        return {}["nope"]

    app.add_url_rule("/async/lookup", "async_lookup", async_api(lookup))
    client = app.test_client()
    synchronous = client.get("/sync/lookup")
    done = poll_done(client, client.get("/async/lookup").headers["Location"])
    assert synchronous.status_code == done.status_code == 422
    assert done.get_data() == synchronous.get_data()
    assert done.headers["Task-Status"] == "failed"
