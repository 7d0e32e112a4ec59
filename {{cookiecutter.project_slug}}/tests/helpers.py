"""Test doubles and waiting helpers shared by the test modules."""

import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from flask import abort, current_app, g, request, send_file, stream_with_context

from {{ cookiecutter.project_slug }} import async_api, current_task

PROJECT = Path(__file__).resolve().parents[1]
# What the file view answers: 1000 bytes, with an ETag and a Last-Modified.
FILE_BYTES = bytes(range(250)) * 4
FILE_ETAG = "report-v1"
FILE_LAST_MODIFIED = 1_700_000_000
# Waits between checks; an Event's wait, so that a test may patch time.sleep.
_pause = threading.Event().wait


def child_env(**env):
    """This environment less its ``FLASK_*`` settings, the project on ``PYTHONPATH``, and ``env``.

    For the servers and workers the tests start: they import the package from
    ``src`` and the tests' own apps (``served_app``, ``worker_app``) from ``tests``.
    """
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("FLASK_")}
    path = [str(PROJECT / "src"), str(PROJECT / "tests"), os.environ.get("PYTHONPATH", "")]
    return {**inherited, "PYTHONPATH": os.pathsep.join(path), **env}


def run_to_exit(command, timeout=60, **env):
    """Run ``command`` in the project's folder with ``child_env(**env)``; its output as text."""
    return subprocess.run(
        command, cwd=PROJECT, env=child_env(**env), capture_output=True, text=True, timeout=timeout
    )


def submit_and_finish(server, path, headers=None):
    """Submit ``path`` to a served app and poll until it is done: its status URL and
    the status code it ends with."""
    status, answer_headers, _ = server.get(path, headers)
    assert status == 202, status
    location, answers = answer_headers["Location"], []

    def done():
        answers.append(server.get(location)[0])
        return answers[-1] != 202

    wait_for(done, timeout=20, what=f"{path} to finish")
    return location, answers[-1]


def wait_for(condition, timeout=5.0, what="the condition"):
    """Return ``condition()`` once it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s")
        _pause(0.002)


def comparable(response):
    """Status, headers (but Task-Status) and body: what must equal the synchronous answer."""
    headers = sorted((k, v) for k, v in response.headers.items() if k != "Task-Status")
    return response.status_code, headers, response.get_data()


class FakeClock:
    """A clock that moves only when a test says so."""

    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


class Gate:
    """Holds tasks inside their view until the test opens it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entered = threading.Semaphore(0)
        self.opened = threading.Event()
        self.entries = 0
        self.running = 0
        self.most_running = 0
        self.saw_cancelled = []

    def hold(self):
        with self._lock:
            self.entries += 1
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        self._entered.release()
        try:
            # A deadline for a test that forgot to open it, long enough for a
            # loaded machine to stop a server meanwhile (test_shutdown).
            if not self.opened.wait(30):
                raise RuntimeError("the test never opened the gate")
            self.saw_cancelled.append(current_task.cancelled)
        finally:
            with self._lock:
                self.running -= 1

    def wait_entered(self, count=1, timeout=5.0):
        for _ in range(count):
            assert self._entered.acquire(timeout=timeout), "no task reached the gate"

    def open(self):
        self.opened.set()


def echo(**view_args):
    """What the task saw of its request."""
    return {
        "method": request.method,
        "path": request.path,
        "view_args": request.view_args,
        "args": request.args.to_dict(),
        "header": request.headers.get("X-Test"),
        "json": request.get_json(silent=True),
        "data": request.get_data(as_text=True),
        "form": request.form.to_dict(),
        "user": g.get("user"),
    }


def register_views(app, gate):
    """Routes the tests drive: each is an ``async_api`` view with a plain twin."""

    @app.before_request
    def load_user():
        authorization = request.headers.get("Authorization")
        if authorization:
            g.user = authorization.removeprefix("Bearer ")

    @app.after_request
    def stamp(response):
        response.headers.add("X-After-Request", "once")
        return response

    def gated():
        gate.hold()
        return "released"

    def created(name):
        return {"name": name}, 201, {"X-Custom": "yes", "Cache-Control": "no-store"}

    def missing():
        return {"detail": "no such thing"}, 404

    def teapot():
        abort(418)

    def crash():
        raise RuntimeError("secret database password in this message")

    def streamed():
        return current_app.response_class(
            stream_with_context(f"chunk {i};" for i in range(3)), mimetype="text/plain"
        )

    def progress():
        current_task.report(40, "reading")
        gate.hold()
        current_task.report(90)
        return "done"

    def view_args(a, b):
        return {"a": a, "b": b}

    def download():
        return send_file(
            io.BytesIO(FILE_BYTES),
            mimetype="application/octet-stream",
            etag=FILE_ETAG,
            last_modified=FILE_LAST_MODIFIED,
        )

    def late_echo():
        gate.hold()  # the 202 is long gone when the body is read
        return echo()

    for name, view, rule, methods in [
        ("echo", echo, "/echo/<name>", ["GET", "POST", "PUT"]),
        ("gated", gated, "/gated", ["GET", "POST"]),
        ("created", created, "/created/<name>", ["GET"]),
        ("missing", missing, "/missing", ["GET"]),
        ("teapot", teapot, "/teapot", ["GET"]),
        ("crash", crash, "/crash", ["GET"]),
        ("streamed", streamed, "/streamed", ["GET"]),
        ("progress", progress, "/progress", ["GET"]),
        ("view_args", view_args, "/args/<a>/<int:b>", ["GET"]),
        ("late_echo", late_echo, "/late-echo", ["POST"]),
        ("download", download, "/download", ["GET"]),
    ]:
        app.add_url_rule(f"/async{rule}", f"async_{name}", async_api(view), methods=methods)
        app.add_url_rule(f"/sync{rule}", f"sync_{name}", view, methods=methods)


