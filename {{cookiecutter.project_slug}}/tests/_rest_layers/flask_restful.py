"""With flask-restful: a Resource method becomes a task and answers as it would synchronously."""

import inspect

import pytest
from flask import Blueprint, Flask
from flask_restful import Api, Resource, abort, fields, marshal_with
from helpers import comparable

from {{ cookiecutter.project_slug }} import async_api
from {{ cookiecutter.project_slug }}.routes import ProblemApi


class Widget(Resource):
    def get(self, name):
        if name == "missing":
            abort(404, message="no such widget")
        return {"name": name}, 201, {"X-Custom": "yes"}


class AsyncWidget(Widget):
    get = async_api(Widget.get)


@pytest.fixture
def client(make_app):
    app = make_app()
    blueprint = Blueprint("widgets", __name__)
    api = ProblemApi(blueprint)
    api.add_resource(Widget, "/sync/widgets/<name>")
    api.add_resource(AsyncWidget, "/async/widgets/<name>")
    app.register_blueprint(blueprint)
    return app.test_client()


@pytest.mark.parametrize("name", ["gear", "missing"])
def test_resource_method_answers_as_it_would_synchronously(client, poll_done, name):
    submitted = client.get(f"/async/widgets/{name}")
    assert submitted.status_code == 202
    done = poll_done(client, submitted.headers["Location"])
    assert comparable(done) == comparable(client.get(f"/sync/widgets/{name}"))


def test_errors_in_resources_are_problems(client, poll_done):
    done = poll_done(client, client.get("/async/widgets/missing").headers["Location"])
    assert done.status_code == 404
    assert done.content_type == "application/problem+json"
    assert done.headers["Task-Status"] == "failed"


class Gadget(Resource):
    """On an ``Api`` of the test's own: flask-restful's, not the project's."""

    @async_api
    def get(self, name):
        return {"name": name}, 201


class MarshalledGadget(Resource):
    """A decorator above ``@async_api`` shapes the task's answer, not the 202."""

    @marshal_with({"name": fields.String, "size": fields.Integer(default=1)})
    @async_api
    def get(self, name):
        return {"name": name, "secret": "not marshalled"}


@pytest.fixture
def stock_client(make_app):
    # As in production: under TESTING, flask-restful passes errors on to Flask.
    app = make_app(TESTING=False)
    blueprint = Blueprint("gadgets", __name__)
    api = Api(blueprint)
    api.add_resource(Gadget, "/async/gadgets/<name>")
    api.add_resource(MarshalledGadget, "/async/marshalled/<name>")
    app.register_blueprint(blueprint)
    return app.test_client()


def test_a_resource_on_a_stock_api_answers_as_a_task(stock_client, poll_done):
    submitted = stock_client.get("/async/gadgets/gear")
    assert submitted.status_code == 202
    assert submitted.get_json()["status"] in {"queued", "running", "succeeded"}
    done = poll_done(stock_client, submitted.headers["Location"])
    assert (done.status_code, done.get_json()) == (201, {"name": "gear"})


# Flask 3.2 passes the request's context to its error handling; a stock
# flask-restful Api's error_router takes no context and fails on every error
# (abort(404) too). The project's ProblemApi leaves errors to Flask.
@pytest.mark.skipif(
    "ctx" in inspect.signature(Flask.handle_user_exception).parameters,
    reason="flask-restful's own Api cannot handle errors on Flask 3.2",
)
def test_a_decorator_above_async_api_on_a_stock_api_shapes_the_answer(stock_client, poll_done):
    submitted = stock_client.get("/async/marshalled/gear")
    assert submitted.status_code == 202
    assert submitted.headers["Location"].startswith("/status/")
    done = poll_done(stock_client, submitted.headers["Location"])
    assert (done.status_code, done.get_json()) == (200, {"name": "gear", "size": 1})
