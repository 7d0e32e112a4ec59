"""Faults: other web processes, restarts, lost workers, repeated messages, Redis down."""

import os
import signal
import time
from pathlib import Path

import pytest
import redis
from helpers import wait_for

from {{ cookiecutter.project_slug }} import async_api
from {{ cookiecutter.project_slug }}.tasks.backend import Unavailable


def test_the_request_leaves_redis_when_its_task_starts(app, gate, stored_task):
    client = app.test_client()
    submitted = client.post(
        "/async/late-echo", json={"card": "4111"}, headers={"Authorization": "Bearer alice"}
    )
    gate.wait_entered()
    stored = stored_task(app, submitted.get_json()["id"])
    assert stored["status"] == b"running"
    assert "request" not in stored and "body" not in stored
    assert not any(b"alice" in value or b"4111" in value for value in stored.values())


def test_another_web_process_gives_the_same_answers(app, web_app, gate, poll_done):
    client, other = app.test_client(), web_app().test_client()
    location = client.get("/async/gated").headers["Location"]
    gate.wait_entered()
    here, there = client.get(location), other.get(location)
    assert here.status_code == there.status_code == 202
    assert here.get_json() == there.get_json()
    gate.open()
    done_here = poll_done(client, location)
    done_there = other.get(location)
    assert done_here.get_data() == done_there.get_data() == b"released"
    assert other.delete(location).status_code == 204
    assert client.get(location).status_code == 404


def test_a_restarted_web_process_still_answers_every_task(make_app, web_app, poll_done):
    first = make_app()
    client = first.test_client()
    location = client.get("/async/created/kept").headers["Location"]
    answer = poll_done(client, location)
    first.extensions["task_engine"].shutdown()  # the web process stops
    restarted = web_app().test_client()
    again = restarted.get(location)
    assert again.status_code == answer.status_code == 201
    assert again.get_data() == answer.get_data()


def test_a_message_delivered_twice_runs_its_task_once(make_app, poll_done):
    app = make_app(TASK_MAX_WORKERS=1)
    runs = []

    @app.get("/counted")
    @async_api
    def counted():
        runs.append(1)
        return "counted"

    client = app.test_client()
    submitted = client.get("/counted")
    poll_done(client, submitted.headers["Location"])
    backend = app.extensions["task_engine"].backend
    backend.run_task.apply_async((submitted.get_json()["id"],))  # the broker delivers again
    # The single worker takes messages in order: once a later task is done,
    # the repeated message was handled.
    poll_done(client, client.get("/async/echo/later").headers["Location"])
    assert runs == [1]
    assert client.get(submitted.headers["Location"]).get_data() == b"counted"


def test_a_killed_workers_task_fails_after_its_lease(web_app, worker_process):
    lease, interval = 1, 0.2
    worker, _ = worker_process(FLASK_TASK_LEASE=str(lease), FLASK_TASK_MAX_WORKERS="1")
    client = web_app(TASK_LEASE=lease, TASK_CLEANUP_INTERVAL=interval).test_client()
    location = client.get("/nap/60").headers["Location"]
    wait_for(
        lambda: client.get(location).headers.get("Task-Status") == "running",
        timeout=20,
        what="the worker to start the task",
    )
    os.killpg(worker.pid, signal.SIGKILL)  # the worker and its pool, as a lost machine
    killed_at = time.monotonic()
    wait_for(
        lambda: client.get(location).headers.get("Task-Status") == "failed",
        timeout=lease * 3 + interval + 5,
        what="the task to fail",
    )
    assert time.monotonic() - killed_at < lease * 3 + interval + 5
    failed = client.get(location)
    assert failed.status_code == 500
    assert failed.content_type == "application/problem+json"
    assert "worker" in failed.get_json()["detail"]


