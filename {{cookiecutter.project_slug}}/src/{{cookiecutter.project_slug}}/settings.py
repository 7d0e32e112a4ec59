"""Settings: their defaults, and the checks that stop the app on a bad value.

Each key can be set from the environment with Flask's prefix convention
(``FLASK_TASK_RETENTION=30``) or by the mapping given to ``create_app``. The
settings every project has are here; the task backend adds its own, in
``tasks/backends/<backend>/settings.py``.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any, NamedTuple

from flask import Config

from .logs import LOG_FORMATS

Check = Callable[[object], bool]


class Rule(NamedTuple):
    """What a setting's value must be: ``check(value)``, and that said in words."""

    check: Check
    words: str


class Settings(NamedTuple):
    """Settings of one part of the service."""

    defaults: Mapping[str, object]
    rules: Mapping[str, Rule]
    # Keys whose environment value is text as typed, never parsed as JSON.
    text_keys: frozenset[str] = frozenset()


class ConfigError(ValueError):
    """A setting has a value the service cannot run with."""


def whole(minimum: int) -> Check:
    """A whole number ``>= minimum`` (``True`` is no number)."""

    def check(value: object) -> bool:
        return type(value) is int and value >= minimum

    return check


def positive(value: object) -> bool:
    """A finite number > 0 (``True`` is no number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and value > 0


def text(value: object) -> bool:
    """Text (or bytes) that is not empty."""
    return isinstance(value, str | bytes) and len(value) > 0


def token(value: object) -> bool:
    """Text fit for an ``Authorization: Bearer`` header: visible ASCII, no spaces."""
    return isinstance(value, str) and re.fullmatch(r"[!-~]+", value) is not None


def one_of(*choices: str) -> Check:
    """One of ``choices``, exactly."""

    def check(value: object) -> bool:
        return isinstance(value, str) and value in choices

    return check


def optional(check: Check) -> Check:
    """``check``, or None."""

    def check_unless_none(value: object) -> bool:
        return value is None or check(value)

    return check_unless_none


def _gunicorn_threads() -> int:
    """The threads of each gunicorn worker, as ``gunicorn.conf.py`` reads them (8 by default)."""
    try:
        return max(1, int(os.environ.get("GUNICORN_THREADS", "8")))
    except ValueError:
        return 8  # gunicorn.conf.py refuses to start, naming it


COMMON = Settings(
    defaults={
        # Seconds a finished task stays retrievable.
        "TASK_RETENTION": {{ cookiecutter.task_retention_seconds | int }},
        # Seconds between the cleaner's passes.
        "TASK_CLEANUP_INTERVAL": {{ cookiecutter.cleanup_interval_seconds | int }},
        # Seconds a client is told to wait between polls.
        "TASK_RETRY_AFTER": 1,
        # Largest request body, in bytes (Flask's own key): every queued task
        # holds its request's body until it runs. Larger bodies answer 413.
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        # Largest answer body a task keeps, in bytes: every finished task holds
        # its answer for TASK_RETENTION. A larger answer fails the task.
        "TASK_MAX_ANSWER_BYTES": 16 * 1024 * 1024,
        # The token /metrics asks for (Authorization: Bearer <token>); None: anyone may read.
        "METRICS_TOKEN": None,
        # How log lines are written: "text", or "json" (one object per line).
        "LOG_FORMAT": "text",
        # Longest a request with "Prefer: wait=N" is held for its task, in seconds.
        "TASK_MAX_WAIT": 20,
        # Requests held at once in a web process; past that one is answered at
        # once. Half of gunicorn's threads, so that held requests never take them all.
        "TASK_MAX_WAITING": max(1, _gunicorn_threads() // 2),
        # How many reverse proxies stand in front of the service and set
        # X-Forwarded-For/-Proto/-Host/-Port/-Prefix: the app believes that
        # many and no more. 0 (no proxy) believes none, since a client could
        # send them itself.
        "PROXY_COUNT": 0,
    },
    rules={
        "TASK_RETENTION": Rule(positive, "a number > 0"),
        "TASK_CLEANUP_INTERVAL": Rule(positive, "a number > 0"),
        "TASK_RETRY_AFTER": Rule(whole(1), "a whole number >= 1"),
        "MAX_CONTENT_LENGTH": Rule(optional(whole(1)), "a whole number of bytes >= 1, or null"),
        "TASK_MAX_ANSWER_BYTES": Rule(whole(1), "a whole number of bytes >= 1"),
        "SECRET_KEY": Rule(optional(lambda value: isinstance(value, str | bytes)), "a string"),
        "METRICS_TOKEN": Rule(optional(token), "visible ASCII characters with no spaces, or unset"),
        "LOG_FORMAT": Rule(one_of(*LOG_FORMATS), " or ".join(map(repr, LOG_FORMATS))),
        "TASK_MAX_WAIT": Rule(whole(1), "a whole number of seconds >= 1"),
        "TASK_MAX_WAITING": Rule(whole(1), "a whole number >= 1"),
        "PROXY_COUNT": Rule(whole(0), "a whole number >= 0"),
    },
    # Flask's own keys that are only ever text, too: FLASK_SESSION_COOKIE_NAME=123
    # must not become a number that Werkzeug cannot write into a cookie.
    text_keys=frozenset(
        {
            "SECRET_KEY",
            "METRICS_TOKEN",
            "LOG_FORMAT",
            "SERVER_NAME",
            "APPLICATION_ROOT",
            "PREFERRED_URL_SCHEME",
            "SESSION_COOKIE_NAME",
            "SESSION_COOKIE_PATH",
        }
    ),
)


def load(
    config: Config, parts: Iterable[Settings], overrides: Mapping[str, object] | None = None
) -> None:
    """Fill Flask's ``config``: defaults, then ``FLASK_*`` variables, then ``overrides``.

    Raises ``ConfigError`` naming the first key whose value breaks its rule.
    """
    parts = list(parts)
    for part in parts:
        config.from_mapping(part.defaults)
    config.from_prefixed_env()
    keep_environment_text(config, frozenset().union(*(part.text_keys for part in parts)))
    if overrides:
        config.from_mapping(overrides)
    rules: dict[str, Rule] = {}
    for part in parts:
        rules.update(part.rules)
    check(config, rules)


def keep_environment_text(config: MutableMapping[str, Any], keys: Iterable[str]) -> None:
    """Give ``keys`` set from the environment the text as typed.

    ``from_prefixed_env`` reads values as JSON when it can: a secret of
    digits would become a number, a version "1.0" a float. A value set
    otherwise (by ``create_app``'s mapping, say) is left alone.
    """
    for key in keys:
        typed = os.environ.get(f"FLASK_{key}")
        if typed is None:
            continue
        try:
            parsed = json.loads(typed)
        except ValueError:
            parsed = typed
        if key in config and config[key] == parsed:
            config[key] = typed


def check(config: Mapping[str, Any], rules: Mapping[str, Rule]) -> None:
    """Raise ``ConfigError`` naming the first key whose value breaks its rule."""
    for key, rule in rules.items():
        value = config.get(key)
        if not rule.check(value):
            raise ConfigError(f"{key} must be {rule.words}, got {value!r}")
