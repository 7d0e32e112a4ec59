"""The project under test: bake it, install it, and serve it with gunicorn.

Everything lives in one temporary folder: the baked project, its virtual
environment, the two small WSGI modules the benchmark serves, and the servers'
logs. Servers listen on 127.0.0.1 only.
"""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

# The package name of the default bake (T2: derived from "Async Flask Service").
PACKAGE = "async_flask_service"

# The body both benchmark routes answer: the plain one synchronously, the
# instant task through its status URL.
BODY = {"answer": "The answer is: bench"}

# The app under load: the baked service plus the benchmark's routes. The
# positional app on gunicorn's command line overrides the conf's ``wsgi_app``.
BENCH_APP = f'''\
"""The baked service with the benchmark's routes, registered before any request."""

import os
import time

from {PACKAGE} import async_api, create_app, current_task
from {PACKAGE}.tasks import task_engine

BODY = {BODY!r}
SLOW_SECONDS = float(os.environ.get("BENCH_SLOW_SECONDS", "2"))

app = create_app()


@app.get("/plain")
def plain():
    return BODY


@app.get("/instant")
@async_api
def instant():
    return BODY


@app.get("/slow")
@async_api
def slow():
    time.sleep(SLOW_SECONDS)
    return BODY


@app.get("/bench/tasks")
def held_tasks():
    """How many tasks the store holds, how many have not finished, and the pool's size."""
    store = task_engine().backend.store
    return {{
        "held": len(store),
        "unfinished": len(store.unfinished()),
        "max_workers": app.config["TASK_MAX_WORKERS"],
    }}
'''

# The reference for threads and shutdown: Flask alone under the same server.
PLAIN_APP = f'''\
"""A plain Flask app with one route, served by the same gunicorn conf."""

from flask import Flask

app = Flask(__name__)


@app.get("/health")
def health():
    return {{"status": "ok"}}


@app.get("/plain")
def plain():
    return {BODY!r}
'''


# The routes of the Prefer: wait figures (waiting.py), in both bench apps.
WAIT_ROUTES = '''

@app.get("/half")
@async_api
def half():
    time.sleep(0.5)
    return BODY


@app.get("/hold")
@async_api
def hold():
    """A task that runs until it is cancelled (at most 60 s): it keeps polls held.

    It looks for its cancel five times a second: it should cost the server
    under load next to nothing, as a task waiting on I/O would.
    """
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not current_task.cancelled:
        time.sleep(0.2)
    return BODY
'''


class BenchError(RuntimeError):
    """Something the benchmark needs failed: it cannot measure."""


def run_step(command, what, *, cwd=None, env=None, timeout=300):
    """Run one setup command; raise ``BenchError`` with its output if it fails."""
    try:
        result = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BenchError(f"{what} failed: {error}") from error
    if result.returncode != 0:
        raise BenchError(f"{what} failed (exit {result.returncode}):\n{result.stdout[-3000:]}")
    return result.stdout


def bake(template, workdir, **answers):
    """Bake the default project (with ``answers``) with the cookiecutter CLI; return its folder.

    A config file of our own keeps cookiecutter's caches and replay files in
    ``workdir``, away from the user's home.
    """
    config = workdir / "cookiecutter.yaml"
    config.write_text(
        f"cookiecutters_dir: {json.dumps(str(workdir / 'cookiecutters'))}\n"
        f"replay_dir: {json.dumps(str(workdir / 'replay'))}\n",
        encoding="utf-8",
    )
    output = workdir / "baked"
    command = [sys.executable, "-m", "cookiecutter", str(template), "--no-input"]
    command += ["--config-file", str(config), "--output-dir", str(output)]
    command += [f"{key}={value}" for key, value in answers.items()]
    run_step(command, "baking the template", timeout=120)
    project = output / PACKAGE
    if not (project / "gunicorn.conf.py").is_file():
        raise BenchError(f"the bake made no {project}/gunicorn.conf.py")
    return project


