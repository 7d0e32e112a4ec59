"""Owners: a task belongs to whoever submitted it; to anyone else it does not exist."""

import hashlib
import hmac
import statistics
import threading
import time

import pytest

from {{ cookiecutter.project_slug }} import async_api

ALICE = {"Authorization": "Bearer alice"}
BOB = {"Authorization": "Bearer bob"}


def test_another_owner_gets_the_same_404_as_an_unknown_id(client, gate):
    location = client.get("/async/gated", headers=ALICE).headers["Location"]
    unknown = client.get("/status/AAAAAAAAAAAAAAAAAAAAAA")
    for headers in (BOB, {}):
        refused = client.get(location, headers=headers)
        assert refused.status_code == 404
        assert refused.get_data() == unknown.get_data()
        assert dict(refused.headers) == dict(unknown.headers)
        assert client.delete(location, headers=headers).status_code == 404
    assert client.get(location, headers=ALICE).status_code == 202
    gate.open()


def test_the_owner_polls_and_cancels(client, poll_done):
    location = client.get("/async/echo/mine", headers=ALICE).headers["Location"]
    assert poll_done(client, location, headers=ALICE).status_code == 200
    assert client.delete(location, headers=BOB).status_code == 404
    assert client.delete(location, headers=ALICE).status_code == 204


def test_a_task_without_owner_is_anyones(client, poll_done):
    location = client.get("/async/echo/open").headers["Location"]
    assert poll_done(client, location, headers=BOB).status_code == 200
    assert client.delete(location, headers=ALICE).status_code == 204


def test_the_app_can_name_owners_itself(app, poll_done):
    engine = app.extensions["task_engine"]

    @engine.owner_loader
    def user_id(request):
        return request.headers.get("X-User")

    client = app.test_client()
    location = client.get("/async/echo/a", headers={"X-User": "7", **ALICE}).headers["Location"]
    # Fresh credentials, same user: still the owner.
    assert poll_done(client, location, headers={"X-User": "7", **BOB}).status_code == 200
    assert client.get(location, headers={"X-User": "8", **ALICE}).status_code == 404


def test_the_scheme_of_the_credentials_is_not_case_sensitive(client, gate):
    location = client.get("/async/gated", headers=ALICE).headers["Location"]
    assert client.get(location, headers={"Authorization": "bearer alice"}).status_code == 202
    assert client.get(location, headers={"Authorization": "BEARER alice"}).status_code == 202
    # The credentials themselves are compared exactly.
    assert client.get(location, headers={"Authorization": "Bearer Alice"}).status_code == 404
    gate.open()


def test_owner_is_kept_only_as_a_keyed_hash_and_the_request_is_dropped(app, poll_done, stored_task):
    client = app.test_client()
    submitted = client.get("/async/args/p/7", headers=ALICE)
    poll_done(client, submitted.headers["Location"], headers=ALICE)
    stored = stored_task(app, submitted.get_json()["id"])
    expected = hmac.new(b"test-secret", b"bearer alice", hashlib.sha256).digest()
    assert stored["owner"] == expected
    assert stored.get("request") is None
    assert not any("alice" in repr(value).lower() for value in stored.values())


@pytest.mark.parametrize("authorization", ["Bearer ", "Bearer", "bearer   ", " ", "\t"])
def test_a_scheme_without_credentials_is_no_owner(app, poll_done, stored_task, authorization):
    client = app.test_client()
    submitted = client.get("/async/echo/empty", headers={"Authorization": authorization})
    # Every client sending an empty token would otherwise share one owner.
    assert stored_task(app, submitted.get_json()["id"]).get("owner") is None
    assert poll_done(client, submitted.headers["Location"], headers=BOB).status_code == 200
    assert client.delete(submitted.headers["Location"], headers=ALICE).status_code == 204
    # A token still owns its task.
    owned = client.get("/async/echo/owned", headers=ALICE).headers["Location"]
    assert poll_done(client, owned, headers=ALICE).status_code == 200
    assert client.get(owned, headers={"Authorization": "Bearer "}).status_code == 404
    assert client.get(owned).status_code == 404


def test_two_owners_racing_on_one_id(client, gate):
    location = client.get("/async/gated", headers=ALICE).headers["Location"]
    gate.wait_entered()
    answers = {"alice": [], "bob": []}
    start = threading.Barrier(2)

    def poll(name, headers):
        own_client = client.application.test_client()
        start.wait(5)
        for _ in range(100):
            answers[name].append(own_client.get(location, headers=headers).status_code)

    threads = [
        threading.Thread(target=poll, args=("alice", ALICE)),
        threading.Thread(target=poll, args=("bob", BOB)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert set(answers["alice"]) == {202}
    assert set(answers["bob"]) == {404}
    gate.open()


def large_answer_task(app, poll_done, size=5 * 1024 * 1024):
    """A finished task of ALICE's whose answer is ``size`` bytes; its status URL."""

    @app.get("/async/large")
    @async_api
    def large():
        return "x" * size

    client = app.test_client()
    location = client.get("/async/large", headers=ALICE).headers["Location"]
    assert len(poll_done(client, location, headers=ALICE).get_data()) == size
    return location


def test_another_owners_poll_costs_what_an_unknown_ids_costs(make_app, poll_done):
    app = make_app()
    location = large_answer_task(app, poll_done)
    client = app.test_client()
    unknown = "/status/AAAAAAAAAAAAAAAAAAAAAA"
    timings = {location: [], unknown: []}
    for _ in range(300):  # alternating, so that both meet the same state of the machine
        for url, samples in timings.items():
            started = time.perf_counter()
            assert client.get(url, headers=BOB).status_code == 404
            samples.append(time.perf_counter() - started)
    others, unknowns = (statistics.median(samples) for samples in timings.values())
    # Reading the 5 MB answer first would cost several times an unknown id's poll.
    assert others < unknowns * 1.5, f"{others * 1e6:.0f} µs vs {unknowns * 1e6:.0f} µs"
