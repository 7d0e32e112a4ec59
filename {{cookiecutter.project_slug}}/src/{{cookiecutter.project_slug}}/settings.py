"""Settings: their defaults, and the checks that stop the app on a bad value.

Each key can be set from the environment with Flask's prefix convention
(``FLASK_TASK_RETENTION=30``) or by the mapping given to ``create_app``.
"""

import math
{%- if cookiecutter.task_backend == "celery" %}
from urllib.parse import urlsplit
{%- endif %}

DEFAULTS = {
    # Seconds a finished task stays retrievable.
    "TASK_RETENTION": {{ cookiecutter.task_retention_seconds | int }},
    # Seconds between the cleaner's passes.
    "TASK_CLEANUP_INTERVAL": {{ cookiecutter.cleanup_interval_seconds | int }},
{%- if cookiecutter.task_backend == "celery" %}
    # Tasks each Celery worker runs at once (its default concurrency).
    "TASK_MAX_WORKERS": 8,
    # Tasks waiting for a worker, across every process; a submit beyond that
    # answers 503. Each waiting task holds its request body in Redis.
    "TASK_MAX_QUEUED": 64,
    # Seconds a client is told to wait between polls.
    "TASK_RETRY_AFTER": 1,
    # Redis for task state and, unless CELERY names another, the broker.
    "TASK_REDIS_URL": "redis://localhost:6379/0",
    # Seconds a worker holds a running task without renewing its lease; a task
    # whose worker stopped ends failed within this plus TASK_CLEANUP_INTERVAL.
    "TASK_LEASE": 30,
    # Celery's own settings (lower case, as Celery names them), applied over
    # the ones the service derives from the keys above.
    "CELERY": {},
{%- else %}
    # Tasks running at once.
    "TASK_MAX_WORKERS": 8,
    # Tasks waiting for a worker; a submit beyond that answers 503.
    "TASK_MAX_QUEUED": 64,
    # Seconds a client is told to wait between polls.
    "TASK_RETRY_AFTER": 1,
    # Seconds running tasks get to finish when the service stops.
    "TASK_SHUTDOWN_TIMEOUT": 30,
{%- endif %}
    # Largest request body, in bytes (Flask's own key): every queued task holds
    # its request's body until it runs. Larger bodies answer 413.
    "MAX_CONTENT_LENGTH": 1024 * 1024,
}


# Settings whose environment value is taken as text, never parsed as JSON.
{%- if cookiecutter.task_backend == "threads" and cookiecutter.rest_layer != "flask-smorest" %}
TEXT_KEYS = ("SECRET_KEY",)
{%- else %}
TEXT_KEYS = (
    "SECRET_KEY",
{%- if cookiecutter.task_backend == "celery" %}
    "TASK_REDIS_URL",
{%- endif %}
{%- if cookiecutter.rest_layer == "flask-smorest" %}
    # The OpenAPI document's: "1.0" is a version, not a number.
    "API_TITLE",
    "API_VERSION",
    "OPENAPI_VERSION",
    "OPENAPI_URL_PREFIX",
    "OPENAPI_JSON_PATH",
    "OPENAPI_SWAGGER_UI_PATH",
    "OPENAPI_SWAGGER_UI_URL",
{%- endif %}
)
{%- endif %}


class ConfigError(ValueError):
    """A setting has a value the service cannot run with."""


def _whole(minimum):
    def check(value):
        return type(value) is int and value >= minimum

    return check


def _optional(check):
    def check_unless_none(value):
        return value is None or check(value)

    return check_unless_none


def _positive(value):
    return type(value) in (int, float) and math.isfinite(value) and value > 0
{%- if cookiecutter.task_backend == "celery" %}


def _text(value):
    return isinstance(value, (str, bytes)) and len(value) > 0


def _redis_url(value):
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        return False
    return parts.scheme in ("redis", "rediss", "unix")
{%- endif %}


RULES = {
    "TASK_RETENTION": (_positive, "a number > 0"),
    "TASK_CLEANUP_INTERVAL": (_positive, "a number > 0"),
    "TASK_MAX_WORKERS": (_whole(1), "a whole number >= 1"),
{%- if cookiecutter.task_backend == "celery" %}
    # A task waits in the queue until a worker takes it: 0 would refuse all.
    "TASK_MAX_QUEUED": (_whole(1), "a whole number >= 1"),
    "TASK_RETRY_AFTER": (_whole(1), "a whole number >= 1"),
    "TASK_REDIS_URL": (_redis_url, "a redis://, rediss:// or unix:// URL"),
    "TASK_LEASE": (_positive, "a number > 0"),
    "CELERY": (lambda value: isinstance(value, dict), "a mapping of Celery settings"),
    # Every process must hash task owners with the same key.
    "SECRET_KEY": (_text, "set (FLASK_SECRET_KEY), the same in every process"),
{%- else %}
    "TASK_MAX_QUEUED": (_whole(0), "a whole number >= 0"),
    "TASK_RETRY_AFTER": (_whole(1), "a whole number >= 1"),
    "TASK_SHUTDOWN_TIMEOUT": (_positive, "a number > 0"),
{%- endif %}
    "MAX_CONTENT_LENGTH": (_optional(_whole(1)), "a whole number of bytes >= 1, or null"),
}


def check(config):
    """Raise ``ConfigError`` naming the first key whose value breaks its rule."""
    for key, (valid, rule) in RULES.items():
        value = config.get(key)
        if not valid(value):
            raise ConfigError(f"{key} must be {rule}, got {value!r}")
    secret_key = config.get("SECRET_KEY")
    if secret_key is not None and not isinstance(secret_key, (str, bytes)):
        raise ConfigError(f"SECRET_KEY must be a string, got {secret_key!r}")
