"""TASK_MAX_ANSWER_BYTES: a task keeps no answer larger than the limit; it fails instead."""

import pytest
from flask import send_file

from {{ cookiecutter.project_slug }} import async_api

LIMIT = 64 * 1024


@pytest.fixture
def limited(make_app):
    """An app that keeps answers of at most LIMIT bytes, with views answering ``size`` bytes."""
    app = make_app(TASK_MAX_ANSWER_BYTES=LIMIT)
    app.streamed_parts = []

    @app.get("/async/bytes/<int:size>")
    @async_api
    def sized(size):
        return "x" * size

    @app.get("/async/stream/<int:size>")
    @async_api
    def streamed(size):
        def parts():
            for _ in range(size // 1024):
                app.streamed_parts.append(1024)
                yield b"x" * 1024

        return app.response_class(parts(), mimetype="application/octet-stream")

    @app.get("/async/file")
    @async_api
    def file():
        return send_file(app.config["BIG_FILE"], mimetype="application/octet-stream")

    return app


def assert_too_large(answer):
    assert answer.status_code == 500
    assert answer.content_type == "application/problem+json"
    assert answer.headers["Task-Status"] == "failed"
    assert "TASK_MAX_ANSWER_BYTES" in answer.get_json()["detail"]


def test_an_answer_at_the_limit_is_kept(limited, poll_done):
    client = limited.test_client()
    location = client.get(f"/async/bytes/{LIMIT}").headers["Location"]
    answer = poll_done(client, location)
    assert answer.status_code == 200
    assert len(answer.get_data()) == LIMIT


def test_a_larger_answer_fails_the_task_naming_the_setting(limited, poll_done):
    client = limited.test_client()
    location = client.get(f"/async/bytes/{LIMIT + 1}").headers["Location"]
    assert_too_large(poll_done(client, location))
    assert_too_large(client.get(location))  # and stays so


def test_a_streamed_answer_is_counted_as_it_is_read(limited, poll_done):
    client = limited.test_client()
    location = client.get(f"/async/stream/{LIMIT * 20}").headers["Location"]
    assert_too_large(poll_done(client, location))
    # Reading stopped at the first part past the limit, not at the end.
    assert sum(limited.streamed_parts) == LIMIT + 1024


def test_a_file_answer_over_the_limit_fails(limited, poll_done, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (LIMIT * 4))
    limited.config["BIG_FILE"] = big
    client = limited.test_client()
    assert_too_large(poll_done(client, client.get("/async/file").headers["Location"]))
