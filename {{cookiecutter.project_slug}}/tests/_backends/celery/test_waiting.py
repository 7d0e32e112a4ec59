"""Held requests across processes: woken through Redis, answered at once without it."""

import threading
import time

from helpers import wait_for


def held_poll(client, location, seconds):
    """Poll ``location`` with ``Prefer: wait`` on a thread; a list that gets (answer, time)."""
    answers = []

    def poll():
        answer = client.get(location, headers={"Prefer": f"wait={seconds}"})
        answers.append((answer, time.monotonic()))

    thread = threading.Thread(target=poll)
    thread.start()
    return thread, answers


def test_a_poll_held_by_one_web_process_is_woken_by_a_task_another_submitted(
    web_app, worker_process
):
    worker_process()
    submitting, holding = web_app(), web_app()
    location = submitting.test_client().get("/nap/2").headers["Location"]
    waiters = holding.extensions["task_engine"].backend.waiters
    started = time.monotonic()
    thread, answers = held_poll(holding.test_client(), location, 20)
    wait_for(lambda: waiters.task_ids, what="the poll to be held")
    thread.join(20)
    [(answer, answered_at)] = answers
    assert (answer.status_code, answer.get_data()) == (200, b"slept 2")
    assert answer.headers["Preference-Applied"] == "wait=20"
    assert answered_at - started < 15  # woken by the end, not the deadline
    assert waiters.task_ids == []


def test_held_requests_are_answered_at_once_when_redis_goes(redis_server, web_app):
    app = web_app()  # no worker: the task stays queued
    client = app.test_client()
    location = client.get("/nap/1").headers["Location"]
    waiters = app.extensions["task_engine"].backend.waiters
    thread, answers = held_poll(client, location, 20)
    wait_for(lambda: waiters.task_ids, what="the poll to be held")
    redis_server.stop()
    stopped_at = time.monotonic()
    try:
        thread.join(10)
        [(answer, answered_at)] = answers
        assert answered_at - stopped_at < 8  # not at the 20 s deadline
        assert answer.status_code == 503
        assert answer.content_type == "application/problem+json"
    finally:
        redis_server.start()
