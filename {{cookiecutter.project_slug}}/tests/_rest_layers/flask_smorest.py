"""With flask-smorest: a MethodView method under ``@blp.arguments`` and ``@blp.response``
becomes a task, answers as it would synchronously, and bad input never becomes a task."""

import asyncio

import marshmallow as ma
import pytest
from flask.views import MethodView
from flask_smorest import Blueprint, Page, abort
from helpers import comparable

from {{ cookiecutter.project_slug }} import async_api
from {{ cookiecutter.project_slug }}.openapi import api_of
from {{ cookiecutter.project_slug }}.schemas import WholeNumber

# Names of the tests' own, so as not to clash with a user's views and schemas.
blp = Blueprint("test_widgets", __name__)


class ProbeWidgetQuerySchema(ma.Schema):
    # A query string is text: "3" is a number here, "1.5" is not.
    size = ma.fields.Integer(load_default=1, validate=ma.validate.Range(1, 10))


class ProbeWidgetSchema(ma.Schema):
    name = ma.fields.String(required=True)
    size = ma.fields.Integer(required=True)


class ProbeOrderSchema(ma.Schema):
    # In JSON, 2.0 is a whole number and 2.5 is not, nor is "2".
    count = WholeNumber(required=True)


def widget(query, name):
    if name == "missing":
        abort(404, message="There is no such widget.")
    return {"name": name, "size": query["size"]}, 201, {"X-Custom": "yes"}


@blp.route("/sync/widgets/<name>")
class SyncWidget(MethodView):
    @blp.arguments(ProbeWidgetQuerySchema, location="query")
    @blp.response(201, ProbeWidgetSchema)
    def get(self, query, name):
        return widget(query, name)


@blp.route("/async/widgets/<name>")
class AsyncWidget(MethodView):
    @blp.arguments(ProbeWidgetQuerySchema, location="query")
    @blp.response(201, ProbeWidgetSchema)
    @async_api
    def get(self, query, name):
        return widget(query, name)

    @blp.arguments(ProbeOrderSchema)
    @blp.response(200, ProbeWidgetSchema)
    @async_api
    def post(self, order, name):
        return {"name": name, "size": order["count"]}


@blp.route("/async/items")
class AsyncItems(MethodView):
    """Decorators that shape a view's own answer apply to the task's answer."""

    @blp.etag
    @blp.response(200, ProbeWidgetSchema(many=True))
    @blp.paginate(Page)
    @async_api
    def get(self):
        return [{"name": f"item {number}", "size": number} for number in range(12)]


@blp.route("/async/awaited/<name>")
class AwaitedWidget(MethodView):
    """An ``async def`` method: its answer, not an unawaited coroutine, is serialised."""

    @blp.response(200, ProbeWidgetSchema)
    @async_api
    async def get(self, name):
        await asyncio.sleep(0)
        return {"name": name, "size": 4}


@blp.route("/sync/guarded")
class Guarded(MethodView):
    @blp.alt_response(401, response="UNAUTHORIZED")
    def get(self):
        abort(401, message="Log in first.", headers={"WWW-Authenticate": "Bearer"})


@pytest.fixture
def app(make_app):
    app = make_app()
    api_of(app).register_blueprint(blp)
    return app


@pytest.mark.parametrize("name", ["gear", "missing"])
def test_method_view_answers_as_it_would_synchronously(client, poll_done, name):
    submitted = client.get(f"/async/widgets/{name}?size=3")
    assert submitted.status_code == 202
    done = poll_done(client, submitted.headers["Location"])
    assert comparable(done) == comparable(client.get(f"/sync/widgets/{name}?size=3"))


def test_the_response_schema_shapes_the_tasks_answer(client, poll_done):
    done = poll_done(client, client.post("/async/widgets/gear", json={"count": 2}).location)
    assert done.status_code == 200
    assert done.get_json() == {"name": "gear", "size": 2}


def test_an_async_method_answers_its_serialised_value(client, poll_done):
    done = poll_done(client, client.get("/async/awaited/gear").location)
    assert (done.status_code, done.get_json()) == (200, {"name": "gear", "size": 4})
    assert done.headers["Task-Status"] == "succeeded"


def test_a_whole_number_may_be_written_with_a_fraction(client, poll_done):
    """What the document's integer admits: 2.0 is 2, as JSON Schema says."""
    done = poll_done(client, client.post("/async/widgets/gear", json={"count": 2.0}).location)
    assert done.get_json() == {"name": "gear", "size": 2}


def test_errors_in_views_are_problems_with_their_message(client, poll_done):
    done = poll_done(client, client.get("/async/widgets/missing").headers["Location"])
    assert done.status_code == 404
    assert done.content_type == "application/problem+json"
    assert done.headers["Task-Status"] == "failed"
    assert done.get_json()["detail"] == "There is no such widget."


@pytest.mark.parametrize(
    ("method", "url", "body", "wrong"),
    [
        ("get", "/async/widgets/gear?size=0", None, ("query", "size")),
        ("get", "/async/widgets/gear?size=1.5", None, ("query", "size")),
        ("post", "/async/widgets/gear", {}, ("json", "count")),
        ("post", "/async/widgets/gear", {"count": 2.5}, ("json", "count")),
        ("post", "/async/widgets/gear", {"count": "2"}, ("json", "count")),
    ],
)
def test_invalid_input_is_a_problem_and_no_task(app, client, held_tasks, method, url, body, wrong):
    answer = getattr(client, method)(url, json=body)
    assert answer.status_code == 422
    assert answer.content_type == "application/problem+json"
    location, field = wrong
    assert list(answer.get_json()["errors"]) == [location]
    assert list(answer.get_json()["errors"][location]) == [field]
    assert "Task-Status" not in answer.headers
    assert held_tasks(app) == 0


def test_a_method_not_allowed_keeps_its_allow_header(client):
    answer = client.put("/async/widgets/gear")
    assert answer.status_code == 405
    assert answer.content_type == "application/problem+json"
    assert set(answer.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}


def test_pagination_and_etags_shape_the_tasks_answer(client, poll_done):
    submitted = client.get("/async/items?page=2&page_size=5")
    assert submitted.status_code == 202
    done = poll_done(client, submitted.headers["Location"])
    assert done.status_code == 200
    assert [item["size"] for item in done.get_json()] == [5, 6, 7, 8, 9]
    assert '"total": 12' in done.headers["X-Pagination"]
    assert done.headers["ETag"]


def test_aborts_keep_their_message_and_headers(client):
    answer = client.get("/sync/guarded")
    assert answer.status_code == 401
    assert answer.content_type == "application/problem+json"
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert answer.get_json()["detail"] == "Log in first."


def test_async_api_above_the_arguments_stops_the_app(make_app):
    misordered = Blueprint("misordered", __name__)

    @misordered.route("/orders")
    class Orders(MethodView):
        @async_api
        @misordered.arguments(ProbeOrderSchema)
        def post(self, order):
            return order

    with pytest.raises(TypeError, match="put @async_api under @blp.arguments"):
        api_of(make_app()).register_blueprint(misordered)
