"""The request: the task sees the request as it was submitted, even after the client left."""

import functools
import http.client
import json
import threading

import pytest
from flask import abort, request
from helpers import raw_http, wait_for
from werkzeug.serving import make_server

from {{ cookiecutter.project_slug }} import async_api, current_task


def test_task_sees_method_path_args_query_headers_and_body(client, poll_done):
    submitted = client.post(
        "/async/echo/bob?x=1&y=two",
        json={"answer": 42},
        headers={"X-Test": "kept", "Authorization": "Bearer alice"},
    )
    assert submitted.status_code == 202
    done = poll_done(
        client, submitted.headers["Location"], headers={"Authorization": "Bearer alice"}
    )
    assert done.get_json() == {
        "method": "POST",
        "path": "/async/echo/bob",
        "view_args": {"name": "bob"},
        "args": {"x": "1", "y": "two"},
        "header": "kept",
        "json": {"answer": 42},
        "data": '{"answer": 42}',
        "form": {},
        # before_request ran again inside the task, and set g.user.
        "user": "alice",
    }


def test_task_sees_a_form_that_before_request_read_first(make_app, poll_done):
    app = make_app()

    @app.before_request
    def check_csrf():  # as CSRF protection does: it reads the form first
        if request.method == "POST":
            request.form.get("csrf_token")

    client = app.test_client()
    submitted = client.post("/async/echo/form", data={"csrf_token": "t", "name": "Ada"})
    done = poll_done(client, submitted.headers["Location"])
    assert done.get_json()["form"] == {"csrf_token": "t", "name": "Ada"}


def test_a_body_over_the_limit_is_refused_before_any_task(make_app, held_tasks):
    app = make_app(MAX_CONTENT_LENGTH=1000)
    client = app.test_client()
    response = client.post("/async/echo/big", data=b"x" * 1001, content_type="text/plain")
    assert response.status_code == 413
    assert response.content_type == "application/problem+json"
    assert held_tasks(app) == 0


def test_task_sees_a_raw_body(client, poll_done):
    submitted = client.put("/async/echo/raw", data=b"plain bytes", content_type="text/plain")
    done = poll_done(client, submitted.headers["Location"])
    assert done.get_json()["data"] == "plain bytes"
    assert done.get_json()["method"] == "PUT"


@pytest.fixture
def serve():
    """``serve(app)``: the app behind a real WSGI server on 127.0.0.1; stopped after the test."""
    running = []

    def start(app):
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        running.append((server, thread))
        return server

    yield start
    for server, thread in running:
        server.shutdown()
        thread.join(5)
        server.server_close()


@pytest.fixture
def server(app, serve):
    """The app behind a real WSGI server on 127.0.0.1."""
    return serve(app)


