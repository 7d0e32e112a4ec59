"""Settings have defaults, come from the environment and from create_app."""

import sys

import pytest
from flask import Flask
from helpers import free_port, run_to_exit

from {{ cookiecutter.project_slug }} import create_app
from {{ cookiecutter.project_slug }}.settings import ConfigError


def test_defaults_are_the_baked_answers(monkeypatch):
    monkeypatch.delenv("FLASK_TASK_RETENTION", raising=False)
    app = create_app({"SECRET_KEY": "x"})
    try:
        assert isinstance(app, Flask)
        assert app.config["TASK_RETENTION"] == {{ cookiecutter.task_retention_seconds | int }}
        assert app.config["TASK_CLEANUP_INTERVAL"] == {{ cookiecutter.cleanup_interval_seconds | int }}
        assert app.config["TASK_RETRY_AFTER"] == 1
        assert app.config["TASK_MAX_WORKERS"] >= 1
        assert app.config["TASK_MAX_QUEUED"] >= 0
        assert app.config["TASK_MAX_ANSWER_BYTES"] == 16 * 1024 * 1024
        assert app.config["LOG_FORMAT"] == "text"
    finally:
        app.extensions["task_engine"].shutdown()


def test_environment_overrides_defaults(monkeypatch, make_app):
    monkeypatch.setenv("FLASK_TASK_RETENTION", "30")
    monkeypatch.setenv("FLASK_TASK_RETRY_AFTER", "3")
    app = make_app()
    assert app.config["TASK_RETENTION"] == 30
    assert app.config["TASK_RETRY_AFTER"] == 3


def test_create_app_mapping_wins_over_environment(monkeypatch, make_app):
    monkeypatch.setenv("FLASK_TASK_RETENTION", "30")
    app = make_app(TASK_RETENTION=7.5)
    assert app.config["TASK_RETENTION"] == 7.5


def test_retry_after_setting_reaches_clients(make_app):
    client = make_app(TASK_RETRY_AFTER=4).test_client()
    assert client.get("/async/echo/a").headers["Retry-After"] == "4"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("TASK_RETENTION", 0),
        ("TASK_RETENTION", -1),
        ("TASK_RETENTION", "soon"),
        ("TASK_CLEANUP_INTERVAL", 0),
        ("TASK_CLEANUP_INTERVAL", float("inf")),
        ("TASK_MAX_WORKERS", 0),
        ("TASK_MAX_WORKERS", 2.5),
        ("TASK_MAX_WORKERS", True),
        ("TASK_MAX_QUEUED", -1),
        ("TASK_RETRY_AFTER", 0),
        ("TASK_RETRY_AFTER", 1.5),
        ("MAX_CONTENT_LENGTH", 0),
        ("TASK_MAX_ANSWER_BYTES", 0),
        ("TASK_MAX_ANSWER_BYTES", 1.5),
        ("TASK_MAX_ANSWER_BYTES", None),
        ("METRICS_TOKEN", ""),
        ("METRICS_TOKEN", "two words"),
        ("METRICS_TOKEN", 1234),
        ("LOG_FORMAT", "yaml"),
        ("LOG_FORMAT", ""),
    ],
)
def test_bad_value_stops_the_app_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=f"^{key} must be") as raised:
        create_app({"SECRET_KEY": "x", key: value})
    assert "\n" not in str(raised.value)


def test_bad_value_from_the_environment_names_the_key(monkeypatch):
    monkeypatch.setenv("FLASK_TASK_MAX_QUEUED", "lots")
    message = r"TASK_MAX_QUEUED must be a whole number >= \d, got 'lots'"
    with pytest.raises(ConfigError, match=message):
        create_app({"SECRET_KEY": "x"})


def test_a_secret_key_of_digits_stays_text(monkeypatch):
    monkeypatch.setenv("FLASK_SECRET_KEY", "12345678901234567890")
    app = create_app({"TESTING": True})
    try:
        assert app.secret_key == "12345678901234567890"
    finally:
        app.extensions["task_engine"].shutdown()


@pytest.mark.parametrize(("key", "typed"), [("SESSION_COOKIE_NAME", "123"), ("SERVER_NAME", "1.5")])
def test_flasks_own_text_settings_stay_text(monkeypatch, key, typed):
    monkeypatch.setenv(f"FLASK_{key}", typed)
    app = create_app({"TESTING": True, "SECRET_KEY": "x"})
    try:
        assert app.config[key] == typed
    finally:
        app.extensions["task_engine"].shutdown()


def test_gunicorn_stops_on_a_bad_setting_with_one_line_naming_it():
    result = run_to_exit(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
        FLASK_SECRET_KEY="test-secret",
        FLASK_TASK_RETRY_AFTER="0",
        HOST="127.0.0.1",
        PORT=str(free_port()),
    )
    assert result.returncode != 0
    assert "TASK_RETRY_AFTER must be a whole number >= 1, got 0" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("port", ["70000", "0", "http"])
def test_gunicorn_refuses_a_port_out_of_range_in_one_line(port):
    result = run_to_exit(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
        FLASK_SECRET_KEY="test-secret",
        HOST="127.0.0.1",
        PORT=port,
    )
    assert result.returncode != 0
    assert f"PORT must be a port number (1 to 65535), got '{port}'" in result.stderr
    assert "Traceback" not in result.stderr
