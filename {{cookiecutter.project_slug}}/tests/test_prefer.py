"""``Prefer: wait=N`` (RFC 7240): a fast task answered on its submit, a poll held until the end."""

import threading
import time

import pytest
from helpers import wait_for

from {{ cookiecutter.project_slug }}.tasks.waiting import requested_wait


def held(engine, count=1):
    """Wait until ``count`` requests are held for a task's end."""
    wait_for(
        lambda: len(engine.backend.waiters.task_ids) >= count,
        what=f"{count} requests to be held",
    )


class InThread:
    """A request made on a thread of its own: ``result()`` is its answer, and when it came."""

    def __init__(self, call):
        self._answer = None
        self._thread = threading.Thread(target=self._run, args=(call,))
        self._thread.start()

    def _run(self, call):
        self._answer = call(), time.monotonic()

    def result(self, timeout=15):
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"no answer within {timeout} s"
        return self._answer


def test_a_fast_task_is_answered_on_its_submit(client):
    answer = client.get("/async/created/widget", headers={"Prefer": "wait=5"})
    # What the first poll would answer: the view's own status, headers and body.
    assert answer.status_code == 201
    assert answer.get_json() == {"name": "widget"}
    assert answer.headers["X-Custom"] == "yes"
    assert answer.headers["Task-Status"] == "succeeded"
    assert answer.headers["Preference-Applied"] == "wait=5"
    status_url = answer.headers["Content-Location"]
    assert status_url.startswith("/status/")
    polled = client.get(status_url)
    assert (polled.status_code, polled.get_data()) == (201, answer.get_data())


def test_a_failed_task_answers_its_problem_on_its_submit(client):
    answer = client.get("/async/crash", headers={"Prefer": "respond-async, wait=5"})
    assert answer.status_code == 500
    assert answer.headers["Task-Status"] == "failed"
    assert answer.headers["Preference-Applied"] == "wait=5"


def test_a_slow_task_answers_202_once_the_wait_is_over(client, gate):
    started = time.monotonic()
    answer = client.get("/async/gated", headers={"Prefer": "wait=1"})
    assert time.monotonic() - started >= 0.9  # it was held
    assert answer.status_code == 202
    assert answer.headers["Preference-Applied"] == "wait=1"
    assert answer.headers["Location"].startswith("/status/")
    assert "Content-Location" not in answer.headers


def test_a_held_poll_is_answered_when_its_task_ends(client, engine, gate):
    location = client.get("/async/progress").headers["Location"]
    gate.wait_entered()
    poll = InThread(lambda: client.get(location, headers={"Prefer": "wait=10"}))
    held(engine)
    # Progress does not end the wait: only the task's end does.
    assert client.get(location).get_json()["progress"]["percent"] == 40
    gate.open()
    ended_at = time.monotonic()
    answer, answered_at = poll.result()
    assert (answer.status_code, answer.get_data()) == (200, b"done")
    assert answer.headers["Preference-Applied"] == "wait=10"
    assert answered_at - ended_at < 5  # woken by the end, well before the deadline


def test_a_held_poll_of_a_cancelled_task_answers_its_monitor(client, engine, gate):
    location = client.get("/async/gated").headers["Location"]
    gate.wait_entered()
    poll = InThread(lambda: client.get(location, headers={"Prefer": "wait=10"}))
    held(engine)
    assert client.delete(location).status_code == 202
    gate.open()
    answer, _ = poll.result()
    assert answer.status_code == 200
    assert answer.get_json()["status"] == "cancelled"


def test_a_finished_task_is_answered_at_once(client, poll_done):
    location = client.get("/async/created/a").headers["Location"]
    poll_done(client, location)
    answer = client.get(location, headers={"Prefer": "wait=10"})
    assert answer.status_code == 201


def test_past_the_most_held_a_request_is_answered_at_once(make_app, gate):
    app = make_app(TASK_MAX_WAITING=1)
    client = app.test_client()
    location = client.get("/async/gated").headers["Location"]
    first = InThread(lambda: client.get(location, headers={"Prefer": "wait=10"}))
    held(app.extensions["task_engine"])
    started = time.monotonic()
    second = client.get(location, headers={"Prefer": "wait=10"})
    assert time.monotonic() - started < 5  # not held the 10 s
    assert second.status_code == 202
    assert "Preference-Applied" not in second.headers
    gate.open()
    assert first.result()[0].headers["Preference-Applied"] == "wait=10"


