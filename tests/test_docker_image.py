"""D1 and D4 for the image: each backend's bake built by a real Docker daemon, served and stopped.

A private ``dockerd`` (``docker_fixtures``) builds each bake's image with its
README's ``docker build`` command, on a Python base image made from Debian's
packages with ``mmdebstrap`` and passed as ``PYTHON_IMAGE`` (Docker Hub cannot
be reached here). The README's ``docker run`` commands then run word for
word, but for the network: every container uses the host's (``--network
host``) and serves on 127.0.0.1 on a free port.

Without Docker the tests skip, saying how to get it; under ``CI=true`` they fail.
"""

import json
import os
import re
import shlex
import signal
import subprocess
import time
import tomllib
import urllib.parse
from pathlib import Path

import pytest
from docker_fixtures import docker_tests, readme_build
from test_celery_service import Processes, find_redis_server, wait_for_line
from test_installed_project import (
    free_port,
    http_get,
    poll_until_done,
    readme_command,
    start_logged,
    wait_until_serving,
)

from conftest import clean_env

pytestmark = docker_tests

# The example task's seconds: long enough to be caught running at a stop.
TASK_SECONDS = 1.5
# `docker run` options of the README's commands that take a value.
RUN_OPTIONS_WITH_VALUE = {"--name", "-p", "--publish", "-e", "--env", "--network", "--stop-timeout"}


class Container:
    """A container started by a README ``docker run`` command, in the foreground."""

    def __init__(self, docker, command, image, log, *, port=None, **env):
        """Run ``command`` with the host's network; a ``port`` serves there on 127.0.0.1.

        ``env`` goes in as more ``-e`` options, after the README's own.
        """
        tokens = shlex.split(command)
        assert tokens[:2] == ["docker", "run"], tokens
        options, position = [], 2
        while tokens[position].startswith("-"):
            takes_value = tokens[position] in RUN_OPTIONS_WITH_VALUE
            options.append(tokens[position : position + 1 + takes_value])
            position += 1 + takes_value
        assert tokens[position] == image, f"no image {image!r} where expected in {command!r}"
        names = [option[1] for option in options if option[0] == "--name"]
        assert names, f"{command!r} names no container, so docker stop cannot name it"
        self.name = names[0]
        # Host networking, here as in the README or in place of its published port.
        kept = [o for o in options if o[0] not in ("-p", "--publish", "--network")]
        added = ["--network", "host"]
        if port is not None:
            # Sooner than the image's 30 s, to see the image's own check pass.
            added += ["--health-interval", "1s"]
            env = {"HOST": "127.0.0.1", "PORT": str(port), **env}
        added += [f"--env={key}={value}" for key, value in env.items()]
        self.docker, self.log = docker, log
        self.base = f"http://127.0.0.1:{port}"
        self.cli = start_logged(
            [
                "docker",
                "run",
                *(part for option in kept for part in option),
                *added,
                *tokens[position:],
            ],
            Path.cwd(),
            docker.env,
            log,
        )

    def output(self):
        return self.log.read_text(errors="replace")

    def pid(self):
        """The host's pid of the container's PID 1, once it runs."""
        deadline = time.monotonic() + 30
        while True:
            found = self.docker("inspect", "--format", "{{.State.Pid}}", self.name, check=False)
            if found.returncode == 0 and found.stdout.strip() not in ("", "0"):
                return int(found.stdout.strip())
            if self.cli.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{self.name} did not start:\n{self.output()}")
            time.sleep(0.1)

    def wait_until_healthy(self):
        deadline = time.monotonic() + 30
        while (health := self.docker.inspect(self.name, "{{.State.Health.Status}}")) != "healthy":
            if time.monotonic() > deadline:
                health_log = self.docker.inspect(self.name, "{{json .State.Health}}")
                pytest.fail(f"{self.name} is {health}: {health_log}\n{self.output()}")
            time.sleep(0.2)

    def stop(self):
        """``docker stop``, as an operator would: how long it took, and the exit status."""
        started = time.monotonic()
        self.docker("stop", self.name, timeout=120)
        took = time.monotonic() - started
        return took, self.cli.wait(30)

    def remove(self):
        if self.cli.poll() is None:
            self.docker("rm", "--force", self.name, check=False)
            try:
                self.cli.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.cli.pid, signal.SIGKILL)
                self.cli.wait(10)


