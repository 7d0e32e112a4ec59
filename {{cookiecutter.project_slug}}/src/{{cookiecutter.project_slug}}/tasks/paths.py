"""Request paths as routes must see them: without ``.`` and ``..`` segments.

Werkzeug routes ``PATH_INFO`` as the server gives it, and servers leave dot
segments in (gunicorn decodes ``/%2e/`` to ``/./`` too). ``/./status/x`` would
then miss the status rules and reach a catch-all route, which starts a task,
though every URL under ``/status`` is the status resource's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

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


class DotSegmentsRemoved:
    """WSGI middleware: the app sees ``PATH_INFO`` with its dot segments resolved."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        # Every dot segment of a path starting with "/" follows a "/": one
        # substring search leaves all other requests as they came.
        if path.startswith("/") and "/." in path:
            environ["PATH_INFO"] = remove_dot_segments(path)
        return self.app(environ, start_response)
