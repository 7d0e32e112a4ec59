"""Settings of the threads backend."""

import pytest

from {{ cookiecutter.project_slug }} import create_app
from {{ cookiecutter.project_slug }}.settings import ConfigError


def test_zero_queue_is_allowed(make_app):
    assert make_app(TASK_MAX_QUEUED=0).config["TASK_MAX_QUEUED"] == 0


@pytest.mark.parametrize("value", [None, 0, "later"])
def test_a_bad_shutdown_timeout_names_the_key(value):
    with pytest.raises(ConfigError, match="^TASK_SHUTDOWN_TIMEOUT must be"):
        create_app({"SECRET_KEY": "x", "TASK_SHUTDOWN_TIMEOUT": value})


def test_missing_secret_key_warns_and_uses_a_random_one(monkeypatch, caplog):
    monkeypatch.delenv("FLASK_SECRET_KEY", raising=False)
    app = create_app()
    try:
        assert app.secret_key
        assert "SECRET_KEY is not set" in caplog.text
    finally:
        app.extensions["task_engine"].shutdown()