@pytest.fixture
def containers(docker, tmp_path):
    """Start README containers: ``containers(command, image, **kwargs)``; all removed at the end."""
    started = []

    def start(command, image, **kwargs):
        log = tmp_path / f"container-{len(started)}.log"
        container = Container(docker, command, image, log, **kwargs)
        started.append(container)
        return container

    yield start
    for container in reversed(started):
        container.remove()


def processes_of(pid):
    """``pid`` and its children, each as ``(uids, command line)`` from the host's /proc."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
            cmdline = (status.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if status.parent.name == str(pid) or fields.get("PPid", "").strip() == str(pid):
            found.append((fields["Uid"].split(), cmdline.strip()))
    return found


def assert_runs_unprivileged(container, program):
    """PID 1 is ``program`` itself (no shell in between), and it and its children are not root."""
    pid = container.pid()
    processes = processes_of(pid)
    command = (Path("/proc") / str(pid) / "cmdline").read_bytes().decode().split("\0")
    assert Path(command[1]).name == program, f"PID 1 is {' '.join(command)!r}, not {program}"
    assert processes, f"no process {pid}"
    for uids, cmdline in processes:
        assert "0" not in uids, f"{cmdline!r} runs as uid {uids}"


CONTENTS = """
import importlib.metadata, importlib.util, json, os, shutil, sys
test_files = set(json.loads(sys.argv[1]))
found = [
    os.path.join(folder, name)
    for top in ("/app", "/opt", "/srv", "/home", "/root", "/usr/local", "/build")
    for folder, dirs, files in os.walk(top)
    for name in files
    if name in test_files
]
print(json.dumps({
    "distributions": sorted(d.metadata["Name"] for d in importlib.metadata.distributions()),
    "tools": [t for t in ("pytest", "ruff", "mypy")
              if shutil.which(t) or importlib.util.find_spec(t)],
    "app": sorted(os.listdir("/app")),
    "found": found,
}))
"""


def normalized(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def assert_holds_only_the_runtime(docker, project, image):
    """No dev extra, no dev tool, none of the project's tests; only gunicorn.conf.py in /app."""
    with (project / "pyproject.toml").open("rb") as file:
        pyproject = tomllib.load(file)["project"]
    runtime = {normalized(re.match(r"[\w.-]+", r).group()) for r in pyproject["dependencies"]}
    dev_only = {
        normalized(re.match(r"[\w.-]+", r).group())
        for r in pyproject["optional-dependencies"]["dev"]
    } - runtime
    test_files = sorted(
        path.name
        for path in (project / "tests").rglob("*.py")
        if path.name.startswith(("test_", "conftest"))
    )
    result = docker(
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "python",
        image,
        "-c",
        CONTENTS,
        json.dumps(test_files),
    )
    contents = json.loads(result.stdout.strip().splitlines()[-1])
    installed = {normalized(name) for name in contents["distributions"]}
    assert normalized(project.name) in installed, "the project itself is not installed"
    assert runtime <= installed, runtime - installed
    assert not installed & dev_only, f"dev dependencies in the image: {installed & dev_only}"
    assert contents["tools"] == []
    assert contents["app"] == ["gunicorn.conf.py"]
    assert contents["found"] == []


def submit(base, path):
    status, headers, body = http_get(f"{base}/{path}")
    assert status == 202, body
    return urllib.parse.urljoin(f"{base}/{path}", headers["Location"])


def wait_until_running(location):
    deadline = time.monotonic() + 30
    while (status := http_get(location))[1]["Task-Status"] != "running":
        assert status[0] == 202 and time.monotonic() < deadline, status
        time.sleep(0.02)


def assert_answers(location, path):
    status, headers, body = poll_until_done(location)
    assert status == 200, body
    assert headers["Task-Status"] == "succeeded"
    assert f"The answer is: {path}".encode() in body


