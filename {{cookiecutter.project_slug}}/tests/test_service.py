"""The package's public API and its probes."""

import pytest

import {{ cookiecutter.project_slug }} as package


def test_public_api_is_importable_from_the_package():
    assert set(package.__all__) == {"create_app", "async_api", "current_task"}
    app = package.create_app({"SECRET_KEY": "x", "TASK_RETENTION": 5})
    try:
        assert app.config["TASK_RETENTION"] == 5  # the mapping is applied last
        assert app.extensions["task_engine"]
    finally:
        app.extensions["task_engine"].shutdown()


@pytest.mark.parametrize("probe", ["/livez", "/readyz", "/health"])
def test_each_probe_answers_ok_at_once_without_credentials(client, probe):
    response = client.get(probe)
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert "Task-Status" not in response.headers
