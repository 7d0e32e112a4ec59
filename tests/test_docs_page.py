"""Swagger UI of a flask-smorest bake, in a real browser, with the internet shut out.

The baked service runs under gunicorn with its own ``gunicorn.conf.py`` on
127.0.0.1; headless Chromium (Debian's ``chromium``, which ``.ci/run``
installs) opens ``/docs/`` with every host name but 127.0.0.1 unresolvable,
so a page that needed a CDN would render nothing. The rendered page must
show every operation of the document, and opening it must start no task.
"""

import json
import os
import re
import shutil
import sys

import pytest
from test_installed_project import free_port, http_get, start_logged, stop, wait_until_serving

from conftest import clean_env, run

CHROMIUM = next(
    (path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None
)


def rendered_dom(url, profile):
    """The page's DOM once its scripts ran, as headless Chromium saw it."""
    result = run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            f"--user-data-dir={profile}",
            # Nothing outside this machine can be reached from the page.
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ],
        profile,
        timeout=120,
    )
    return result.stdout


def test_swagger_ui_renders_every_operation_offline(bake, tmp_path):
    if CHROMIUM is None:
        message = "no Chromium to open the docs page: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    project = bake(rest_layer="flask-smorest")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_env(PYTHONPATH=str(project / "src"), HOST="127.0.0.1", PORT=str(port))
    log = tmp_path / "gunicorn.log"
    gunicorn = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
    server = start_logged(gunicorn, project, env, log)
    try:
        status, _, _ = wait_until_serving(server, f"{base}/health", log)
        assert status == 200
        profile = tmp_path / "profile"
        profile.mkdir()
        dom = rendered_dom(f"{base}/docs/", profile)
        _, _, document = http_get(f"{base}/docs/openapi.json")
    finally:
        stop(server)
    shown = set(re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom))
    documented = set(json.loads(document)["paths"])
    assert documented == {
        "/",
        "/{path}",
        "/status/{task_id}",
        "/livez",
        "/readyz",
        "/health",
        "/metrics",
    }
    assert shown == documented, dom[-2000:]
    # Opening the page (its assets, the document, the icon) started no task.
    access_log = log.read_text(errors="replace")
    assert '"GET /docs/ HTTP/1.1" 200' in access_log, access_log
    assert '" 202 ' not in access_log, access_log