def serve(container, what="gunicorn"):
    status, _, body = wait_until_serving(container.cli, f"{container.base}/readyz", container.log)
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    container.wait_until_healthy()
    assert_runs_unprivileged(container, what)


def test_a_threads_image_serves_tasks_and_stops_gracefully(
    docker, threads_image, python_image, containers
):
    project, image = threads_image
    assert_holds_only_the_runtime(docker, project, image)
    web = containers(
        readme_command(project, r"^docker run\b", "docker run"),
        image,
        port=free_port(),
        FLASK_EXAMPLE_TASK_SECONDS=TASK_SECONDS,
    )
    serve(web)
    assert_answers(submit(web.base, "some/path"), "some/path")

    # docker stop while a task runs: the task finishes, then gunicorn exits 0.
    submitted = time.monotonic()
    wait_until_running(submit(web.base, "last/one"))
    took, status = web.stop()
    log = web.output()
    assert status == 0, log
    assert time.monotonic() - submitted >= TASK_SECONDS, "stopped before the running task ended"
    assert "was still running when the service stopped" not in log
    assert took < 10, f"docker stop took {took:.1f} s of its 35:\n{log}"

    # Here rather than in a test of its own, which another xdist worker
    # could run, building this image once more.
    assert_a_change_to_src_reuses_the_dependencies(docker, project, image, python_image)


def assert_a_change_to_src_reuses_the_dependencies(docker, project, image, python_image):
    """The Dockerfile's ``deps`` stage is the same image before and after a change to src/."""

    def dependencies_image():
        docker(
            "build",
            *("--network", "host", "--build-arg", f"PYTHON_IMAGE={python_image}"),
            *("--target", "deps", "--tag", f"{image}-deps", "."),
            cwd=project,
            timeout=900,
        )
        return docker.inspect(f"{image}-deps", "{{.Id}}")

    before = dependencies_image()
    (project / "src" / project.name / "added.py").write_text('"""A new module."""\n')
    readme_build(docker, project, python_image)
    assert dependencies_image() == before, "a change to src/ installed the dependencies again"


def test_a_celery_image_runs_web_and_worker_on_redis(
    docker, celery_image, containers, processes, tmp_path
):
    project, image = celery_image
    assert_holds_only_the_runtime(docker, project, image)
    redis_port = free_port()
    redis, redis_log = processes.start(
        "redis",
        f"{find_redis_server(project)} --port {redis_port} --bind 127.0.0.1 --save ''",
        tmp_path,
        clean_env(),
    )
    wait_for_line(redis, redis_log, r"[Rr]eady to accept connections")
    # What the README's `export` lines give the docker commands to pass on.
    docker.env.update(
        FLASK_SECRET_KEY="change-me", FLASK_TASK_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0"
    )
    try:
        worker = containers(
            readme_command(project, r"^docker run\b.*\bcelery --app \S+ worker\b", "worker"),
            image,
            FLASK_EXAMPLE_TASK_SECONDS=TASK_SECONDS,
        )
        web = containers(
            readme_command(project, r"^docker run\b(?!.*\bcelery\b)", "docker run (web)"),
            image,
            port=free_port(),
        )
    finally:
        for name in ("FLASK_SECRET_KEY", "FLASK_TASK_REDIS_URL"):
            docker.env.pop(name)
    wait_for_line(worker.cli, worker.log, r"ready\.")
    assert_runs_unprivileged(worker, "celery")
    serve(web)
    assert_answers(submit(web.base, "some/path"), "some/path")

    # docker stop of the worker while its task runs: the task finishes first.
    location = submit(web.base, "last/one")
    wait_until_running(location)
    took, status = worker.stop()
    assert status == 0, worker.output()
    assert_answers(location, "last/one")
    assert took < 10, f"docker stop took {took:.1f} s of its 35:\n{worker.output()}"

    took, status = web.stop()
    assert status == 0, web.output()
    assert took < 10, f"docker stop took {took:.1f} s of 10:\n{web.output()}"


@pytest.fixture
def processes(tmp_path):
    started = Processes(tmp_path)
    yield started
    started.stop_all()
