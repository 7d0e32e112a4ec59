"""``async def`` views become tasks too, run as Flask runs them (``flask[async]``)."""

import asyncio

import pytest
from flask import Blueprint
from flask.views import MethodView

from {{ cookiecutter.project_slug }} import async_api, current_task


async def report(name: str) -> tuple[dict[str, object], int]:
    await asyncio.sleep(0)  # a real await: the view must run on an event loop
    current_task.report(12.5, "awaited")
    return {"name": name, "task": current_task.id is not None}, 201


class Reports(MethodView):
    async def get(self, name: str) -> tuple[dict[str, object], int]:
        return await report(name)


class AsyncReports(Reports):
    get = async_api(Reports.get)


@pytest.fixture
def client(make_app):
    app = make_app()
    blueprint = Blueprint("async_views", __name__)
    blueprint.add_url_rule("/sync/coroutine/<name>", "sync_coroutine", report)
    blueprint.add_url_rule("/async/coroutine/<name>", "async_coroutine", async_api(report))
    blueprint.add_url_rule("/sync/method/<name>", view_func=Reports.as_view("sync_method"))
    blueprint.add_url_rule("/async/method/<name>", view_func=AsyncReports.as_view("async_method"))
    app.register_blueprint(blueprint)
    return app.test_client()


@pytest.mark.parametrize("kind", ["coroutine", "method"])
def test_an_async_view_answers_as_a_task(client, poll_done, kind):
    submitted = client.get(f"/async/{kind}/q3")
    assert submitted.status_code == 202
    done = poll_done(client, submitted.headers["Location"])
    assert done.status_code == 201
    assert done.get_json() == {"name": "q3", "task": True}
    assert done.headers["Task-Status"] == "succeeded"
    synchronous = client.get(f"/sync/{kind}/q3")
    assert synchronous.get_json() == {"name": "q3", "task": False}
    assert synchronous.status_code == 201
    assert synchronous.content_type == done.content_type


def test_an_async_view_reports_progress_and_sees_a_cancel(client, poll_done, gate):
    app = client.application

    @app.get("/async/progressing")
    @async_api
    async def progressing() -> str:
        current_task.report(12.5, "awaited")
        await asyncio.to_thread(gate.hold)
        return "cancelled" if current_task.cancelled else "done"

    location = client.get("/async/progressing").headers["Location"]
    gate.wait_entered()
    assert client.get(location).get_json()["progress"] == {"percent": 12.5, "message": "awaited"}
    assert client.delete(location).status_code == 202
    gate.open()
    assert poll_done(client, location).headers["Task-Status"] == "cancelled"