def add_nap_view(app):
    """``GET /nap/<seconds>``: a task that sleeps, checking for a cancel, logs, then answers."""

    @app.get("/nap/<seconds>")
    @async_api
    def nap(seconds):
        deadline = time.monotonic() + float(seconds)
        while time.monotonic() < deadline:
            if current_task.cancelled:
                return "woken"
            _pause(0.01)
        app.logger.info("napped %s s", seconds)
        return f"slept {seconds}"


def add_failing_view(app):
    """``GET /fail``: a task whose view raises, so that it ends failed."""

    @app.get("/fail")
    @async_api
    def fail():
        raise RuntimeError("the view failed, as the test asked")


def add_body_view(app):
    """``POST /body``: a task that answers the body it was given."""

    @app.post("/body")
    @async_api
    def body():
        return request.get_data()


def submit_and_poll_while_cleaning(app, poll_done, prefix, submitters=8, tasks_each=25):
    """``submitters`` threads each submit and poll ``tasks_each`` tasks while
    another runs cleaner passes back to back; returns the ids and any failures."""
    cleaner = app.extensions["task_engine"].backend.cleaner
    stop_cleaning = threading.Event()
    failures, ids = [], []
    ids_lock = threading.Lock()

    def clean():
        while not stop_cleaning.is_set():
            cleaner.run_pass()

    def submit_and_poll(n):
        client = app.test_client()
        try:
            for i in range(tasks_each):
                name = f"{prefix}-{n}-{i}"
                response = client.get(f"/async/echo/{name}")
                assert response.status_code == 202, response.status_code
                done = poll_done(client, response.headers["Location"])
                assert done.status_code == 200
                assert done.get_json()["view_args"] == {"name": name}
                with ids_lock:
                    ids.append(response.get_json()["id"])
        except Exception as error:  # reported by the test, from its own thread
            failures.append(error)

    cleaning = threading.Thread(target=clean)
    cleaning.start()
    threads = [threading.Thread(target=submit_and_poll, args=(n,)) for n in range(submitters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    stop_cleaning.set()
    cleaning.join(10)
    return ids, failures


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def raw_http(port, message, close_write=False, timeout=5):
    """Send ``message``, bytes exactly as given, to 127.0.0.1:``port``; the answer.

    With ``close_write`` the client then ends its side of the connection, as
    a client that stops mid-body does. Returns the answer's status, headers
    and body once the server has closed the connection too (at once, or when
    its keep-alive ends): by then it is done with the request, logs included.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(message)
        if close_write:
            connection.shutdown(socket.SHUT_WR)
        answer = http.client.HTTPResponse(connection)
        answer.begin()
        body = answer.read()
        while connection.recv(4096):
            pass
        return answer.status, dict(answer.getheaders()), body


class Gunicorn:
    """The service under gunicorn with its own gunicorn.conf.py, on 127.0.0.1."""

    def __init__(self, log, app=None, **env):
        self.port = free_port()
        self.log = log
        environment = child_env(
            HOST="127.0.0.1", PORT=str(self.port), FLASK_SECRET_KEY="test-secret", **env
        )
        command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*command, app] if app else command,
                cwd=PROJECT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self.healthy, timeout=20, what="gunicorn to answer /health")

    def get(self, path, headers=None):
        return self.call("GET", path, headers)

    def call(self, method, path, headers=None):
        """``method path`` with ``headers``: the answer's status, headers and body."""
        url = f"http://127.0.0.1:{self.port}{path}"
        request = urllib.request.Request(url, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(request, timeout=5) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def healthy(self):
        if self.process.poll() is not None:
            raise AssertionError(f"gunicorn exited:\n{self.log.read_text()}")
        try:
            return self.get("/health")[0] == 200
        except OSError:
            return False

    def terminate(self):
        """SIGTERM; return the seconds until the process exited."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)
        return time.monotonic() - started

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


class Prometheus:
    """A real Prometheus server (Debian's ``prometheus``) on 127.0.0.1, scraping
    ``/metrics`` of the servers on ``ports`` every second with ``token``."""

    def __init__(self, executable, folder, ports, token):
        self.port = free_port()
        config = folder / "prometheus.yml"
        # YAML reads JSON.
        scrape = {
            "job_name": "service",
            "authorization": {"credentials": token},
            "static_configs": [{"targets": [f"127.0.0.1:{port}" for port in ports]}],
        }
        settings = {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
        config.write_text(json.dumps({"global": settings, "scrape_configs": [scrape]}))
        self.log = folder / "prometheus.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    executable,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self.ready, timeout=30, what="Prometheus to start")

    def ready(self):
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{self.log.read_text()}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return False

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def query(self, expression):
        """What ``expression`` is now, through the HTTP API: ``{labels: value}``."""
        query = urllib.parse.urlencode({"query": expression})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{query}", timeout=5) as answer:
            body = json.load(answer)
        assert body["status"] == "success", body
        return {
            tuple(sorted(result["metric"].items())): float(result["value"][1])
            for result in body["data"]["result"]
        }

    def settles(self, expression, expected, timeout=30.0):
        """Wait until ``query(expression)`` is ``expected``; fail, saying what it was, if not."""
        deadline = time.monotonic() + timeout
        while (found := self.query(expression)) != expected:
            if time.monotonic() > deadline:
                raise AssertionError(f"{expression} is {found}, not {expected}")
            _pause(0.1)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
