"""G11: a threads bake refuses to be served by more than one gunicorn process.

With the threads backend a task lives in the memory of the process that took
it: under four gunicorn workers three polls in four reach another process and
answer ``404``. ``gunicorn.conf.py`` stops such a server before it serves,
with one line that says why and names the backend that scales,
whichever way the worker count was given.
"""

import os
import re
import signal
import socket
import sys
import time

import pytest
from test_installed_project import free_port, start_logged, stop, wait_until_serving

from conftest import clean_env

REFUSAL = re.compile(r"^.*one process's memory.*task_backend=celery.*$", re.MULTILINE)


def server_env(project, port, **extra):
    """The template's tools on PATH, the bake's package importable, gunicorn on ``port``."""
    bin_dir = os.path.dirname(sys.executable)
    return clean_env(
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        PYTHONPATH=str(project / "src"),
        HOST="127.0.0.1",
        PORT=str(port),
        **extra,
    )


def accepts_connections(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def exit_without_serving(server, port, log, deadline_seconds=60):
    """Wait for ``server`` to exit; fail at once if it serves on ``port`` first."""
    deadline = time.monotonic() + deadline_seconds
    while server.poll() is None:
        if accepts_connections(port) or time.monotonic() > deadline:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
            pytest.fail(f"gunicorn served instead of refusing:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)
    return log.read_text(errors="replace")


@pytest.mark.parametrize(
    ("arguments", "extra_env"),
    [("--workers 4", {}), ("", {"WEB_CONCURRENCY": "4"})],
    ids=["--workers=4", "WEB_CONCURRENCY=4"],
)
def test_a_threads_bake_refuses_several_gunicorn_workers(baked, tmp_path, arguments, extra_env):
    project = baked({"rest_layer": "flask-restful", "task_backend": "threads"})
    port = free_port()
    log = tmp_path / "gunicorn.log"
    server = start_logged(
        ["bash", "-c", f"exec gunicorn -c gunicorn.conf.py {arguments}"],
        project,
        server_env(project, port, **extra_env),
        log,
    )
    output = exit_without_serving(server, port, log)

    assert server.returncode != 0, output
    refusals = REFUSAL.findall(output)
    assert len(refusals) == 1, output
    assert " 4 " in refusals[0], f"the line does not name the worker count: {refusals[0]!r}"
    assert "Traceback" not in output, output
    assert not re.search(r"Listening at|Booting worker", output), output


def test_a_threads_bake_serves_with_its_one_worker(baked, tmp_path):
    project = baked({"rest_layer": "flask-restful", "task_backend": "threads"})
    port = free_port()
    log = tmp_path / "gunicorn.log"
    server = start_logged(
        ["bash", "-c", "exec gunicorn -c gunicorn.conf.py"],
        project,
        server_env(project, port),
        log,
    )
    try:
        status, _, body = wait_until_serving(server, f"http://127.0.0.1:{port}/health", log)
        assert status == 200, body
    finally:
        stop(server)
    assert server.returncode == 0, log.read_text(errors="replace")
    assert not REFUSAL.search(log.read_text(errors="replace"))
