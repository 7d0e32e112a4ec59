"""Copies of a request and of a response that outlive the HTTP exchange.

A task must never touch the live request: once the ``202`` is sent, the server
reuses or closes its input stream (a task that read it then would get an
empty or half body). And a poll must never hand out the same response object
twice: ``after_request`` functions would pile headers onto it, and a streamed
body would be empty from the second poll on.
"""

from __future__ import annotations

import io
import sys
from typing import Any

from flask import Request, Response
from werkzeug.wrappers import Response as WerkzeugResponse

# Environ entries worth keeping besides the CGI and HTTP ones (all strings).
_WSGI_KEYS = ("wsgi.version", "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once")
# Entries the snapshot replaces: the body is read already, so its length is known.
_DROPPED_KEYS = ("CONTENT_LENGTH", "HTTP_TRANSFER_ENCODING")

# (status line, headers) of a response.
Head = tuple[str, tuple[tuple[str, str], ...]]


class RequestSnapshot:
    """The WSGI environ of a request, with its body read into memory."""

    __slots__ = ("environ", "body")

    def __init__(self, environ: dict[str, Any], body: bytes) -> None:
        self.environ = environ
        self.body = body

    @classmethod
    def capture(cls, request: Request) -> RequestSnapshot:
        """Copy ``request`` now, reading its whole body."""
        body = request.get_data(cache=True)
        live = request.environ
        environ: dict[str, Any] = {
            key: value
            for key, value in live.items()
            if type(value) is str and key not in _DROPPED_KEYS
        }
        for key in _WSGI_KEYS:
            if key in live:
                environ[key] = live[key]
        if body:
            environ["CONTENT_LENGTH"] = str(len(body))
        return cls(environ, body)

    def to_environ(self) -> dict[str, Any]:
        """A fresh environ that replays the request, body included."""
        environ = dict(self.environ)
        environ["wsgi.input"] = io.BytesIO(self.body)
        environ["wsgi.errors"] = sys.stderr
        return environ


class AnswerTooLarge(Exception):
    """A view's answer has more body bytes than a task may keep."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer's body is larger than {limit} bytes")
        self.limit = limit


class ResponseSnapshot:
    """Status, headers and body bytes of a finished response."""

    __slots__ = ("head", "body")

    def __init__(self, head: Head, body: bytes) -> None:
        self.head = head
        self.body = body

    @classmethod
    def capture(
        cls, response: WerkzeugResponse, task_status: str, max_bytes: int
    ) -> ResponseSnapshot:
        """Read ``response`` whole (a streamed body too) and close it.

        ``Task-Status`` joins its headers now, once, rather than on each poll.
        Raises ``AnswerTooLarge`` once the body passes ``max_bytes``.
        """
        try:
            response.direct_passthrough = False
            body = _read_body(response, max_bytes)
            headers = (*response.headers.items(), ("Task-Status", task_status))
            return cls((response.status, headers), body)
        finally:
            response.close()

    def to_response(self, request: Request) -> Response:
        """A new response object, equal to the captured one, made conditional on ``request``.

        The body goes in as an iterator, not bytes, so that the headers stay
        exactly as captured: Werkzeug would add a Content-Length to bytes,
        which a streamed answer never had.
        """
        status, headers = self.head
        response = Response(iter((self.body,)), status=status, headers=list(headers))
        if response.status_code == 200 and _is_conditional(response):
            _make_conditional(response, request, len(self.body))
        return response


def _read_body(response: WerkzeugResponse, max_bytes: int) -> bytes:
    """The body of ``response``, at most ``max_bytes`` of it, else ``AnswerTooLarge``.

    A streamed body (a generator, a file) is counted as it is read, so that
    no more than the limit is ever held.
    """
    if response.is_sequence:
        body = response.get_data()
        if len(body) > max_bytes:
            raise AnswerTooLarge(max_bytes)
        return body
    parts, size = [], 0
    for part in response.iter_encoded():
        size += len(part)
        if size > max_bytes:
            raise AnswerTooLarge(max_bytes)
        parts.append(part)
    return b"".join(parts)


def _is_conditional(response: Response) -> bool:
    """Whether the answer says how to ask for it conditionally (as ``send_file``'s does)."""
    headers = response.headers
    return "ETag" in headers or "Last-Modified" in headers or "Accept-Ranges" in headers


def _make_conditional(response: Response, request: Request, length: int) -> None:
    """Answer ``If-None-Match``, ``If-Modified-Since`` and ``Range`` as the view would have.

    Synchronously, ``send_file`` (or the view) makes its answer conditional
    on the request it serves; a poll is that request now. Ranges are served
    only where the answer offers them (``Accept-Ranges: bytes``).
    """
    had_date = "Date" in response.headers
    accept_ranges = response.headers.get("Accept-Ranges") == "bytes"
    response.make_conditional(
        request, accept_ranges=accept_ranges, complete_length=length if accept_ranges else None
    )
    if not had_date:
        # Werkzeug stamps the time; the answer stays as the view made it.
        del response.headers["Date"]
