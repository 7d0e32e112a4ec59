"""Progress: a task reports progress through current_task; polls show it at once."""

import pytest

from {{ cookiecutter.project_slug }} import async_api, current_task


def test_progress_shows_in_the_monitor_at_once(client, gate, poll_done):
    submitted = client.get("/async/progress")
    assert submitted.get_json()["progress"] is None
    gate.wait_entered()
    polled = client.get(submitted.headers["Location"])
    assert polled.status_code == 202
    assert polled.get_json()["progress"] == {"percent": 40, "message": "reading"}
    assert polled.get_json()["updated_at"] >= submitted.get_json()["updated_at"]
    gate.open()
    assert poll_done(client, submitted.headers["Location"]).get_data(as_text=True) == "done"


def test_report_outside_a_task_does_nothing(app, gate):
    gate.open()
    client = app.test_client()
    # The same view, called synchronously, reports into the void and answers.
    assert client.get("/sync/progress").get_data(as_text=True) == "done"
    assert current_task.report(50, "ignored") is None
    assert current_task.cancelled is False
    assert current_task.id is None


@pytest.mark.parametrize("percent", [-1, 100.5, float("nan"), "50", None, True])
def test_bad_percent_is_a_value_error_outside_a_task(percent):
    with pytest.raises(ValueError, match="percent"):
        current_task.report(percent)


def test_bad_percent_is_a_value_error_inside_a_task(make_app, poll_done):
    app = make_app()
    raised = []

    @app.get("/over-the-top")
    @async_api
    def over_the_top():
        try:
            current_task.report(101)
        except ValueError as error:
            raised.append(error)
        current_task.report(100, "all done")
        return "fine"

    client = app.test_client()
    location = client.get("/over-the-top").headers["Location"]
    assert poll_done(client, location).status_code == 200
    assert len(raised) == 1


def test_report_accepts_the_bounds_inside_a_task(make_app, gate, poll_done):
    app = make_app()

    @app.get("/bounds")
    @async_api
    def bounds():
        current_task.report(0, "starting")
        gate.hold()
        current_task.report(100)
        return "done"

    client = app.test_client()
    key = {"Idempotency-Key": "bounds"}
    location = client.get("/bounds", headers=key).headers["Location"]
    gate.wait_entered()
    assert client.get(location).get_json()["progress"] == {"percent": 0, "message": "starting"}
    gate.open()
    assert poll_done(client, location).status_code == 200
    # Once finished, a repeated submit answers the task's monitor, not its answer.
    final = client.get("/bounds", headers=key).get_json()
    assert final["progress"] == {"percent": 100, "message": None}
