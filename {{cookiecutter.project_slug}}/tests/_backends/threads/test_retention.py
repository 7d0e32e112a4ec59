"""Retention: finished tasks stay for TASK_RETENTION seconds, then the cleaner drops them."""

import logging
import time

import pytest
from helpers import FakeClock, submit_and_poll_while_cleaning, wait_for

RETENTION = {{ cookiecutter.task_retention_seconds | int }}


@pytest.fixture
def backend(engine):
    return engine.backend


def test_finished_task_stays_for_the_retention_then_goes(client, clock, backend, poll_done):
    location = client.get("/async/echo/a").headers["Location"]
    assert poll_done(client, location).status_code == 200

    clock.advance(RETENTION - 0.01)
    backend.cleaner.run_pass()
    assert client.get(location).status_code == 200

    clock.advance(0.02)
    assert backend.cleaner.run_pass() == 1
    gone = client.get(location)
    assert gone.status_code == 404
    assert "Task-Status" not in gone.headers


def test_queued_and_running_tasks_are_never_removed(make_app, gate):
    app = make_app(TASK_MAX_WORKERS=1)
    client, backend = app.test_client(), app.extensions["task_engine"].backend
    running = client.get("/async/gated").headers["Location"]
    queued = client.get("/async/gated").headers["Location"]
    gate.wait_entered()
    backend.clock = lambda: 10**12  # far beyond any retention
    backend.cleaner.run_pass()
    assert client.get(running).headers["Task-Status"] == "running"
    assert client.get(queued).headers["Task-Status"] == "queued"


def test_only_expired_tasks_go(client, clock, backend, poll_done):
    old = client.get("/async/echo/old").headers["Location"]
    poll_done(client, old)
    clock.advance(RETENTION / 2)
    new = client.get("/async/echo/new").headers["Location"]
    poll_done(client, new)
    clock.advance(RETENTION / 2 + 0.01)
    assert backend.cleaner.run_pass() == 1
    assert client.get(old).status_code == 404
    assert client.get(new).status_code == 200


def test_the_cleaner_thread_drops_tasks_on_its_own(make_app, poll_done):
    app = make_app(TASK_RETENTION=0.05, TASK_CLEANUP_INTERVAL=0.02)
    client = app.test_client()
    location = client.get("/async/echo/a").headers["Location"]
    poll_done(client, location)
    wait_for(lambda: client.get(location).status_code == 404, what="the cleaner to drop the task")


def test_the_cleaner_survives_a_failing_pass(make_app, poll_done, caplog, monkeypatch):
    app = make_app(TASK_RETENTION=0.05, TASK_CLEANUP_INTERVAL=0.02)
    client, store = app.test_client(), app.extensions["task_engine"].backend.store
    failures = []
    remove_expired = store.remove_expired

    def fail_twice(finished_before):
        if len(failures) < 2:
            failures.append(finished_before)
            raise OSError("disk on fire")
        return remove_expired(finished_before)

    monkeypatch.setattr(store, "remove_expired", fail_twice)
    caplog.set_level(logging.ERROR)
    location = client.get("/async/echo/a").headers["Location"]
    poll_done(client, location)
    wait_for(lambda: client.get(location).status_code == 404, what="a pass after the failures")
    assert len(failures) == 2
    assert "cleaner pass failed" in caplog.text


def test_a_step_of_the_wall_clock_changes_no_expiry(client, clock, backend, poll_done, monkeypatch):
    location = client.get("/async/echo/a").headers["Location"]
    poll_done(client, location)
    monkeypatch.setattr(time, "time", lambda: 0.0)  # NTP set the clock back to 1970
    clock.advance(RETENTION + 0.01)
    assert backend.cleaner.run_pass() == 1
    assert client.get(location).status_code == 404


def test_cleaner_removals_race_with_submits_and_polls(make_app, poll_done, held_tasks):
    app = make_app(TASK_MAX_QUEUED=300)
    client, backend = app.test_client(), app.extensions["task_engine"].backend
    backend.clock = clock = FakeClock()
    old = [client.get(f"/async/echo/old-{i}").headers["Location"] for i in range(200)]
    for location in old:
        poll_done(client, location)
    clock.advance(RETENTION + 1)  # every old task has expired; new ones have not

    ids, failures = submit_and_poll_while_cleaning(app, poll_done, "new", 8, 25)

    assert not failures, failures[:3]
    assert all(client.get(location).status_code == 404 for location in old)
    assert held_tasks(app) == len(ids) == 8 * 25
