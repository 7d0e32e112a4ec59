"""Idempotency: a repeated Idempotency-Key answers the task it already started."""

import threading

import pytest
from flask import request

KEY = {"Idempotency-Key": "order-17"}


def test_repeated_key_answers_the_existing_task(app, client, gate, held_tasks):
    first = client.post("/async/echo/a", headers=KEY, json={"n": 1})
    again = client.post("/async/echo/a", headers=KEY, json={"n": 1})
    assert first.status_code == again.status_code == 202
    assert again.headers["Location"] == first.headers["Location"]
    assert again.get_json()["id"] == first.get_json()["id"]
    assert held_tasks(app) == 1


def test_repeat_after_the_task_finished_still_answers_it(app, client, poll_done, held_tasks):
    first = client.get("/async/echo/a", headers=KEY)
    poll_done(client, first.headers["Location"])
    again = client.get("/async/echo/a", headers=KEY)
    assert again.status_code == 202
    assert again.headers["Location"] == first.headers["Location"]
    assert again.get_json()["status"] == "succeeded"
    assert held_tasks(app) == 1


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/async/echo/b", {"n": 1}),  # another path
        ("POST", "/async/echo/a?page=2", {"n": 1}),  # another query
        ("POST", "/async/echo/a", {"n": 2}),  # another body
        ("PUT", "/async/echo/a", {"n": 1}),  # another method
    ],
)
def test_same_key_for_a_different_request_is_a_409(app, client, held_tasks, method, path, body):
    client.post("/async/echo/a", headers=KEY, json={"n": 1})
    conflict = client.open(path, method=method, headers=KEY, json=body)
    assert conflict.status_code == 409
    assert conflict.content_type == "application/problem+json"
    assert conflict.get_json()["status"] == 409
    assert held_tasks(app) == 1


def test_keys_of_different_owners_never_collide(app, client, held_tasks):
    alice = client.get("/async/echo/a", headers={**KEY, "Authorization": "Bearer alice"})
    bob = client.get("/async/echo/a", headers={**KEY, "Authorization": "Bearer bob"})
    anonymous = client.get("/async/echo/a", headers=KEY)
    locations = {r.headers["Location"] for r in (alice, bob, anonymous)}
    assert len(locations) == 3
    assert held_tasks(app) == 3


def test_a_forgotten_task_frees_its_key(client, poll_done):
    first = client.get("/async/echo/a", headers=KEY).headers["Location"]
    poll_done(client, first)
    client.delete(first)
    assert client.get("/async/echo/a", headers=KEY).headers["Location"] != first


def test_repeated_key_under_concurrency_gives_exactly_one_task(app, gate, held_tasks):
    submitters = 8
    start = threading.Barrier(submitters)
    locations = []

    def submit():
        client = app.test_client()
        start.wait(5)
        response = client.post("/async/gated", headers=KEY)
        locations.append((response.status_code, response.headers.get("Location")))

    threads = [threading.Thread(target=submit) for _ in range(submitters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(locations) == submitters
    assert {status for status, _ in locations} == {202}
    assert len({location for _, location in locations}) == 1
    assert held_tasks(app) == 1
    gate.open()


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_an_empty_or_overlong_key_is_a_400(app, client, key, held_tasks):
    response = client.get("/async/echo/a", headers={"Idempotency-Key": key})
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    assert "Idempotency-Key" in response.get_json()["detail"]
    assert held_tasks(app) == 0


def test_a_different_form_body_under_the_same_key_is_a_409(make_app):
    app = make_app()

    @app.before_request
    def read_form():
        request.form.get("csrf_token")

    client = app.test_client()
    assert client.post("/async/echo/a", headers=KEY, data={"n": "1"}).status_code == 202
    assert client.post("/async/echo/a", headers=KEY, data={"n": "2"}).status_code == 409
