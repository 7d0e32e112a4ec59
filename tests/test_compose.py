"""D2 and D4 for the stack: each bake's compose.yaml, checked, and run by docker-compose for real.

Every bake's ``compose.yaml`` passes the compose-spec schema and is the stack
the README describes: web (and, on celery, Redis and a scalable worker)
behind an nginx whose template buffers whole requests within the app's body
limit.

The bake's own ``compose.yaml`` runs with an override file written here, as
``docker-compose -f compose.yaml -f override.yaml -p <unique> up -d``, less
the proxy's published port, which the host's network cannot take. The
override swaps the official ``redis`` and ``nginx`` images for stand-ins made
from Debian's packages (Docker Hub cannot be reached), puts every service on
the host's network and every server on 127.0.0.1 on a free port, and checks
health every second instead of every 5 s. The rest (the services, their
commands, health checks, ``depends_on`` conditions, the nginx template and
the web service's ``FLASK_PROXY_COUNT``) is the bake's. Every stack is taken
down with its volumes (``down -v``) at the end of its test.

Clients reach the service through nginx: a request that trickles in (a
header line every few seconds) must never hold one of gunicorn's threads.
"""

import json
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import uuid
from pathlib import Path

import pytest
import yaml
from docker_fixtures import docker_tests
from test_ci_workflow import check_jsonschema
from test_installed_project import free_port, http_get, poll_until_done, readme_commands

from conftest import PYTHON, clean_env, run

pytestmark = docker_tests

# The example task's seconds: short, these tests wait for many of them.
TASK_SECONDS = 0.5
# Health checks every second: the proxy waits for the web service's.
FAST_HEALTH = {"interval": "1s"}


SECRET_KEY = "${FLASK_SECRET_KEY:?set FLASK_SECRET_KEY (in the environment or .env)}"


def load_compose(project):
    return yaml.safe_load((project / "compose.yaml").read_text(encoding="utf-8"))


def test_compose_yaml_passes_the_compose_spec(baked, combination):
    project = baked(combination)
    check_jsonschema("vendor.compose-spec", project / "compose.yaml", cwd=project)


def test_the_stack_serves_through_nginx_and_scales_its_workers(baked, combination):
    project = baked(combination)
    compose = load_compose(project)
    services = compose["services"]
    slug = project.name
    celery = combination["task_backend"] == "celery"
    assert list(services) == (["redis", "web", "worker", "proxy"] if celery else ["web", "proxy"])
    # Only the proxy faces clients; nothing is pinned to a name or a host port
    # that a second copy (--scale) would clash on.
    assert [name for name, service in services.items() if "ports" in service] == ["proxy"]
    assert not any("container_name" in service for service in services.values())

    web = services["web"]
    assert (web["build"], web["image"]) == (".", slug)
    assert web["environment"]["FLASK_SECRET_KEY"] == SECRET_KEY
    assert web["environment"]["FLASK_PROXY_COUNT"] == 1
    # Healthy when ready (/readyz), which the proxy waits for.
    assert web["healthcheck"]["test"][:2] == ["CMD", "python"]
    assert "/readyz'" in web["healthcheck"]["test"][-1]

    proxy = services["proxy"]
    assert proxy["depends_on"] == {"web": {"condition": "service_healthy"}}
    assert proxy["volumes"] == [
        "./nginx/default.conf.template:/etc/nginx/templates/default.conf.template:ro"
    ]
    if celery:
        redis, worker = services["redis"], services["worker"]
        assert {"--appendonly", "--maxmemory-policy", "noeviction"} <= set(redis["command"])
        assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
        assert redis["volumes"] == ["redis-data:/data"]
        assert "redis-data" in compose["volumes"]
        assert worker["image"] == slug
        assert worker["command"][:3] == ["celery", "--app", f"{slug}.worker:celery_app"]
        assert worker["healthcheck"] == {"disable": True}
        assert worker["environment"]["FLASK_SECRET_KEY"] == SECRET_KEY
        for service in (web, worker):
            assert service["depends_on"] == {"redis": {"condition": "service_healthy"}}
            assert service["environment"]["FLASK_TASK_REDIS_URL"] == "redis://redis:6379/0"


