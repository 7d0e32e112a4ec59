"""Backpressure: at most TASK_MAX_QUEUED tasks wait, across every web process; beyond that, 503."""

from helpers import add_nap_view

from {{ cookiecutter.project_slug }} import create_app


def test_submit_beyond_the_queue_answers_503_and_records_nothing(make_app, gate, held_tasks):
    app = make_app(TASK_MAX_WORKERS=1, TASK_MAX_QUEUED=2)
    client = app.test_client()
    running = client.get("/async/gated")
    gate.wait_entered()
    queued = [client.get("/async/gated") for _ in range(2)]
    assert [r.status_code for r in (running, *queued)] == [202] * 3

    refused = client.get("/async/gated")
    assert refused.status_code == 503
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.content_type == "application/problem+json"
    assert "Task-Status" not in refused.headers
    assert held_tasks(app) == 3
    assert [client.get(r.headers["Location"]).headers["Task-Status"] for r in queued] == [
        "queued",
        "queued",
    ]


def test_the_queue_limit_holds_across_web_processes(make_app, backend_config, gate):
    app = make_app(TASK_MAX_WORKERS=1, TASK_MAX_QUEUED=1)
    client = app.test_client()
    client.get("/async/gated")
    gate.wait_entered()
    assert client.get("/async/gated").status_code == 202  # the one place in the queue
    # Another web process on the same Redis sees the same queue.
    other = create_app({"SECRET_KEY": "test-secret", **backend_config, "TASK_MAX_QUEUED": 1})
    add_nap_view(other)
    try:
        assert other.test_client().get("/nap/1").status_code == 503
    finally:
        other.extensions["task_engine"].shutdown()


def test_a_worker_runs_at_most_its_concurrency(make_app, gate, poll_done):
    app = make_app(TASK_MAX_WORKERS=2, TASK_MAX_QUEUED=20)
    client = app.test_client()
    locations = [client.get("/async/gated").headers["Location"] for _ in range(6)]
    gate.wait_entered(2)
    statuses = [client.get(location).headers["Task-Status"] for location in locations]
    assert statuses.count("running") == 2
    gate.open()
    for location in locations:
        poll_done(client, location)
    assert gate.most_running == 2
    assert gate.entries == 6