def test_a_wait_longer_than_task_max_wait_is_cut_to_it(make_app, gate):
    client = make_app(TASK_MAX_WAIT=1).test_client()
    started = time.monotonic()
    answer = client.get("/async/gated", headers={"Prefer": "wait=3600"})
    assert time.monotonic() - started < 5
    assert answer.status_code == 202
    assert answer.headers["Preference-Applied"] == "wait=1"


def test_a_malformed_wait_is_ignored(client, gate):
    # Were any of them read as a wait, its request would be held 10 s or more.
    for prefer in ["wait=-10", "wait=abc", "wait=10.5", "wait", "=;,;"]:
        started = time.monotonic()
        answer = client.get("/async/gated", headers={"Prefer": prefer})
        assert time.monotonic() - started < 5, prefer
        assert answer.status_code == 202, prefer
        assert "Preference-Applied" not in answer.headers, prefer


def test_another_owners_wait_is_a_404_at_once(client, gate):
    location = client.get("/async/gated", headers={"Authorization": "Bearer alice"}).headers[
        "Location"
    ]
    started = time.monotonic()
    answer = client.get(location, headers={"Authorization": "Bearer bob", "Prefer": "wait=10"})
    assert time.monotonic() - started < 5  # not held the 10 s
    assert answer.status_code == 404


def test_an_idempotent_repeat_of_a_held_submit_is_held_too(client):
    headers = {"Prefer": "wait=5", "Idempotency-Key": "once"}
    first = client.get("/async/created/a", headers=headers)
    repeat = client.get("/async/created/a", headers=headers)
    assert first.status_code == repeat.status_code == 201
    assert first.headers["Content-Location"] == repeat.headers["Content-Location"]


def test_stopping_answers_every_held_request_at_once(client, engine, gate):
    location = client.get("/async/gated").headers["Location"]
    poll = InThread(lambda: client.get(location, headers={"Prefer": "wait=10"}))
    held(engine)
    engine.backend.waiters.release()  # as SIGTERM does under gunicorn
    answer, _ = poll.result(timeout=5)
    assert answer.status_code == 202


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        (["wait=5"], 5),
        (["respond-async, wait=5"], 5),
        (["respond-async", "wait=7"], 7),
        (['WAIT="3"'], 3),
        (["handling=lenient; foo=bar, wait=2, wait=9"], 2),
        ([", , wait=4"], 4),
        (["respond-async"], None),
        (["wait=-5"], None),
        (["wait=5s"], None),
        ([], None),
    ],
)
def test_prefer_is_read_as_rfc_7240_says(headers, seconds):
    assert requested_wait(headers) == seconds


def test_held_requests_leave_threads_free_and_end_at_sigterm(gunicorn, served_env, served_workers):
    served_workers()
    # Two threads: one request may be held (TASK_MAX_WAITING is half), one stays free.
    env = {**served_env, "GUNICORN_THREADS": "2", "WEB_CONCURRENCY": "1"}
    server = gunicorn("served_app:app", **env, FLASK_TASK_SHUTDOWN_TIMEOUT="2")
    submit = InThread(lambda: server.get("/nap/30", {"Prefer": "wait=20"}))
    wait_for(lambda: server.get("/test/held")[2] == b'{"held":1}\n', what="the submit to be held")
    # The most are held: another is answered at once, and plain requests are served.
    status, headers, _ = server.get("/nap/30", {"Prefer": "wait=20"})
    assert status == 202 and "Preference-Applied" not in headers
    assert server.get("/readyz")[0] == 200
    stopping = InThread(server.terminate)
    (status, headers, _), answered_at = submit.result(timeout=10)
    assert status == 202 and headers["Preference-Applied"] == "wait=20"
    took, exited_at = stopping.result(timeout=30)
    assert answered_at < exited_at
    assert took < 10, server.log.read_text()