def test_the_readme_gives_the_compose_commands(baked, combination):
    project = baked(combination)
    commands = readme_commands(project)
    expected = [
        "docker compose build",
        "docker compose up",
        "curl -i http://127.0.0.1:8000/hello/world",
        "docker compose logs web",
        "docker compose down",
    ]
    if combination["task_backend"] == "celery":
        expected += ["docker compose logs worker", "docker compose up --scale worker=3"]
        expected += ["docker compose down -v"]
    missing = [command for command in expected if command not in commands]
    assert not missing, f"not in the README's bash blocks: {missing}"
    # The line that writes .env makes a key a person could not guess.
    (make_key,) = [c for c in commands if c.startswith("echo ") and c.endswith("> .env")]
    # `python` as in the README's activated virtualenv: this one's.
    path = f"{Path(PYTHON).parent}{os.pathsep}{os.environ['PATH']}"
    made = run(["bash", "-c", make_key.removesuffix("> .env")], project, env=clean_env(PATH=path))
    made = made.stdout
    assert re.fullmatch(r"FLASK_SECRET_KEY=[0-9a-f]{64}\n", made), made


def test_nginx_buffers_whole_requests_within_the_apps_body_limit(baked, combination):
    project = baked(combination)
    template = (project / "nginx" / "default.conf.template").read_text(encoding="utf-8")
    directives = {
        line.strip().rstrip(";")
        for line in template.splitlines()
        if line.strip() and not line.strip().startswith("#")
    }
    assert {
        "proxy_request_buffering on",
        "proxy_buffering on",
        "client_header_timeout 10s",
        "client_body_timeout 10s",
        "listen ${NGINX_PORT}",
        "server ${WEB_UPSTREAM}",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for",
        "proxy_set_header X-Forwarded-Proto $scheme",
    } <= directives
    # The app's MAX_CONTENT_LENGTH default, 1 MiB: a larger body stops at nginx.
    assert "client_max_body_size 1m" in directives
    settings = (project / "src" / project.name / "settings.py").read_text(encoding="utf-8")
    assert '"MAX_CONTENT_LENGTH": 1024 * 1024,' in settings
    # Held requests (at most 60 s) are not cut by the proxy.
    (read_timeout,) = [d for d in directives if d.startswith("proxy_read_timeout ")]
    assert int(read_timeout.split()[1].removesuffix("s")) > 60


class Stack:
    """One bake's compose stack under a project name of its own, on the host's network."""

    def __init__(self, docker, project, folder, override, **env):
        self.project = project
        self.name = f"test{uuid.uuid4().hex[:12]}"
        # Beside compose.yaml, so that its relative paths (build: ., ./nginx) hold.
        self.compose_file = project / f"{self.name}.compose.yaml"
        self.compose_file.write_text(json.dumps(on_the_hosts_network(project)), encoding="utf-8")
        self.override = folder / f"{self.name}.override.yaml"
        # JSON is YAML: the override as data, written as such.
        self.override.write_text(json.dumps(override, indent=2), encoding="utf-8")
        self.env = {k: v for k, v in docker.env.items() if not k.startswith("COMPOSE_")}
        self.env.update(env)
        self.docker = docker

    def __call__(self, *args, timeout=120, check=True, env=None):
        """``docker-compose <args>`` on this stack; its output (stderr too) in ``stdout``."""
        command = ["docker-compose", "-f", self.compose_file.name, "-f", str(self.override)]
        return run(
            [*command, "-p", self.name, *map(str, args)],
            self.project,
            env=env if env is not None else self.env,
            timeout=timeout,
            check=check,
        )

    def containers(self, service=None):
        """The ids of this stack's containers (of ``service`` only, if given), running or not."""
        filters = ["--filter", f"label=com.docker.compose.project={self.name}"]
        if service:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        return self.docker("ps", "--all", "--quiet", *filters).stdout.split()

    def logs(self):
        return self("logs", "--no-color", check=False).stdout

    def down(self):
        self("down", "--volumes", "--timeout", "10", check=False, timeout=180)
        self.override.unlink(missing_ok=True)
        self.compose_file.unlink(missing_ok=True)


def on_the_hosts_network(project):
    """The bake's compose.yaml without the proxy's published port.

    A container on the host's network cannot publish ports (docker-compose
    refuses), and an override file can add to a list but not take from it.
    """
    compose = yaml.safe_load((project / "compose.yaml").read_text(encoding="utf-8"))
    proxy = compose["services"]["proxy"]
    # The port the README sends clients to, on nginx's port (NGINX_PORT).
    assert proxy.pop("ports") == ["127.0.0.1:${PORT:-8000}:8080"]
    assert proxy["environment"]["NGINX_PORT"] == 8080
    return compose


class Stacks:
    """Start stacks: ``stacks(project, override, **env)``; ``down()`` takes every one down."""

    def __init__(self, docker, folder):
        self.docker, self.folder, self.started = docker, folder, []

    def __call__(self, project, override, **env):
        stack = Stack(self.docker, project, self.folder, override, **env)
        self.started.append(stack)
        return stack

    def down(self):
        for stack in reversed(self.started):
            stack.down()


