"""A finished task's answer is conditional on the poll, as the view's would be synchronously.

A view that answers with ``send_file`` gives an ``ETag``, a ``Last-Modified``
and ``Accept-Ranges: bytes``: the poll honours ``If-None-Match``,
``If-Modified-Since`` and ``Range`` the way Flask would have.
"""

import pytest
from helpers import FILE_BYTES, FILE_ETAG
from werkzeug.http import http_date

CONDITIONS = {
    "unconditional": {},
    "etag matches": {"If-None-Match": f'"{FILE_ETAG}"'},
    "etag differs": {"If-None-Match": '"another"'},
    "not modified since": {"If-Modified-Since": http_date(1_800_000_000)},
    "modified since": {"If-Modified-Since": http_date(1_600_000_000)},
    "first 100 bytes": {"Range": "bytes=0-99"},
    "last 10 bytes": {"Range": "bytes=-10"},
    "range if unchanged": {"Range": "bytes=10-19", "If-Range": f'"{FILE_ETAG}"'},
    "range if changed": {"Range": "bytes=10-19", "If-Range": '"another"'},
}


@pytest.fixture
def download(client, poll_done):
    """The status URL of a finished download task."""
    location = client.get("/async/download").headers["Location"]
    assert poll_done(client, location).status_code == 200
    return location


def answer(response):
    """What a client reads of a conditional answer (its Date is the time it was made)."""
    headers = ("Content-Length", "Content-Range", "ETag", "Last-Modified", "Accept-Ranges")
    return (
        response.status_code,
        {name: response.headers.get(name) for name in headers},
        response.get_data(),
    )


@pytest.mark.parametrize("headers", CONDITIONS.values(), ids=CONDITIONS.keys())
def test_a_poll_answers_conditions_as_the_view_would(client, download, headers):
    polled = client.get(download, headers=headers)
    assert answer(polled) == answer(client.get("/sync/download", headers=headers))
    assert polled.headers["Task-Status"] == "succeeded"


def test_a_matching_etag_answers_304_with_no_body(client, download):
    polled = client.get(download, headers={"If-None-Match": f'"{FILE_ETAG}"'})
    assert polled.status_code == 304
    assert polled.get_data() == b""


def test_a_range_answers_206_with_those_bytes(client, download):
    polled = client.get(download, headers={"Range": "bytes=100-199"})
    assert polled.status_code == 206
    assert polled.headers["Content-Range"] == f"bytes 100-199/{len(FILE_BYTES)}"
    assert polled.get_data() == FILE_BYTES[100:200]


def test_an_unsatisfiable_range_is_a_416_problem_about_the_task(client, download):
    polled = client.get(download, headers={"Range": "bytes=5000-"})
    synchronous = client.get("/sync/download", headers={"Range": "bytes=5000-"})
    assert polled.status_code == synchronous.status_code == 416
    assert polled.content_type == "application/problem+json"
    assert polled.headers["Content-Range"] == synchronous.headers["Content-Range"]
    assert polled.headers["Task-Status"] == "succeeded"


def test_an_answer_without_validators_ignores_conditions(client, poll_done):
    location = client.get("/async/created/widget").headers["Location"]
    plain = poll_done(client, location)
    asked = client.get(location, headers={"If-None-Match": "*", "Range": "bytes=0-1"})
    assert asked.status_code == plain.status_code == 201
    assert asked.get_data() == plain.get_data()
    assert "Date" not in asked.headers