def test_a_task_whose_pool_process_dies_fails_at_once(web_app, worker_process):
    lease = 60  # the lease would fail it a minute later: the worker does at once
    worker, log = worker_process(FLASK_TASK_LEASE=str(lease), FLASK_TASK_MAX_WORKERS="1")
    client = web_app(TASK_LEASE=lease).test_client()
    location = client.get("/nap/60").headers["Location"]
    task_id = location.rsplit("/", 1)[1]
    wait_for(
        lambda: client.get(location).headers.get("Task-Status") == "running",
        timeout=20,
        what="the worker to start the task",
    )
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    for child in children:  # the pool: the task's process, killed as the OOM killer would
        os.kill(int(child), signal.SIGKILL)
    wait_for(
        lambda: client.get(location).headers.get("Task-Status") == "failed",
        timeout=15,
        what="the task to fail",
    )
    failed = client.get(location)
    assert failed.status_code == 500
    assert "worker" in failed.get_json()["detail"]
    wait_for(
        lambda: f"Task {task_id} (nap) failed:".encode() in log.read_bytes(),
        what="the worker to log the task's end",
    )
    assert f"Task {task_id} failed: its worker process died".encode() in log.read_bytes()
    assert worker.poll() is None  # the worker itself lives on, with a new pool process


def test_a_running_task_keeps_its_lease_while_its_worker_lives(make_app, gate, poll_done):
    lease = 0.3
    app = make_app(TASK_LEASE=lease, TASK_CLEANUP_INTERVAL=0.05)
    client = app.test_client()
    location = client.get("/async/gated").headers["Location"]
    gate.wait_entered()
    deadline = time.monotonic() + lease * 5
    while time.monotonic() < deadline:  # reaper passes run all along
        assert client.get(location).headers["Task-Status"] == "running"
        time.sleep(lease / 10)
    gate.open()
    assert poll_done(client, location).get_data() == b"released"


def test_sigterm_to_a_worker_lets_its_task_finish_and_leaves_the_queue(
    web_app, worker_process, poll_done
):
    worker, log = worker_process(FLASK_TASK_MAX_WORKERS="1")
    client = web_app().test_client()
    running = client.get("/nap/1").headers["Location"]
    wait_for(
        lambda: client.get(running).headers.get("Task-Status") == "running",
        timeout=20,
        what="the worker to start the task",
    )
    queued = client.get("/nap/0.1").headers["Location"]
    worker.send_signal(signal.SIGTERM)
    worker.wait(30)
    assert client.get(running).status_code == 200  # it finished before the worker left
    assert client.get(queued).headers["Task-Status"] == "queued"
    worker_process()  # the next worker takes it
    done = poll_done(client, queued)
    assert done.get_data() == b"slept 0.1"


def test_redis_down_answers_503_in_bounded_time_then_recovers(redis_server, web_app):
    client = web_app().test_client()
    assert client.get("/health").status_code == 200
    known = client.get("/nap/5").headers["Location"]
    redis_server.stop()
    try:
        for method, path in [("GET", "/nap/5"), ("GET", known), ("DELETE", known)]:
            started = time.monotonic()
            response = client.open(path, method=method)
            assert time.monotonic() - started < 10
            assert response.status_code == 503, (method, path)
            assert response.content_type == "application/problem+json"
            assert int(response.headers["Retry-After"]) >= 1
        health = client.get("/health")
        assert health.status_code == 503
        assert health.get_json()["status"] == "unavailable"
        assert int(health.headers["Retry-After"]) >= 1
    finally:
        redis_server.start()
    wait_for(lambda: client.get("/health").status_code == 200, timeout=10, what="recovery")
    assert client.get("/nap/5").status_code == 202


def assert_alive_but_not_ready(client):
    """``/livez`` answers 200 at once; ``/readyz`` 503, within Redis's time bound."""
    started = time.monotonic()
    alive = client.get("/livez")
    assert (alive.status_code, alive.get_json()) == (200, {"status": "ok"})
    assert time.monotonic() - started < 1.5  # asking Redis would take its 2 s timeout
    ready = client.get("/readyz")
    assert time.monotonic() - started < 4
    assert ready.status_code == 503
    assert ready.get_json()["status"] == "unavailable"
    assert int(ready.headers["Retry-After"]) >= 1


def test_liveness_holds_while_redis_is_down_or_stalled(redis_server, web_app):
    client = web_app().test_client()
    assert client.get("/readyz").status_code == 200
    redis_server.stop()
    try:
        assert_alive_but_not_ready(client)
    finally:
        redis_server.start()
    wait_for(lambda: client.get("/readyz").status_code == 200, timeout=10, what="recovery")
    os.kill(redis_server.process.pid, signal.SIGSTOP)  # takes connections, answers nothing
    try:
        assert_alive_but_not_ready(client)
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    wait_for(lambda: client.get("/readyz").status_code == 200, timeout=10, what="recovery")


