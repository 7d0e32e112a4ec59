"""SIGTERM to the web processes: they exit as fast as a plain Flask app and touch no task."""

from helpers import wait_for


def test_idle_web_processes_stop_at_once_on_sigterm(gunicorn, redis_url):
    server = gunicorn(FLASK_TASK_REDIS_URL=redis_url, WEB_CONCURRENCY="2")
    took = server.terminate()
    log = server.log.read_text()
    assert server.process.returncode == 0, log
    assert "SIGKILL" not in log
    assert took < 10, log


def test_sigterm_to_the_web_leaves_running_tasks_to_their_worker(
    gunicorn, redis_url, app, gate, poll_done
):
    server = gunicorn(FLASK_TASK_REDIS_URL=redis_url, WEB_CONCURRENCY="2")
    # The test app shares the Redis and runs the worker, so the gate holds the task.
    client = app.test_client()
    location = client.get("/async/held").headers["Location"]
    gate.wait_entered()
    assert server.get(location)[1]["Task-Status"] == "running"
    server.terminate()
    assert server.process.returncode == 0
    gate.open()
    wait_for(lambda: client.get(location).status_code == 200, what="the task to finish")
