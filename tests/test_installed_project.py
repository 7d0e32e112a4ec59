"""G1, G4, G5 as a new user meets them: the baked README's commands, word for word.

The default project goes into a fresh virtual environment with the install
command its README gives, its tests run there with the README's test command,
and the service runs under gunicorn with its own ``gunicorn.conf.py``, asked
over real HTTP on 127.0.0.1 for ``/health`` and one task end to end.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import clean_env, run

# One fresh virtual environment for the module: keep its tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("installed-project")

FENCED_BASH = re.compile(r"^```(?:bash|sh|shell)[ \t]*\n(.*?)^```", re.DOTALL | re.MULTILINE)


def readme_commands(project):
    """Every command line of the README's ```bash blocks, prompts and comments dropped."""
    readme = (project / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in FENCED_BASH.findall(readme):
        for line in block.splitlines():
            line = line.strip()
            if line.startswith("$ "):
                line = line[2:].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def readme_command(project, pattern, what):
    """The one README command matching ``pattern``; fail clearly if there is none."""
    found = [command for command in readme_commands(project) if re.search(pattern, command)]
    if not found:
        pytest.fail(
            f"the baked README.md has no {what} command in a ```bash block "
            f"(looked for /{pattern}/ among {readme_commands(project)!r})",
            pytrace=False,
        )
    return found[0]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url, timeout=5):
    """``(status, headers, body)`` of a GET, whatever the status."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


@pytest.fixture(scope="module")
def installed(bake, tmp_path_factory):
    """The default project, installed with its README's command into a fresh venv."""
    project = bake()
    venv = tmp_path_factory.mktemp("venv") / "venv"
    run([sys.executable, "-m", "venv", str(venv)], project, timeout=120)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    # What `source .venv/bin/activate` does, for the commands run below.
    env = clean_env(
        VIRTUAL_ENV=str(venv),
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    env.pop("PYTHONHOME", None)
    install = readme_command(project, r"\bpip install\b", "install")
    run(["bash", "-c", install], project, env=env, timeout=420)
    return project, env


def test_the_readme_install_command_installs_the_package(installed):
    project, env = installed
    result = run(
        ["python", "-c", f"import {project.name}, sys; print({project.name}.__file__, sys.prefix)"],
        project,
        env=env,
    )
    module_file, prefix = result.stdout.split()
    assert prefix == env["VIRTUAL_ENV"]
    assert module_file.startswith(str(project / "src")), "not an editable install of src/"


def test_the_readme_test_command_passes_in_the_venv(installed):
    project, env = installed
    command = readme_command(project, r"^(python -m )?pytest\b", "test")
    run(["bash", "-c", command], project, env=env, timeout=300)


def test_the_service_answers_over_http_under_gunicorn(installed, tmp_path):
    project, env = installed
    command = readme_command(project, r"\bgunicorn\b.*-c\s+gunicorn\.conf\.py", "gunicorn")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server_env = dict(env, HOST="127.0.0.1", PORT=str(port), FLASK_EXAMPLE_TASK_SECONDS="0.2")
    log = tmp_path / "gunicorn.log"
    server = start_logged(["bash", "-c", f"exec {command}"], project, server_env, log)
    try:
        status, _, body = wait_until_serving(server, f"{base}/health", log)
        assert status == 200, body
        assert json.loads(body) == {"status": "ok"}

        status, headers, body = http_get(f"{base}/some/path")
        assert status == 202, body
        location = urllib.parse.urljoin(f"{base}/some/path", headers["Location"])
        assert urllib.parse.urlsplit(location).path.startswith("/status/")

        status, headers, body = poll_until_done(location)
        assert status == 200, body
        assert b"The answer is: some/path" in body
    finally:
        stop(server)
    assert server.returncode == 0, log.read_text(errors="replace")


def start_logged(command, cwd, env, log):
    """Start ``command`` in a session of its own (stoppable whole), its output to ``log``."""
    with log.open("wb") as output:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_until_serving(server, url, log, deadline_seconds=60):
    """GET ``url`` as soon as the server accepts connections."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        if server.poll() is not None:
            pytest.fail(f"gunicorn exited {server.returncode}:\n{log.read_text(errors='replace')}")
        try:
            return http_get(url, timeout=2)
        except (ConnectionError, urllib.error.URLError):
            if time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not serve {url}:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)


def poll_until_done(location, deadline_seconds=30):
    """Poll the status URL until it stops answering 202 (bounded by a deadline)."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        status, headers, body = http_get(location)
        if status != 202:
            return status, headers, body
        if time.monotonic() > deadline:
            pytest.fail(f"task still not done after {deadline_seconds} s: {body!r}")
        time.sleep(0.05)


def stop(server, timeout=30):
    """SIGTERM the server and wait for it; kill its whole session if it hangs."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
            pytest.fail(f"gunicorn did not stop within {timeout} s of SIGTERM")
