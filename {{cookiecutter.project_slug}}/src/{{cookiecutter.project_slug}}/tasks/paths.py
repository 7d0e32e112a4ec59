"""Request paths as routes must see them: without ``.`` and ``..`` segments.

Werkzeug routes ``PATH_INFO`` as the server gives it, and servers leave dot
segments in (gunicorn decodes ``/%2e/`` to ``/./`` too). ``/./status/x`` would
then miss the status rules and reach a catch-all route, which starts a task,
though every URL under ``/status`` is the status resource's.

Servers also decode ``%2F`` in ``PATH_INFO``, where it can no longer be told
from a ``/``: ``/status/..%2Fx`` is one segment under ``/status`` as sent,
but ``/status/../x`` once decoded. A path sent with one has its dot segments
resolved as it was sent (``RAW_URI``, or ``REQUEST_URI``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


def remove_dot_segments(path: str) -> str:
    """``path`` with its ``.`` and ``..`` segments resolved (RFC 3986, section 5.2.4).

    ``..`` above the root stays at the root; a path that ended in a dot
    segment keeps its trailing slash: ``/a/b/..`` is ``/a/``.
    """
    head, *segments = path.split("/")
    kept: list[str] = []
    for segment in segments:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    if segments and segments[-1] in (".", ".."):
        kept.append("")
    return "/".join([head, *kept])


_ENCODED_DOT = re.compile("%2e", re.IGNORECASE)


def resolved_path(environ: WSGIEnvironment, path: str) -> str:
    """``PATH_INFO`` (``path``) with its dot segments resolved, as the client sent them."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
    sent = raw.split("?", 1)[0]
    if "%2f" not in sent.lower():
        return remove_dot_segments(path)
    script_name = environ.get("SCRIPT_NAME", "")
    if unquote_to_bytes(sent).decode("latin-1") != script_name + path:
        return remove_dot_segments(path)  # not the path the server decoded: as before
    # "%2e" is ".": the same unreserved character (RFC 3986, section 6.2.2.2).
    resolved = unquote_to_bytes(remove_dot_segments(_ENCODED_DOT.sub(".", sent)))
    full = resolved.decode("latin-1")
    if not full.startswith(script_name):  # the dots went above the mount point
        return remove_dot_segments(path)
    return full[len(script_name) :] or "/"


class DotSegmentsRemoved:
    """WSGI middleware: the app sees ``PATH_INFO`` with its dot segments resolved."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        # Every dot segment of a path starting with "/" follows a "/": one
        # substring search leaves all other requests as they came.
        if path.startswith("/") and "/." in path:
            environ["PATH_INFO"] = resolved_path(environ, path)
        return self.app(environ, start_response)