def install(project, workdir):
    """Install the baked project into a fresh venv; return that venv's python."""
    venv = workdir / "venv"
    run_step([sys.executable, "-m", "venv", str(venv)], "creating a venv", timeout=120)
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run_step([*pip, str(project)], "installing the baked project", timeout=300)
    return python


def write_apps(workdir):
    """Write ``bench_app.py`` and ``plain_app.py`` into ``workdir``."""
    (workdir / "bench_app.py").write_text(BENCH_APP + WAIT_ROUTES, encoding="utf-8")
    (workdir / "plain_app.py").write_text(PLAIN_APP, encoding="utf-8")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url, timeout=5):
    """``(status, body bytes)`` of a GET, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def children(pid):
    """Ids of the processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # the process ended while we looked
        # The command name, in parentheses, may hold spaces: split after it.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def proc_status(pid, field):
    """A number from ``/proc/<pid>/status``: ``Threads``, or ``VmRSS`` in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            number, *unit = value.split()
            return int(number) * (1024 if unit == ["kB"] else 1)
    raise BenchError(f"/proc/{pid}/status has no {field}")


class Server:
    """One gunicorn arbiter with the baked ``gunicorn.conf.py``, and its worker processes.

    ``workers``: how many worker processes the conf starts (the threads bake
    has one, whose threads and memory the benchmark reads).
    """

    def __init__(self, name, venv_python, project, workdir, app=None, env=None, workers=1):
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"{name}.log"
        self._command = [str(venv_python), "-m", "gunicorn", "-c", "gunicorn.conf.py"]
        if app is not None:
            self._command.append(app)
        self._cwd = project
        self._env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FLASK_")},
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "PYTHONPATH": str(workdir),
            **(env or {}),
        }
        self.process = None
        self.worker_pid = None
        self.worker_pids = []
        self._workers = workers
        self._log_start = 0

    def start(self, timeout=30):
        """Start gunicorn and wait until ``/health`` answers 200 and the worker is known.

        ``start`` again after a stop restarts it on the same port; its log
        goes on in the same file.
        """
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self._command, cwd=self._cwd, env=self._env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} server exited at start:\n{self.log_tail()}")
            if self._healthy():
                self.worker_pids = children(self.process.pid)
                if len(self.worker_pids) == self._workers and self._all_answered():
                    self.worker_pid = self.worker_pids[0]
                    return self
            time.sleep(0.05)  # a poll interval, not a guess at readiness
        raise BenchError(
            f"{self.name} server did not answer /health with {self._workers} "
            f"worker(s) in {timeout} s:\n{self.log_tail()}"
        )

    def _healthy(self):
        try:
            return http_get(f"{self.url}/health", timeout=1)[0] == 200
        except OSError:
            return False

    def _all_answered(self):
        """Whether every worker has answered a request: none is still booting.

        With several workers the conf's access log names the process (pid=<n>).
        """
        if self._workers == 1:
            return True
        with open(self.log_path, "rb") as log:
            log.seek(self._log_start)  # this start's lines only
            text = log.read().decode(errors="replace")
        return len(set(re.findall(r"pid=<(\d+)>", text))) >= self._workers

    def threads(self):
        return proc_status(self.worker_pid, "Threads")

    def rss(self):
        return proc_status(self.worker_pid, "VmRSS")

    def terminate(self, timeout):
        """SIGTERM the arbiter; return seconds until it exited, or None past ``timeout``."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return time.monotonic() - started

    def stop(self):
        """Stop the server whatever its state: SIGTERM, then SIGKILL after 10 s."""
        if self.process is None or self.process.poll() is not None:
            return
        if self.terminate(10) is not None:
            return
        self.process.kill()
        self.process.wait()
        # The workers outlive a killed arbiter: end them too, by their ids.
        for pid in self.worker_pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def log_tail(self, lines=30):
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
