"""GET /metrics: what tasks did, in the Prometheus text format, to the bearer of METRICS_TOKEN."""

import pytest
from helpers import wait_for
from prometheus_client.parser import text_string_to_metric_families


def read_metrics(client, **headers):
    """The samples /metrics answers: ``{(name, frozenset of labels): value}``."""
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.mimetype == "text/plain"
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.get_data(as_text=True))
        for sample in family.samples
    }


def sample(figures, name, **labels):
    return figures.get((name, frozenset(labels.items())), 0)


def test_the_metrics_count_what_tasks_did(make_app, gate, poll_done):
    app = make_app(TASK_MAX_WORKERS=1, TASK_MAX_QUEUED=2)
    client = app.test_client()
    for _ in range(3):
        poll_done(client, client.get("/async/echo/done").headers["Location"])
    for _ in range(2):
        poll_done(client, client.get("/async/crash").headers["Location"])
    held = client.get("/async/gated").headers["Location"]
    gate.wait_entered()
    waiting = [client.get("/async/echo/waiting").headers["Location"] for _ in range(2)]
    assert client.get("/async/echo/refused").status_code == 503

    def waited():
        figures = read_metrics(client)
        return figures if sample(figures, "async_api_oldest_queued_seconds") > 0 else None

    now = wait_for(waited, what="the oldest waiting task to have waited")
    assert sample(now, "async_api_tasks_queued") == 2
    assert sample(now, "async_api_tasks_running") == 1
    for location in waiting:
        assert client.delete(location).status_code == 200
    gate.open()
    poll_done(client, held)

    figures = read_metrics(client)
    submitted = "async_api_tasks_submitted_total"
    assert sample(figures, submitted, endpoint="async_echo") == 5
    assert sample(figures, submitted, endpoint="async_crash") == 2
    assert sample(figures, submitted, endpoint="async_gated") == 1
    finished = "async_api_tasks_finished_total"
    assert sample(figures, finished, endpoint="async_echo", status="succeeded") == 3
    assert sample(figures, finished, endpoint="async_echo", status="cancelled") == 2
    assert sample(figures, finished, endpoint="async_crash", status="failed") == 2
    assert sample(figures, finished, endpoint="async_gated", status="succeeded") == 1
    assert sample(figures, "async_api_tasks_refused_total", reason="busy") == 1
    # Every task left the queue once; every task that started ran once.
    for endpoint, left_queue, ran in [
        ("async_echo", 5, 3),
        ("async_crash", 2, 2),
        ("async_gated", 1, 1),
    ]:
        for histogram, count in [("queued", left_queue), ("run", ran)]:
            name = f"async_api_task_{histogram}_seconds"
            assert sample(figures, f"{name}_count", endpoint=endpoint) == count
            assert sample(figures, f"{name}_bucket", endpoint=endpoint, le="+Inf") == count
            assert sample(figures, f"{name}_bucket", endpoint=endpoint, le="3600.0") == count
    assert sample(figures, "async_api_task_run_seconds_sum", endpoint="async_gated") > 0
    assert sample(figures, "async_api_tasks_queued") == 0
    assert sample(figures, "async_api_tasks_running") == 0
    assert sample(figures, "async_api_oldest_queued_seconds") == 0


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", "Basic s3cret", "Bearer", "Bearer s3cret2", "s3cret"]
)
def test_with_a_token_set_the_metrics_need_it(make_app, authorization):
    client = make_app(METRICS_TOKEN="s3cret").test_client()
    headers = {"Authorization": authorization} if authorization else {}
    refused = client.get("/metrics", headers=headers)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert refused.mimetype == "application/problem+json"
    assert refused.get_json()["status"] == 401
    assert "async_api" not in refused.get_data(as_text=True)


def test_the_bearer_of_the_token_reads_the_metrics(make_app):
    client = make_app(METRICS_TOKEN="s3cret").test_client()
    figures = read_metrics(client, Authorization="bearer s3cret")  # the scheme in any case
    assert ("async_api_tasks_queued", frozenset()) in figures


def test_a_token_of_digits_from_the_environment_stays_text(monkeypatch, make_app):
    monkeypatch.setenv("FLASK_METRICS_TOKEN", "0123")
    client = make_app().test_client()
    assert client.get("/metrics", headers={"Authorization": "Bearer 0123"}).status_code == 200


def test_the_metrics_start_no_task_and_tell_nothing_of_any(make_app, held_tasks, poll_done):
    app = make_app()
    client = app.test_client()
    submitted = client.get("/async/echo/secret-name", headers={"Authorization": "Bearer alice"})
    poll_done(client, submitted.headers["Location"], headers={"Authorization": "Bearer alice"})
    for method in ("GET", "HEAD"):
        assert client.open("/metrics", method=method).status_code == 200
    assert held_tasks(app) == 1
    text = client.get("/metrics").get_data(as_text=True)
    for secret in ("secret-name", "alice", submitted.get_json()["id"]):
        assert secret not in text


def test_prometheus_asking_for_openmetrics_gets_it(make_app):
    client = make_app().test_client()
    answer = client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert answer.mimetype == "application/openmetrics-text"
    assert answer.get_data(as_text=True).endswith("# EOF\n")