@pytest.fixture
def stacks(docker, tmp_path):
    """Stacks of one test, taken down at its end."""
    stacks = Stacks(docker, tmp_path)
    yield stacks
    stacks.down()


@pytest.fixture(scope="module")
def module_stacks(docker, tmp_path_factory):
    """Stacks shared by this module's tests, taken down after the last."""
    stacks = Stacks(docker, tmp_path_factory.mktemp("compose"))
    yield stacks
    stacks.down()


def proxy_override(nginx_image, proxy_port, web_port):
    """The proxy: the nginx stand-in, on 127.0.0.1:``proxy_port``, passing to ``web_port``."""
    return {
        "image": nginx_image,
        "network_mode": "host",
        "environment": {
            # nginx's `listen` takes an address too: the host's network is shared.
            "NGINX_PORT": f"127.0.0.1:{proxy_port}",
            "WEB_UPSTREAM": f"127.0.0.1:{web_port}",
        },
    }


def web_override(web_port, **env):
    return {
        "network_mode": "host",
        "environment": {"HOST": "127.0.0.1", "PORT": str(web_port), **env},
        "healthcheck": FAST_HEALTH,
    }


def wait_until_answering(stack, url, seconds=90):
    """GET ``url`` until it answers 200: the seconds that took, from now."""
    started = time.monotonic()
    while True:
        try:
            status, _, body = http_get(url, timeout=2)
            if status == 200:
                return time.monotonic() - started
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() - started > seconds:
            pytest.fail(f"{url} did not answer 200 within {seconds} s:\n{stack.logs()}")
        time.sleep(0.1)


def submit(base, path):
    """GET ``path`` through the proxy: the status URL its ``Location`` names, resolved."""
    status, headers, body = http_get(f"{base}/{path}")
    assert status == 202, body
    location = headers["Location"]
    # A path: the client resolves it against the URL it asked, the proxy's.
    assert location.startswith("/status/"), location
    return urllib.parse.urljoin(f"{base}/{path}", location)


def assert_answers(status_url, path):
    status, headers, body = poll_until_done(status_url)
    assert status == 200, body
    assert headers["Task-Status"] == "succeeded"
    assert f"The answer is: {path}".encode() in body


@pytest.fixture(scope="module")
def threads_stack(threads_image, nginx_image, module_stacks):
    """The threads bake's stack, up and answering through its proxy: ``(stack, base URL)``."""
    project, _ = threads_image
    web_port, proxy_port = free_port(), free_port()
    override = {
        "services": {
            "web": web_override(web_port, FLASK_EXAMPLE_TASK_SECONDS=TASK_SECONDS),
            "proxy": proxy_override(nginx_image, proxy_port, web_port),
        }
    }
    stack = module_stacks(project, override)
    # The key from .env, as the README offers; gone once the stack is up, so
    # that other tests find the bake as made. Later commands (logs, down) read
    # compose.yaml too, and need it: from the environment then.
    dotenv = project / ".env"
    dotenv.write_text("FLASK_SECRET_KEY=compose-test-secret\n", encoding="utf-8")
    started = time.monotonic()
    try:
        stack("up", "--detach", timeout=180)
    finally:
        dotenv.unlink()
        stack.env["FLASK_SECRET_KEY"] = "compose-test-secret"
    base = f"http://127.0.0.1:{proxy_port}"
    wait_until_answering(stack, f"{base}/health")
    print(f"threads stack: up to first answer {time.monotonic() - started:.1f} s")
    return stack, base


def test_a_threads_stack_serves_tasks_through_its_proxy(threads_stack):
    stack, base = threads_stack
    assert len(stack.containers()) == 2, "web and proxy"
    assert_answers(submit(base, "through/the/proxy"), "through/the/proxy")


def test_without_a_secret_key_compose_starts_nothing_and_names_it(threads_image, stacks):
    project, _ = threads_image
    assert not (project / ".env").exists()
    stack = stacks(project, {"services": {"web": {"network_mode": "host"}}})
    for command in (["config"], ["up", "--detach"]):
        result = stack(*command, check=False, timeout=60)
        assert result.returncode != 0, result.stdout
        assert "FLASK_SECRET_KEY" in result.stdout, result.stdout
    assert stack.containers() == []


