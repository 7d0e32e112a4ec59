"""Many threads submitting, polling and cleaning at once lose nothing."""

from helpers import submit_and_poll_while_cleaning

SUBMITTERS = 8
TASKS_EACH = 25


def test_concurrent_submits_polls_and_cleaner_passes_lose_no_task(app, poll_done, held_tasks):
    ids, failures = submit_and_poll_while_cleaning(app, poll_done, "task", SUBMITTERS, TASKS_EACH)
    assert not failures, failures[:3]
    assert len(set(ids)) == SUBMITTERS * TASKS_EACH
    client = app.test_client()
    assert all(client.get(f"/status/{task_id}").status_code == 200 for task_id in ids)
    assert held_tasks(app) == SUBMITTERS * TASKS_EACH
