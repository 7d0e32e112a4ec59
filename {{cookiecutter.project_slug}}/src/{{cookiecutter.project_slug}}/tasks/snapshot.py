"""Copies of a request and of a response that outlive the HTTP exchange.

A task must never touch the live request: once the ``202`` is sent, the server
reuses or closes its input stream (a task that read it then would get an
empty or half body). And a poll must never hand out the same response object
twice: ``after_request`` functions would pile headers onto it, and a streamed
body would be empty from the second poll on.
"""

import io
import json
import sys
from typing import Protocol

from flask import Response

# Environ entries worth keeping besides the CGI and HTTP ones (all strings).
_WSGI_KEYS = ("wsgi.version", "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once")
# Entries the snapshot replaces: the body is read already, so its length is known.
_DROPPED_KEYS = ("CONTENT_LENGTH", "HTTP_TRANSFER_ENCODING")


class RequestSnapshot:
    """The WSGI environ of a request, with its body read into memory."""

    __slots__ = ("environ", "body")

    def __init__(self, environ, body):
        self.environ = environ
        self.body = body

    @classmethod
    def capture(cls, request):
        """Copy ``request`` now, reading its whole body."""
        body = request.get_data(cache=True)
        live = request.environ
        environ = {
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

    def environ_json(self):
        """The environ as JSON text, ASCII only, for a store outside this process."""
        environ = {key: value for key, value in self.environ.items() if key != "wsgi.version"}
        return json.dumps(environ)

    @classmethod
    def from_environ_json(cls, text, body):
        """The snapshot that ``environ_json`` and its ``body`` were made from."""
        environ = json.loads(text)
        environ["wsgi.version"] = (1, 0)
        return cls(environ, body)

    def to_environ(self):
        """A fresh environ that replays the request, body included."""
        environ = dict(self.environ)
        environ["wsgi.input"] = io.BytesIO(self.body)
        environ["wsgi.errors"] = sys.stderr
        return environ


class HeadCache(Protocol):
    """Hands out one shared copy of equal (status, headers) pairs."""

    def share(self, head: tuple) -> tuple: ...


class ResponseSnapshot:
    """Status, headers and body bytes of a finished response."""

    __slots__ = ("head", "body")

    def __init__(self, head, body):
        self.head = head  # (status line, headers), maybe shared through a HeadCache
        self.body = body

    @classmethod
    def capture(cls, response, task_status, shared_heads=None):
        """Read ``response`` whole (a streamed body too) and close it.

        ``Task-Status`` joins its headers now, once, rather than on each poll.
        """
        try:
            response.direct_passthrough = False
            body = response.get_data()
            head = (response.status, (*response.headers.items(), ("Task-Status", task_status)))
            if shared_heads is not None:
                head = shared_heads.share(head)
            return cls(head, body)
        finally:
            response.close()

    def to_response(self):
        """A new response object, equal to the captured one.

        The body goes in as an iterator, not bytes, so that the headers stay
        exactly as captured: Werkzeug would add a Content-Length to bytes,
        which a streamed answer never had.
        """
        status, headers = self.head
        return Response(iter((self.body,)), status=status, headers=list(headers))