def test_a_redis_outage_shorter_than_the_lease_fails_no_finished_task(
    redis_server, web_app, worker_process, poll_done
):
    worker, log = worker_process(FLASK_TASK_LEASE="20", FLASK_TASK_MAX_WORKERS="3")
    client = web_app(TASK_LEASE=20, TASK_CLEANUP_INTERVAL=0.2).test_client()
    locations = [client.get("/nap/0.5").headers["Location"] for _ in range(3)]
    wait_for(
        lambda: all(client.get(at).headers.get("Task-Status") == "running" for at in locations),
        timeout=20,
        what="the worker to start the tasks",
    )
    redis_server.stop()  # Redis persists its data on the way down, as with AOF
    try:
        # Down until every view has finished and failed to record its end.
        wait_for(
            lambda: log.read_bytes().count(b"napped 0.5 s") >= 3,
            timeout=15,
            what="the views to finish while Redis is down",
        )
    finally:
        redis_server.start()
    for location in locations:
        done = poll_done(client, location, timeout=30)
        assert done.status_code == 200, done.get_data()
        assert done.get_data() == b"slept 0.5"
        assert done.headers["Task-Status"] == "succeeded"

    # Each pool process said once that Redis was away, however often its
    # cancel checks, leases and ends failed to reach it, and once that it
    # was back: that line follows the end it recorded, so it may be written
    # just after the poll that saw the end.
    def said_back():
        lines = log.read_bytes()
        away = lines.count(b"Redis is unavailable")
        return away and lines.count(b"Redis is reachable again") == away

    wait_for(said_back, timeout=10, what="each process that said Redis was away to say it is back")
    lines = log.read_bytes()
    # At most the 3 pool processes and the worker's own (its heartbeat).
    assert 1 <= lines.count(b"Redis is unavailable") <= 4, lines.decode(errors="replace")
    assert lines.count(b"Redis is reachable again") == lines.count(b"Redis is unavailable")


def test_an_idle_worker_says_once_that_a_stalled_redis_is_away_and_once_that_it_is_back(
    redis_server, worker_process
):
    # A heartbeat every 0.5 s, each failing after the 2 s Redis timeout while
    # Redis is stalled; Celery's consumer waits on its connection meanwhile
    # and says nothing.
    _, log = worker_process(FLASK_TASK_LEASE="1.5")
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        wait_for(
            lambda: b"Redis is unavailable (the worker's heartbeat" in log.read_bytes(),
            timeout=10,
            what="the idle worker to say that Redis is away",
        )
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    wait_for(
        lambda: b"Redis is reachable again" in log.read_bytes(),
        timeout=10,
        what="the idle worker to say that Redis is back",
    )
    lines = log.read_bytes()
    assert lines.count(b"Redis is unavailable") == 1, lines.decode(errors="replace")
    assert lines.count(b"Redis is reachable again") == 1, lines.decode(errors="replace")


def test_a_submit_redis_runs_after_its_503_records_nothing(redis_server, web_app, held_tasks):
    """A stalled Redis runs what it was sent once it goes on: by then the
    submit was answered 503, and its client tries again. It must not be a
    second task, run by the reaper a lease later."""
    app = web_app(TASK_CLEANUP_INTERVAL=3600)
    client = app.test_client()
    assert client.get("/nap/0").status_code == 202
    assert held_tasks(app) == 1
    # The one connection the requests of this test client take from the pool.
    connection = str(app.extensions["task_engine"].backend.redis.client_id())
    os.kill(redis_server.process.pid, signal.SIGSTOP)  # reads nothing, answers nothing
    try:
        refused = client.get("/nap/0")
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    assert refused.status_code == 503
    assert refused.content_type == "application/problem+json"
    # The web process closed the connection when it gave up: Redis reads the
    # submit first, runs it, then finds the connection closed and drops it.
    with redis.Redis(host=redis_server.host, port=redis_server.port) as observer:
        wait_for(
            lambda: connection not in {entry["id"] for entry in observer.client_list()},
            timeout=10,
            what="Redis to read the stalled submit",
        )
    assert held_tasks(app) == 1
    assert client.get("/nap/0").status_code == 202  # the client's next try


