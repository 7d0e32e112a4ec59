"""Testing one's own task over HTTP with ``task_client``, as the README shows."""

import sys
import threading
import time

from flask import request
from task_client import monitor, submit, wait_until_done

from {{ cookiecutter.project_slug }} import async_api, current_task


def process(row):
    """Stands for the slow work of a view: a test replaces it."""
    time.sleep(0.0123)


def add_report_view(app):
    # A path and a name of the test's own, beside any view the project has.
    @app.post("/async/reports/<name>")
    @async_api
    def own_report(name):
        rows = request.get_json()["rows"]
        for done, row in enumerate(rows, start=1):
            if current_task.cancelled:
                return "stopped"
            process(row)
            current_task.report(100 * done // len(rows), f"row {done} of {len(rows)}")
        return {"report": name, "rows": len(rows)}, 201


def test_a_view_of_ones_own_shows_progress_and_answers(make_app, gate, monkeypatch):
    app = make_app()
    add_report_view(app)
    rows_seen = []

    def held_process(row):
        rows_seen.append(row)
        if row == 2:
            gate.hold()  # the test reads the monitor while the task waits here

    monkeypatch.setattr(sys.modules[__name__], "process", held_process)
    client = app.test_client()
    location = submit(client, "/async/reports/q3", method="POST", json={"rows": [1, 2, 3]})
    gate.wait_entered()
    assert monitor(client, location)["progress"] == {"percent": 33, "message": "row 1 of 3"}
    gate.open()
    done = wait_until_done(client, location)
    assert done.status_code == 201
    assert done.get_json() == {"report": "q3", "rows": 3}
    assert rows_seen == [1, 2, 3]


def test_patching_time_sleep_leaves_the_waiting_alone(make_app, monkeypatch):
    app = make_app()
    add_report_view(app)
    slept = []
    real_sleep = time.sleep

    def instant_sleep(seconds):
        slept.append(seconds)
        real_sleep(0)  # a thread switch, so that other threads' loops do not spin

    monkeypatch.setattr(time, "sleep", instant_sleep)  # the view's sleeps are now instant
    client = app.test_client()
    location = submit(client, "/async/reports/fast", method="POST", json={"rows": list(range(5))})
    assert wait_until_done(client, location).get_json() == {"report": "fast", "rows": 5}
    assert slept.count(0.0123) == 5


def test_waiting_fails_clearly_past_its_deadline(app, gate):
    client = app.test_client()
    location = submit(client, "/async/gated")
    try:
        wait_until_done(client, location, timeout=0.05)
    except AssertionError as error:
        assert "was not done within 0.05 s" in str(error)
    else:
        raise AssertionError("wait_until_done returned while the task was held")
    gate.open()


def test_waiting_with_prefer_polls_once_or_twice(app, gate):
    client = app.test_client()
    polls = []
    app.before_request(lambda: polls.append(request.path) if request.method == "GET" else None)
    location = submit(client, "/async/gated")
    gate.wait_entered()
    opener = threading.Timer(0.3, gate.open)  # the task ends while the poll is held
    opener.start()
    done = wait_until_done(client, location, wait=5)
    opener.join()
    assert done.status_code == 200
    assert done.headers["Preference-Applied"] == "wait=5"
    assert 1 <= polls.count(location) <= 2
