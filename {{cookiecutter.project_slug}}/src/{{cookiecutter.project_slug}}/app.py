"""The app factory."""

import os
{%- if cookiecutter.task_backend == "threads" %}
import secrets
{%- endif %}

from flask import Flask
from werkzeug.exceptions import HTTPException

from . import settings
from .tasks import AsyncTasks
from .tasks.problems import http_error_handler


def create_app(config=None):
    """Make the app: defaults, then ``FLASK_*`` environment variables, then ``config``."""
    app = Flask(__package__)
    configure(app, config)
{%- if cookiecutter.task_backend == "threads" %}
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secrets.token_bytes(32)
        app.logger.warning(
            "SECRET_KEY is not set (FLASK_SECRET_KEY): using a random key for this process."
            " Task owners and sessions will not be recognised after a restart."
        )
{%- endif %}
    app.register_error_handler(HTTPException, http_error_handler)
    AsyncTasks(app)
    # Imported here, once the package is whole, so that routes.py (and modules
    # it imports) can use ``from {{ cookiecutter.project_slug }} import async_api``.
    from . import routes

    routes.init_app(app)
    from . import example  # the example; README.md says how to remove it

    example.init_app(app)
    return app


def configure(app, config=None):
    """Load and check the settings; raise ``settings.ConfigError`` naming a bad key."""
    app.config.from_mapping(settings.DEFAULTS)
    app.config.from_prefixed_env()
    # from_prefixed_env reads values as JSON when it can: a secret of digits
    # would become a number. Text settings keep the text as typed.
    for key in settings.TEXT_KEYS:
        if f"FLASK_{key}" in os.environ:
            app.config[key] = os.environ[f"FLASK_{key}"]
    if config:
        app.config.from_mapping(config)
    settings.check(app.config)