class SlowClients:
    """``count`` connections that each send a request line, then a header line every ``every`` s.

    A connection the server closes is opened again at the next round, so that
    ``count`` stay open all along. All are closed by ``close()``.
    """

    def __init__(self, port, count, every):
        self.port, self.count, self.every = port, count, every
        self.sockets = []
        self.reopened = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)

    def _open(self):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        return sock

    def start(self):
        self.sockets = [self._open() for _ in range(self.count)]
        self.thread.start()

    def _trickle(self):
        line = 0
        while not self.stopping.wait(self.every):
            line += 1
            for index, sock in enumerate(self.sockets):
                try:
                    sock.sendall(f"X-Slow-{line}: {'x' * 20}\r\n".encode())
                except OSError:
                    sock.close()
                    self.sockets[index] = self._open()
                    self.reopened += 1

    def close(self):
        self.stopping.set()
        self.thread.join(30)
        for sock in self.sockets:
            sock.close()


def probe_while_slow_clients_hold_on(base, port, *, count=200, every=5, seconds=20, interval=0.25):
    """``/health`` every ``interval`` s while ``count`` slow clients trickle in: each probe."""
    clients = SlowClients(port, count, every)
    times = []
    try:
        clients.start()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                status, _, _ = http_get(f"{base}/health", timeout=1)
            except (OSError, urllib.error.URLError):
                status = None
            times.append((status, time.monotonic() - started))
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    finally:
        clients.close()
    return times, clients.reopened


def test_slow_clients_through_the_proxy_never_stop_the_service(threads_stack):
    """gunicorn's 8 threads alone stop answering under 8 such clients; nginx takes 200."""
    stack, base = threads_stack
    port = urllib.parse.urlsplit(base).port
    times, reopened = probe_while_slow_clients_hold_on(base, port)
    late = [(status, round(took, 2)) for status, took in times if status != 200 or took >= 1]
    print(
        f"slow clients through nginx: {len(times)} probes, {len(late)} late or failed, slowest"
        f" {max(took for _, took in times):.2f} s; nginx closed {reopened} slow connections"
    )
    assert len(times) >= 40, times
    assert not late, f"{len(late)} of {len(times)} probes failed or took 1 s or more: {late}"


def test_a_celery_stack_runs_tasks_on_two_workers_and_keeps_them_across_a_redis_restart(
    celery_image, nginx_image, redis_image, stacks
):
    project, _ = celery_image
    redis_port, web_port, proxy_port = free_port(), free_port(), free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    override = {
        "services": {
            "redis": {
                "image": redis_image,
                "network_mode": "host",
                "command": [
                    "redis-server",
                    *("--port", str(redis_port), "--bind", "127.0.0.1"),
                    *("--appendonly", "yes", "--maxmemory-policy", "noeviction"),
                ],
                "healthcheck": {
                    "test": ["CMD", "redis-cli", "-p", str(redis_port), "ping"],
                    **FAST_HEALTH,
                },
            },
            "web": web_override(web_port, FLASK_TASK_REDIS_URL=redis_url),
            "worker": {
                "network_mode": "host",
                "environment": {
                    "FLASK_TASK_REDIS_URL": redis_url,
                    "FLASK_EXAMPLE_TASK_SECONDS": str(TASK_SECONDS),
                    # One task at a time each, so that several tasks need both workers.
                    "FLASK_TASK_MAX_WORKERS": "1",
                },
            },
            "proxy": proxy_override(nginx_image, proxy_port, web_port),
        }
    }
    stack = stacks(project, override, FLASK_SECRET_KEY="compose-test-secret")
    started = time.monotonic()
    stack("up", "--detach", "--scale", "worker=2", timeout=180)
    base = f"http://127.0.0.1:{proxy_port}"
    wait_until_answering(stack, f"{base}/health")
    print(f"celery stack: up to first answer {time.monotonic() - started:.1f} s")
    workers = stack.containers("worker")
    assert len(workers) == 2, workers

    paths = [f"task/{n}" for n in range(6)]
    status_urls = [submit(base, path) for path in paths]
    for status_url, path in zip(status_urls, paths, strict=True):
        assert_answers(status_url, path)
    took = {worker: stack.docker("logs", worker).stdout.count(" received") for worker in workers}
    assert all(took.values()), f"a worker took no task: {took}\n{stack.logs()}"
    assert sum(took.values()) == len(paths), took

    # Redis's append-only file, in the named volume, keeps a finished task.
    stack("restart", "redis", timeout=60)
    status, headers, body = poll_until_done(status_urls[0])
    deadline = time.monotonic() + 30
    while status == 503 and time.monotonic() < deadline:  # Redis still loading its file
        time.sleep(0.2)
        status, headers, body = poll_until_done(status_urls[0])
    assert status == 200, body
    assert b"The answer is: task/0" in body
