"""H10: many threads submitting, polling and cleaning at once lose nothing."""

import threading

from helpers import FakeClock

RETENTION = {{ cookiecutter.task_retention_seconds | int }}
SUBMITTERS = 8
TASKS_EACH = 25


def submit_and_poll_while_cleaning(app, poll_done, prefix):
    """``SUBMITTERS`` threads each submit and poll ``TASKS_EACH`` tasks while
    another runs cleaner passes back to back; returns the ids and any failures."""
    engine = app.extensions["async_api"]
    stop_cleaning = threading.Event()
    failures, ids = [], []
    ids_lock = threading.Lock()

    def clean():
        while not stop_cleaning.is_set():
            engine.cleaner.run_pass()

    def submit_and_poll(n):
        client = app.test_client()
        try:
            for i in range(TASKS_EACH):
                name = f"{prefix}-{n}-{i}"
                response = client.get(f"/async/echo/{name}")
                assert response.status_code == 202, response.status_code
                done = poll_done(client, response.headers["Location"])
                assert done.status_code == 200
                assert done.get_json()["view_args"] == {"name": name}
                with ids_lock:
                    ids.append(response.get_json()["id"])
        except Exception as error:  # reported by the test, from its own thread
            failures.append(error)

    cleaner = threading.Thread(target=clean)
    cleaner.start()
    threads = [threading.Thread(target=submit_and_poll, args=(n,)) for n in range(SUBMITTERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    stop_cleaning.set()
    cleaner.join(10)
    return ids, failures


def test_concurrent_submits_polls_and_cleaner_passes_lose_no_task(app, engine, poll_done):
    ids, failures = submit_and_poll_while_cleaning(app, poll_done, "task")
    assert not failures, failures[:3]
    assert len(set(ids)) == SUBMITTERS * TASKS_EACH
    client = app.test_client()
    assert all(client.get(f"/status/{task_id}").status_code == 200 for task_id in ids)
    assert len(engine.store) == SUBMITTERS * TASKS_EACH


def test_cleaner_removals_race_with_submits_and_polls(make_app, poll_done):
    app = make_app(TASK_MAX_QUEUED=300)
    client, engine = app.test_client(), app.extensions["async_api"]
    engine.clock = clock = FakeClock()
    old = [client.get(f"/async/echo/old-{i}").headers["Location"] for i in range(200)]
    for location in old:
        poll_done(client, location)
    clock.advance(RETENTION + 1)  # every old task has expired; new ones have not

    ids, failures = submit_and_poll_while_cleaning(app, poll_done, "new")

    assert not failures, failures[:3]
    assert all(client.get(location).status_code == 404 for location in old)
    assert len(engine.store) == len(ids) == SUBMITTERS * TASKS_EACH
