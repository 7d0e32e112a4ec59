"""With plain Flask: a MethodView method becomes a task and answers as it would synchronously."""

import pytest
from flask import Blueprint, abort
from flask.views import MethodView
from helpers import comparable

from {{ cookiecutter.project_slug }} import async_api


class Widget(MethodView):
    def get(self, name):
        if name == "missing":
            abort(404)
        return {"name": name}, 201, {"X-Custom": "yes"}


class AsyncWidget(Widget):
    get = async_api(Widget.get)


@pytest.fixture
def client(make_app):
    app = make_app()
    blueprint = Blueprint("widgets", __name__)
    blueprint.add_url_rule("/sync/widgets/<name>", view_func=Widget.as_view("sync"))
    blueprint.add_url_rule("/async/widgets/<name>", view_func=AsyncWidget.as_view("async"))
    app.register_blueprint(blueprint)
    return app.test_client()


@pytest.mark.parametrize("name", ["gear", "missing"])
def test_method_view_answers_as_it_would_synchronously(client, poll_done, name):
    submitted = client.get(f"/async/widgets/{name}")
    assert submitted.status_code == 202
    done = poll_done(client, submitted.headers["Location"])
    assert comparable(done) == comparable(client.get(f"/sync/widgets/{name}"))


def test_errors_in_views_are_problems(client, poll_done):
    done = poll_done(client, client.get("/async/widgets/missing").headers["Location"])
    assert done.status_code == 404
    assert done.content_type == "application/problem+json"
    assert done.headers["Task-Status"] == "failed"
