"""The app factory."""

from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from . import logs, settings
from .tasks import TaskEngine
from .tasks.backends import SETTINGS as BACKEND_SETTINGS
from .tasks.problems import http_error_handler


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Make the app: defaults, then ``FLASK_*`` environment variables, then ``config``."""
    app = Flask(__package__)
    configure(app, config)
    logs.init_app(app)
    trust_proxies(app, app.config["PROXY_COUNT"])
    app.register_error_handler(HTTPException, http_error_handler)
    TaskEngine(app)
    # Imported here, once the package is whole, so that routes.py (and modules
    # it imports) can use ``from {{ cookiecutter.project_slug }} import async_api``.
    from . import routes

    routes.init_app(app)
    from . import example  # the example; README.md says how to remove it

    example.init_app(app)
    return app


def configure(app: Flask, config: Mapping[str, Any] | None = None) -> None:
    """Load and check the settings; raise ``settings.ConfigError`` naming a bad key."""
    settings.load(app.config, [settings.COMMON, BACKEND_SETTINGS], config)


def trust_proxies(app: Flask, count: int) -> None:
    """Read the client's address, scheme, host, port and prefix from ``count`` proxies' headers.

    Behind nginx (say) the server sees nginx as the client and its plain
    HTTP: the ``X-Forwarded-*`` headers say what the client asked for, and
    the status URLs, ``request.url`` and ``request.remote_addr`` follow them.
    Only the last ``count`` values are believed: a client can send these
    headers too.
    """
    if count > 0:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=count, x_proto=count, x_host=count, x_port=count, x_prefix=count
        )
