"""Retention: Redis expires a finished task TASK_RETENTION seconds after it finished."""

from helpers import wait_for


def task_ttl(app, task_id):
    """Milliseconds until Redis expires the task; -1: never."""
    backend = app.extensions["task_engine"].backend
    return backend.redis.pttl(f"{app.name}:task:{task_id}")


def test_a_finished_task_stays_for_the_retention_then_goes(make_app, poll_done):
    app = make_app(TASK_RETENTION=1.5)
    client = app.test_client()
    submitted = client.get("/async/echo/a", headers={"Idempotency-Key": "k"})
    done = poll_done(client, submitted.headers["Location"])
    assert done.status_code == 200
    assert 0 < task_ttl(app, submitted.get_json()["id"]) <= 1500
    wait_for(
        lambda: client.get(submitted.headers["Location"]).status_code == 404,
        timeout=4,
        what="the task to expire",
    )
    gone = client.get(submitted.headers["Location"])
    assert "Task-Status" not in gone.headers
    # Its Idempotency-Key went with it: the same key starts a new task.
    again = client.get("/async/echo/a", headers={"Idempotency-Key": "k"})
    assert again.headers["Location"] != submitted.headers["Location"]


def test_queued_and_running_tasks_never_expire(make_app, gate):
    app = make_app(TASK_MAX_WORKERS=1, TASK_RETENTION=0.1)
    client = app.test_client()
    running = client.get("/async/gated").get_json()["id"]
    gate.wait_entered()
    queued = client.get("/async/gated").get_json()["id"]
    assert task_ttl(app, running) == -1
    assert task_ttl(app, queued) == -1
    assert client.get(f"/status/{queued}").headers["Task-Status"] == "queued"
