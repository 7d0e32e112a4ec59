"""Shutdown: stopping the service, in process and under gunicorn with SIGTERM."""

import threading

from helpers import wait_for


def test_shutdown_lets_running_tasks_finish_and_fails_queued_ones(make_app, gate, poll_done):
    app = make_app(TASK_MAX_WORKERS=1)
    client, engine = app.test_client(), app.extensions["task_engine"]
    running = client.get("/async/gated").headers["Location"]
    queued = client.get("/async/gated").headers["Location"]
    gate.wait_entered()

    stopping = threading.Thread(target=engine.shutdown, kwargs={"timeout": 10})
    stopping.start()
    wait_for(lambda: client.get(queued).headers["Task-Status"] == "failed", what="queued to fail")
    assert client.get("/async/echo/late").status_code == 503
    gate.open()
    stopping.join(10)
    assert not stopping.is_alive()

    assert poll_done(client, running).get_data(as_text=True) == "released"
    stopped = client.get(queued)
    assert stopped.status_code == 503
    assert stopped.headers["Task-Status"] == "failed"
    assert stopped.content_type == "application/problem+json"
    assert "stopped" in stopped.get_json()["detail"]
    assert gate.entries == 1


def test_shutdown_gives_up_on_a_task_that_outlives_its_timeout(make_app, gate, caplog):
    app = make_app()
    client, engine = app.test_client(), app.extensions["task_engine"]
    location = client.get("/async/gated").headers["Location"]
    gate.wait_entered()
    engine.shutdown(timeout=0.05)
    task_id = location.rsplit("/", 1)[1]
    assert f"Task {task_id} was still running when the service stopped" in caplog.text


GRACEFUL = "20"


def test_idle_service_stops_at_once_on_sigterm(gunicorn):
    server = gunicorn(FLASK_TASK_SHUTDOWN_TIMEOUT=GRACEFUL)
    took = server.terminate()
    log = server.log.read_text()
    assert server.process.returncode == 0, log
    assert "SIGKILL" not in log
    # Far inside the graceful timeout: nothing of ours held the process open.
    assert took < float(GRACEFUL) / 2, log


def test_sigterm_lets_the_running_task_finish_and_fails_the_queued_one(gunicorn):
    server = gunicorn(
        "served_app:app", FLASK_TASK_SHUTDOWN_TIMEOUT=GRACEFUL, FLASK_TASK_MAX_WORKERS="1"
    )
    status, running, _ = server.get("/nap/1")
    assert status == 202
    status, queued, _ = server.get("/nap/1")
    assert status == 202
    wait_for(
        lambda: server.get(running["Location"])[1].get("Task-Status") == "running",
        what="the first task to run",
    )
    took = server.terminate()
    log = server.log.read_text()
    assert server.process.returncode == 0, log
    queued_id = queued["Location"].rsplit("/", 1)[1]
    running_id = running["Location"].rsplit("/", 1)[1]
    assert f"Task {queued_id} failed: the service stopped before it started" in log
    assert f"Task {running_id} (nap) succeeded" in log  # it finished
    assert "still running when the service stopped" not in log
    assert "SIGKILL" not in log
    assert took < float(GRACEFUL), log
