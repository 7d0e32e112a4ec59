"""A real Prometheus scrapes the served service and reads what its tasks did."""

from helpers import submit_and_finish, wait_for

TOKEN = "scrape-token"
# One task runs at once and two wait: a burst past that is refused.
SETTINGS = {"FLASK_TASK_MAX_WORKERS": "1", "FLASK_TASK_MAX_QUEUED": "2"}


def run_to_end(server, path):
    """Submit ``path`` and poll it until it is done; the status code it ends with."""
    return submit_and_finish(server, path)[1]


def task_status(server, location):
    return server.get(location)[1].get("Task-Status")


def test_prometheus_reads_the_counts_the_tasks_made(
    gunicorn, served_env, served_workers, prometheus
):
    served_workers(**SETTINGS)
    server = gunicorn("served_app:app", **served_env, **SETTINGS, FLASK_METRICS_TOKEN=TOKEN)
    scraper = prometheus([server.port], TOKEN)
    scraper.settles("sum(up)", {(): 1})

    assert [run_to_end(server, "/nap/0") for _ in range(20)] == [200] * 20
    assert [run_to_end(server, "/fail") for _ in range(5)] == [500] * 5
    # A burst past the queue: one task runs, two wait, the rest are refused.
    first = server.get("/nap/60")[1]["Location"]
    wait_for(
        lambda: task_status(server, first) == "running",
        timeout=20,
        what="the first long task to start",
    )
    burst = [server.get("/nap/60") for _ in range(5)]
    assert [status for status, _, _ in burst] == [202, 202, 503, 503, 503]
    scraper.settles("sum(async_api_tasks_queued)", {(): 2})
    scraper.settles("sum(async_api_tasks_running)", {(): 1})
    waiting = [headers["Location"] for _, headers, _ in burst[:2]]
    # The waiting ones first: a worker freed by the running one would take them.
    assert [server.call("DELETE", location)[0] for location in [*waiting, first]] == [200, 200, 202]
    wait_for(
        lambda: task_status(server, first) == "cancelled",
        timeout=20,
        what="the running task to end cancelled",
    )

    for expression, count in [
        ('sum(async_api_tasks_finished_total{status="succeeded"})', 20),
        ('sum(async_api_tasks_finished_total{status="failed"})', 5),
        ('sum(async_api_tasks_finished_total{status="cancelled"})', 3),
        ('sum(async_api_tasks_refused_total{reason="busy"})', 3),
        ("sum(async_api_tasks_submitted_total)", 28),
        # Every task left the queue once; the 20 + 5 + 1 that started ran.
        ("sum(async_api_task_queued_seconds_count)", 28),
        ('sum(async_api_task_queued_seconds_bucket{le="+Inf"})', 28),
        ("sum(async_api_task_run_seconds_count)", 26),
        ('sum(async_api_task_run_seconds_bucket{endpoint="fail",le="+Inf"})', 5),
        ('sum(async_api_task_run_seconds_bucket{endpoint="nap",le="+Inf"})', 21),
        ("sum(async_api_tasks_queued) + sum(async_api_tasks_running)", 0),
    ]:
        scraper.settles(expression, {(): count})