def test_a_stalled_redis_answers_503_in_bounded_time(app, poll_done):
    client = app.test_client()
    known = client.get("/async/echo/a").headers["Location"]
    poll_done(client, known)
    redis = app.extensions["task_engine"].backend.redis
    redis.execute_command("CLIENT", "PAUSE", 4000, "ALL")  # accepts connections, answers nothing
    started = time.monotonic()
    stalled = client.get(known)
    assert time.monotonic() - started < 4
    assert stalled.status_code == 503
    assert stalled.content_type == "application/problem+json"
    wait_for(lambda: client.get(known).status_code == 200, timeout=10, what="Redis to answer")


def test_a_full_redis_refuses_tasks_and_says_so_at_health(app):
    client = app.test_client()
    redis = app.extensions["task_engine"].backend.redis
    redis.config_set("maxmemory", 1)
    try:
        refused = client.get("/async/echo/a")
        assert refused.status_code == 503
        assert refused.content_type == "application/problem+json"
        assert client.get("/health").status_code == 503
    finally:
        redis.config_set("maxmemory", 0)
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-ttl"])
def test_a_redis_that_evicts_keys_is_named_at_start_and_not_ready(app, make_app, caplog, policy):
    client = app.test_client()
    redis = app.extensions["task_engine"].backend.redis
    redis.config_set("maxmemory-policy", policy)
    try:
        health = client.get("/health")
        assert health.status_code == 503
        assert health.get_json()["status"] == "unavailable"
        assert policy in health.get_json()["detail"]
        caplog.clear()
        make_app()  # a process starting now
        named = [r for r in caplog.records if "maxmemory-policy" in r.getMessage()]
        assert len(named) == 1
        assert named[0].levelname == "WARNING"
        assert policy in named[0].getMessage()
        assert "\n" not in named[0].getMessage()
    finally:
        redis.config_set("maxmemory-policy", "noeviction")
    assert client.get("/health").status_code == 200


def test_a_lost_message_is_sent_again_after_the_lease(make_app, poll_done, monkeypatch):
    app = make_app(TASK_LEASE=0.3, TASK_CLEANUP_INTERVAL=0.1)
    backend = app.extensions["task_engine"].backend
    send = backend._send
    monkeypatch.setattr(backend, "_send", lambda task_id: None)  # the web process died here
    client = app.test_client()
    location = client.get("/async/echo/lost").headers["Location"]
    assert client.get(location).headers["Task-Status"] == "queued"
    monkeypatch.setattr(backend, "_send", send)
    assert poll_done(client, location).get_json()["view_args"] == {"name": "lost"}


def test_queued_tasks_are_sent_again_only_while_a_worker_is_alive(web_app):
    app = web_app(TASK_LEASE=30)
    backend = app.extensions["task_engine"].backend
    client = app.test_client()
    task_id = client.get("/nap/0").get_json()["id"]
    messages = app.extensions["celery"].conf.task_default_queue  # the broker's list
    assert backend.redis.llen(messages) == 1
    # Its message was sent two leases ago: due to be sent again, if it was lost.
    backend.redis.zadd(f"{app.name}:queued", {task_id: 0}, xx=True)
    backend.cleaner.run_pass()
    assert backend.redis.llen(messages) == 1  # no worker is alive to take either copy
    backend.store.heartbeat("worker@test", 30)
    backend.cleaner.run_pass()
    assert backend.redis.llen(messages) == 2  # one is alive, and took none in a lease


def test_a_message_that_cannot_be_sent_leaves_nothing_behind(app, held_tasks, monkeypatch):
    backend = app.extensions["task_engine"].backend
    send = backend._send

    def broker_down(task_id):
        raise Unavailable

    monkeypatch.setattr(backend, "_send", broker_down)
    client = app.test_client()
    key = {"Idempotency-Key": "order-1"}
    assert client.get("/async/echo/a", headers=key).status_code == 503
    assert held_tasks(app) == 0
    assert not list(backend.redis.scan_iter(match=f"{app.name}:idempotency:*"))
    monkeypatch.setattr(backend, "_send", send)
    assert client.get("/async/echo/a", headers=key).status_code == 202
