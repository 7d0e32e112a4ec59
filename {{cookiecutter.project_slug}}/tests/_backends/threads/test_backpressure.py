"""Backpressure: at most TASK_MAX_WORKERS run and TASK_MAX_QUEUED wait; beyond that, 503."""

import pytest


@pytest.mark.parametrize(("workers", "queued"), [(2, 1), (1, 0), (3, 2)])
def test_submit_beyond_the_limits_answers_503_and_records_nothing(
    make_app, gate, held_tasks, workers, queued
):
    app = make_app(TASK_MAX_WORKERS=workers, TASK_MAX_QUEUED=queued)
    client = app.test_client()
    accepted = [client.get("/async/gated") for _ in range(workers + queued)]
    assert [r.status_code for r in accepted] == [202] * (workers + queued)
    gate.wait_entered(workers)

    refused = client.get("/async/gated")
    assert refused.status_code == 503
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.content_type == "application/problem+json"
    assert refused.get_json()["status"] == 503
    assert "Task-Status" not in refused.headers
    assert held_tasks(app) == workers + queued

    statuses = [client.get(r.headers["Location"]).headers["Task-Status"] for r in accepted]
    assert statuses.count("running") == workers
    assert statuses.count("queued") == queued
    assert gate.most_running == workers


def test_places_free_up_as_tasks_finish(make_app, gate, poll_done):
    app = make_app(TASK_MAX_WORKERS=1, TASK_MAX_QUEUED=0)
    client = app.test_client()
    first = client.get("/async/gated").headers["Location"]
    assert client.get("/async/gated").status_code == 503
    gate.open()
    poll_done(client, first)
    assert client.get("/async/gated").status_code == 202


def test_worker_threads_never_exceed_the_limit(make_app, gate):
    app = make_app(TASK_MAX_WORKERS=3, TASK_MAX_QUEUED=50)
    client = app.test_client()
    for _ in range(40):
        assert client.get("/async/gated").status_code == 202
    gate.wait_entered(3)
    pool = app.extensions["task_engine"].backend.pool
    assert len(pool.workers) == 3
    assert all(worker.is_alive() for worker in pool.workers)
