"""Settings of the Celery backend, and Celery wired as Flask's pattern does it."""

import sys

import pytest
from celery import Celery
from helpers import run_to_exit

from {{ cookiecutter.project_slug }} import create_app
from {{ cookiecutter.project_slug }}.settings import ConfigError


def test_the_app_refuses_to_start_without_a_secret_key(monkeypatch):
    monkeypatch.delenv("FLASK_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="^SECRET_KEY must be set") as raised:
        create_app({"TESTING": True})
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("TASK_MAX_QUEUED", 0),
        ("TASK_REDIS_URL", "localhost:6379"),
        ("TASK_LEASE", 0),
        ("CELERY", "broker"),
    ],
)
def test_a_bad_value_names_the_key(key, value):
    with pytest.raises(ConfigError, match=f"^{key} must be"):
        create_app({"SECRET_KEY": "x", key: value})


def test_celery_is_made_from_the_apps_config():
    app = create_app(
        {
            "SECRET_KEY": "x",
            "TASK_REDIS_URL": "redis://127.0.0.1:6390/3",
            "TASK_MAX_WORKERS": 3,
            "CELERY": {"worker_send_task_events": True},
        }
    )
    try:
        celery_app = app.extensions["celery"]
        assert isinstance(celery_app, Celery)
        conf = celery_app.conf
        assert conf.broker_url == "redis://127.0.0.1:6390/3"
        assert conf.worker_concurrency == 3
        assert conf.task_serializer == "json"
        assert conf.accept_content == ["json"]
        assert conf.task_ignore_result is True
        assert not conf.result_backend
        assert conf.task_acks_late is False
        assert conf.worker_prefetch_multiplier == 1
        assert conf.task_default_queue == app.name
        assert conf.worker_send_task_events is True  # the app's own Celery settings win
        assert conf.broker_transport_options["socket_timeout"] > 0
    finally:
        app.extensions["task_engine"].shutdown()


def test_the_worker_stops_without_a_secret_key_with_one_line_naming_it():
    worker_app = "{{ cookiecutter.project_slug }}.worker:celery_app"
    result = run_to_exit([sys.executable, "-m", "celery", "--app", worker_app, "worker"])
    assert result.returncode != 0
    assert "SECRET_KEY must be set (FLASK_SECRET_KEY)" in result.stderr
    assert "Traceback" not in result.stderr
