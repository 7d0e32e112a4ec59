"""What a web process reads out of Redis: nothing of a task that is not the requester's."""

from test_ownership import ALICE, BOB, large_answer_task

from {{ cookiecutter.project_slug }} import async_api


def redis_bytes_sent(app):
    """How many bytes Redis has sent to its clients so far."""
    redis = app.extensions["task_engine"].backend.redis
    return redis.info("stats")["total_net_output_bytes"]


def test_another_owners_poll_reads_nothing_of_the_task(make_app, poll_done):
    app = make_app()
    location = large_answer_task(app, poll_done, size=5 * 1024 * 1024)
    client = app.test_client()
    before = redis_bytes_sent(app)
    for _ in range(20):
        assert client.get(location, headers=BOB).status_code == 404
        assert client.delete(location, headers=BOB).status_code == 404
    # 20 reads of the answer would be 100 MB; the owner checks are a few bytes each.
    assert redis_bytes_sent(app) - before < 256 * 1024
    assert client.delete(location, headers=ALICE).status_code == 204


def test_an_answer_over_the_limit_leaves_nothing_in_redis(make_app, poll_done, stored_task):
    app = make_app(TASK_MAX_ANSWER_BYTES=1024)

    @app.get("/async/over")
    @async_api
    def over():
        return "x" * 4096

    client = app.test_client()
    location = client.get("/async/over").headers["Location"]
    assert poll_done(client, location).status_code == 500
    stored = stored_task(app, location.rsplit("/", 1)[1])
    assert stored["status"] == b"failed"
    assert "answer" not in stored
    assert "head" not in stored