def http_request(server, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_body_read_after_the_client_left_over_real_http(server, gate):
    body = json.dumps({"large": "x" * 200_000}).encode()
    status, headers, _ = http_request(
        server, "POST", "/async/late-echo", body, {"Content-Type": "application/json"}
    )
    assert status == 202
    # The client has closed its connection; only now does the view read the body.
    gate.wait_entered()
    gate.open()
    location = headers["Location"]

    answers = []

    def done():
        answers.append(http_request(server, "GET", location))
        return answers[-1][0] != 202

    wait_for(done, what="the task to finish")
    status, headers, payload = answers[-1]
    assert status == 200
    assert json.loads(payload)["json"] == {"large": "x" * 200_000}


def test_before_request_tells_the_submit_from_the_task(make_app, poll_done):
    app = make_app()
    seen = []

    @app.before_request
    def record():
        seen.append(current_task.id)

    client = app.test_client()
    submitted = client.get("/async/echo/twice")
    poll_done(client, submitted.headers["Location"])
    task_id = submitted.get_json()["id"]
    # The submit and the polls see no task; the task's replay sees its own id, once.
    assert seen[0] is None
    assert seen.count(task_id) == 1
    assert set(seen) == {None, task_id}


def json_with(*keys):
    """The README's check of a JSON body, placed above ``async_api``."""

    def decorator(view):
        @functools.wraps(view)
        def checked(*args, **kwargs):
            if not request.is_json:
                abort(415)
            body = request.get_json(silent=True)
            if not isinstance(body, dict) or any(key not in body for key in keys):
                abort(400, f"The JSON body needs {', '.join(keys)}.")
            return view(*args, **kwargs)

        return checked

    return decorator


def test_a_check_above_async_api_refuses_bad_input_before_any_task(make_app, held_tasks, poll_done):
    app = make_app()

    @app.post("/async/checked-report")
    @json_with("rows")
    @async_api
    def checked_report():
        return {"rows": len(request.get_json()["rows"])}

    client = app.test_client()
    not_json = client.post("/async/checked-report", data="rows=1")
    assert not_json.status_code == 415
    missing = client.post("/async/checked-report", json={"columns": []})
    assert missing.status_code == 400
    assert missing.content_type == "application/problem+json"
    assert "rows" in missing.get_json()["detail"]
    assert held_tasks(app) == 0
    accepted = client.post("/async/checked-report", json={"rows": [1, 2]})
    assert accepted.status_code == 202
    assert poll_done(client, accepted.headers["Location"]).get_json() == {"rows": 2}


def chunks(size, piece=700):
    """A body of ``size`` bytes, sent in pieces: ``Transfer-Encoding: chunked``, no length."""
    for start in range(0, size, piece):
        yield b"x" * min(piece, size - start)


def test_a_chunked_body_over_the_limit_is_refused_not_cut(make_app, serve, held_tasks, poll_done):
    app = make_app(MAX_CONTENT_LENGTH=1000)
    server = serve(app)
    status, headers, body = http_request(server, "POST", "/async/echo/big", chunks(5000))
    assert status == 413
    assert headers["Content-Type"] == "application/problem+json"
    assert held_tasks(app) == 0

    status, headers, _ = http_request(server, "POST", "/async/echo/small", chunks(1000))
    assert status == 202
    done = poll_done(app.test_client(), headers["Location"])
    assert len(done.get_json()["data"]) == 1000


def post_body(headers, body=b""):
    """A raw ``POST /body`` of the served app: its request line, ``headers`` and ``body``."""
    lines = ["POST /body HTTP/1.1", "Host: 127.0.0.1", "Content-Type: text/plain", *headers]
    return "\r\n".join([*lines, "", ""]).encode() + body


def assert_bad_request(status, headers, body):
    assert status == 400
    assert headers["Content-Type"] == "application/problem+json"
    assert "Task-Status" not in headers
    detail = json.loads(body)["detail"]
    assert detail and "\n" not in detail
    return detail


def test_a_body_shorter_than_its_length_is_refused_not_run(gunicorn, served_env):
    server = gunicorn("served_app:app", **served_env)
    headers = ["Content-Length: 100", "Idempotency-Key: short-body"]
    # The client sends 3 bytes of 100 and stops.
    answer = raw_http(server.port, post_body(headers, b"abc"), close_write=True)
    assert "Content-Length" in assert_bad_request(*answer)
    # Nothing was recorded: the whole body, under the same key, is a new task.
    whole = raw_http(server.port, post_body([*headers, "Connection: close"], b"abc" + b"d" * 97))
    assert whole[0] == 202
    assert "Traceback" not in server.log.read_text()


@pytest.mark.parametrize(
    ("chunked", "close_write"),
    [(b"zz\r\nabc\r\n0\r\n\r\n", False), (b"64\r\nabc", True)],
    ids=["malformed", "cut"],
)
def test_a_malformed_or_cut_chunked_body_is_refused_without_a_traceback(
    gunicorn, served_env, chunked, close_write
):
    server = gunicorn("served_app:app", **served_env)
    headers = ["Transfer-Encoding: chunked", "Idempotency-Key: chunked-body"]
    answer = raw_http(server.port, post_body(headers, chunked), close_write=close_write)
    assert_bad_request(*answer)
    # Nothing was recorded: a whole body, under the same key, is a new task.
    whole_body = b"3\r\nabc\r\n0\r\n\r\n"
    whole = raw_http(server.port, post_body([*headers, "Connection: close"], whole_body))
    assert whole[0] == 202
    log = server.log.read_text()
    assert "Traceback" not in log
    assert "Error handling request" not in log
