"""SIGTERM to the web processes: they exit as fast as a plain Flask app and touch no task."""

import re

from helpers import wait_for


def every_process_answered(server, processes):
    """Whether ``processes`` distinct web processes have answered /health (the log names them)."""
    server.get("/health")
    return len(set(re.findall(r"pid=<(\d+)>", server.log.read_text()))) >= processes


def test_idle_web_processes_stop_at_once_on_sigterm(gunicorn, redis_url):
    server = gunicorn(FLASK_TASK_REDIS_URL=redis_url, WEB_CONCURRENCY="2")
    # A process still booting when SIGTERM comes is gunicorn's own slow case,
    # a plain Flask app's too: measure processes that are up.
    wait_for(lambda: every_process_answered(server, 2), timeout=20, what="both web processes")
    took = server.terminate()
    log = server.log.read_text()
    assert server.process.returncode == 0, log
    assert "SIGKILL" not in log
    assert took < 10, log


def test_sigterm_to_the_web_leaves_running_tasks_to_their_worker(
    gunicorn, redis_url, app, gate, poll_done
):
    server = gunicorn(FLASK_TASK_REDIS_URL=redis_url, WEB_CONCURRENCY="2")
    # As above: SIGTERM to processes that are up, not gunicorn's slow stop of
    # one still booting (its 30 s graceful timeout would outlast the gate).
    wait_for(lambda: every_process_answered(server, 2), timeout=20, what="both web processes")
    # The test app shares the Redis and runs the worker, so the gate holds the task.
    client = app.test_client()
    location = client.get("/async/gated").headers["Location"]
    gate.wait_entered()
    assert server.get(location)[1]["Task-Status"] == "running"
    took = server.terminate()
    log = server.log.read_text()
    assert server.process.returncode == 0, log
    assert took < 10, log
    gate.open()
    # A deadline, not a duration: a loaded CI machine may take the worker a while.
    wait_for(lambda: client.get(location).status_code == 200, timeout=30, what="the task to finish")
