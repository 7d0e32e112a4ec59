"""Settings: their defaults, and the checks that stop the app on a bad value.

Each key can be set from the environment with Flask's prefix convention
(``FLASK_TASK_RETENTION=30``) or by the mapping given to ``create_app``.
"""

import math

DEFAULTS = {
    # Seconds a finished task stays retrievable.
    "TASK_RETENTION": {{ cookiecutter.task_retention_seconds | int }},
    # Seconds between cleaner passes over finished tasks.
    "TASK_CLEANUP_INTERVAL": {{ cookiecutter.cleanup_interval_seconds | int }},
    # Tasks running at once.
    "TASK_MAX_WORKERS": 8,
    # Tasks waiting for a worker; a submit beyond that answers 503.
    "TASK_MAX_QUEUED": 64,
    # Seconds a client is told to wait between polls.
    "TASK_RETRY_AFTER": 1,
    # Seconds running tasks get to finish when the service stops.
    "TASK_SHUTDOWN_TIMEOUT": 30,
    # Seconds the example task works.
    "EXAMPLE_TASK_SECONDS": 10,
    # Largest request body, in bytes (Flask's own key): every queued task holds
    # its request's body in memory until it runs. Larger bodies answer 413.
    "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
}


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


RULES = {
    "TASK_RETENTION": (_positive, "a number > 0"),
    "TASK_CLEANUP_INTERVAL": (_positive, "a number > 0"),
    "TASK_MAX_WORKERS": (_whole(1), "a whole number >= 1"),
    "TASK_MAX_QUEUED": (_whole(0), "a whole number >= 0"),
    "TASK_RETRY_AFTER": (_whole(1), "a whole number >= 1"),
    "TASK_SHUTDOWN_TIMEOUT": (_positive, "a number > 0"),
    "EXAMPLE_TASK_SECONDS": (_positive, "a number > 0"),
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
