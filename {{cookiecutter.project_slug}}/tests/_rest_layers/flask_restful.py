"""With flask-restful: a Resource method becomes a task and answers as it would synchronously."""

import pytest
from flask import Blueprint
from flask_restful import Resource, abort
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
