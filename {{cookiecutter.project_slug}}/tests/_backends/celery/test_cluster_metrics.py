"""The metrics of a deployment: kept in Redis, the same from every web process, lasting."""

from helpers import wait_for
from test_metrics import read_metrics, sample
from test_prometheus import TOKEN, run_to_end


def test_every_web_process_answers_the_same_figures_even_after_a_restart(
    make_app, web_app, poll_done
):
    first = make_app()
    client = first.test_client()
    for path in ("/async/echo/a", "/async/echo/b", "/async/crash"):
        poll_done(client, client.get(path).headers["Location"])
    figures = read_metrics(client)
    assert sample(figures, "async_api_tasks_submitted_total", endpoint="async_echo") == 2
    assert read_metrics(web_app().test_client()) == figures
    first.extensions["task_engine"].shutdown()  # the web process stops
    assert read_metrics(web_app().test_client()) == figures


def test_a_task_whose_worker_was_lost_counts_as_lost(web_app, caplog):
    app = web_app(TASK_LEASE=0.05)
    client = app.test_client()
    task_id = client.get("/nap/60").get_json()["id"]  # no worker runs here
    backend = app.extensions["task_engine"].backend
    backend.store.start(task_id, 0.05)  # a worker took it, and vanished
    wait_for(lambda: backend.cleaner.run_pass() == 1, what="the reaper to fail the task")
    assert f"1 tasks failed: their worker stopped: {task_id}" in caplog.text
    ended = [record for record in caplog.records if record.getMessage().startswith("Task ")]
    assert [(record.task_id, record.levelname) for record in ended] == [(task_id, "INFO")]
    assert f"Task {task_id} (nap) failed:" in ended[0].getMessage()
    figures = read_metrics(client)
    assert sample(figures, "async_api_tasks_lost_total", endpoint="nap") == 1
    finished = "async_api_tasks_finished_total"
    assert sample(figures, finished, endpoint="nap", status="failed") == 1
    assert sample(figures, "async_api_task_run_seconds_count", endpoint="nap") == 1
    assert sample(figures, "async_api_tasks_running") == 0


def test_workers_alive_are_counted_idle_or_not(make_app, task_runner):
    client = make_app().test_client()  # its worker has run no task
    assert sample(read_metrics(client), "async_api_workers") == 1
    task_runner.stop()
    assert sample(read_metrics(client), "async_api_workers") == 0


def test_the_metrics_say_when_redis_is_unreachable(web_app):
    client = web_app(TASK_REDIS_URL="redis://127.0.0.1:1/0").test_client()
    answer = client.get("/metrics")
    assert answer.status_code == 503
    assert answer.mimetype == "application/problem+json"
    assert "Retry-After" in answer.headers


def test_prometheus_reads_the_same_figures_from_two_web_servers(
    gunicorn, served_env, served_workers, prometheus
):
    served_workers()
    servers = [
        gunicorn("served_app:app", **served_env, WEB_CONCURRENCY="1", FLASK_METRICS_TOKEN=TOKEN)
        for _ in range(2)
    ]
    scraper = prometheus([server.port for server in servers], TOKEN)
    assert [run_to_end(servers[0], "/nap/0"), run_to_end(servers[1], "/nap/0")] == [200, 200]
    assert run_to_end(servers[1], "/fail") == 500
    each = [(("instance", f"127.0.0.1:{server.port}"),) for server in servers]
    for expression, count in [
        ('async_api_tasks_finished_total{status="succeeded"}', 2),
        ('async_api_tasks_finished_total{status="failed"}', 1),
        ("async_api_task_run_seconds_count", 3),
    ]:
        scraper.settles(f"sum by (instance) ({expression})", dict.fromkeys(each, count))
