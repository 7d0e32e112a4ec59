"""The benchmark: what ``@async_api`` costs in the baked service, for each task backend.

Run from a checkout of the template::

    python bench/run.py                    # both bakes, about 5 minutes
    python bench/run.py --backend celery   # one of them
    python bench/run.py --quick            # tiny counts, to check that it works

For each task backend it bakes the project into a temporary folder, installs
it into a fresh venv, serves it with gunicorn and the baked
``gunicorn.conf.py`` on 127.0.0.1 (the celery bake with a Celery worker and a
private redis-server, ``celerybench.py``), and prints a Markdown table: every
figure beside its reference measured in the same run, and the target (issues
4 and 10). It exits non-zero only when it could not measure; a missed target
is a row of the table.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import celerybench
import waiting
from load import Generator, combined, python_load
from project import BenchError, Server, bake, http_get, install, write_apps
from table import print_celery_report, print_report

BENCH_DIR = Path(__file__).resolve().parent

# The original design's setup: gunicorn gthread, 1 worker x 8 threads, 8 connections.
CONNECTIONS = 8
# Settings of the service under load: no 503s, nothing expires during the run,
# and a graceful timeout of 5 s, the original design's, for a slow shutdown to show.
SERVICE_ENV = {
    "GUNICORN_THREADS": "8",
    "FLASK_SECRET_KEY": "bench",
    "FLASK_TASK_MAX_QUEUED": "1000000",
    "FLASK_TASK_RETENTION": "3600",
    "FLASK_TASK_SHUTDOWN_TIMEOUT": "5",
    "BENCH_SLOW_SECONDS": "2",
}


@dataclass(frozen=True)
class Sizes:
    """How much each figure measures: a full run, or a quick one for the smoke test."""

    load_seconds: int  # per round of a throughput figure
    load_rounds: int
    retained_tasks: int
    slow_tasks: int
    cleaner_tasks: int
    shutdown_rounds: int
    latency_tasks: int  # until the view's answer, each way (celery: also Flask's pattern)
    half_tasks: int  # tasks of 0.5 s, held and polled
    spread_tasks: int  # celery: tasks polled through every web process
    redis_tasks: int  # celery: retained tasks whose Redis memory is measured


FULL = Sizes(
    load_seconds=2,
    load_rounds=5,
    retained_tasks=20_000,
    slow_tasks=500,
    cleaner_tasks=100_000,
    shutdown_rounds=3,
    latency_tasks=100,
    half_tasks=20,
    spread_tasks=1_000,
    redis_tasks=5_000,
)
QUICK = Sizes(
    load_seconds=1,
    load_rounds=1,
    retained_tasks=500,
    slow_tasks=50,
    cleaner_tasks=2_000,
    shutdown_rounds=1,
    latency_tasks=5,
    half_tasks=2,
    spread_tasks=20,
    redis_tasks=200,
)


def held_tasks(server):
    """``{"held", "unfinished", "max_workers"}`` of the service under load."""
    status, body = http_get(f"{server.url}/bench/tasks")
    if status != 200:
        raise BenchError(f"/bench/tasks answered {status}")
    return json.loads(body)


def wait_until_finished(server, timeout=60):
    """Wait until every task the service holds has finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if held_tasks(server)["unfinished"] == 0:
            return
        time.sleep(0.05)  # poll interval
    raise BenchError(f"tasks were still unfinished after {timeout} s")


def finished_instant_task(server, timeout=10):
    """The status path of one instant task, once it has finished."""
    status, body = http_get(f"{server.url}/instant")
    if status != 202:
        raise BenchError(f"/instant answered {status}, not 202")
    status_path = json.loads(body)["status_url"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _ = http_get(f"{server.url}{status_path}")
        if status == 200:
            return status_path
        time.sleep(0.01)  # poll interval
    raise BenchError(f"the instant task {status_path} did not finish in {timeout} s")


def peak_threads(server, load, settle=0.5):
    """Run ``load()`` while sampling the worker's OS threads; return ``(peak, load's result)``.

    Sampling goes on for ``settle`` seconds after the load, in case threads
    start late.
    """
    peak = server.threads()
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.wait(0.002):
            peak = max(peak, server.threads())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = load()
        stop.wait(settle)
    finally:
        stop.set()
        sampler.join(5)
    return peak, result


def alternate(generator, reference, target, sizes, settle=None):
    """Load ``reference`` then ``target`` in each of ``sizes.load_rounds`` rounds.

    Returns both loads summed over the rounds and the median of the rounds'
    ratios of ``target`` to ``reference``. ``settle`` runs after each round.
    """
    references, targets, ratios = [], [], []
    for _ in range(sizes.load_rounds):
        references.append(generator.measure(reference, sizes.load_seconds, CONNECTIONS))
        targets.append(generator.measure(target, sizes.load_seconds, CONNECTIONS))
        if settle is not None:
            settle()
        plain_rate = references[-1].rate
        ratios.append(targets[-1].rate / plain_rate if plain_rate else 0.0)
    return combined(references), combined(targets), statistics.median(ratios)


def measure_service(generator, server, sizes):
    """Figures 1 to 4 on the service under load, in this order, on one server."""
    results = {"idle_threads": server.threads()}
    url = server.url
    # Warm up: imports, the task pool's threads, the first finished task.
    python_load(f"{url}/plain", 10, CONNECTIONS, requests=200)
    python_load(f"{url}/instant", 10, CONNECTIONS, requests=200)
    status_path = finished_instant_task(server)
    wait_until_finished(server)

    # Each task route alternates with its plain reference, round after round,
    # so both run on the same state of the process and of the machine: this
    # shared machine's speed drifts by a tenth within a minute. The ratio is
    # the median of the rounds' ratios.
    progress("load: plain and submit, alternating")
    results["plain_submit"], results["submit"], results["submit_ratio"] = alternate(
        generator,
        f"{url}/plain",
        f"{url}/instant",
        sizes,
        settle=lambda: wait_until_finished(server),
    )
    progress("load: plain and poll, alternating")
    results["plain_poll"], results["poll"], results["poll_ratio"] = alternate(
        generator, f"{url}/plain", f"{url}{status_path}", sizes
    )

    # TASK_MAX_WAITING (half of gunicorn's 8 threads) held at once.
    results["wait"] = waiting.measure(generator, server.url, sizes, 4, CONNECTIONS, progress)
    wait_until_finished(server)

    progress("memory: the plain route, for reference")
    rss = server.rss()
    results["plain_memory"] = generator.measure(f"{url}/plain", sizes.load_seconds, CONNECTIONS)
    results["plain_rss_growth"] = server.rss() - rss
    progress(f"memory: {sizes.retained_tasks} instant tasks")
    before_rss, before = server.rss(), held_tasks(server)["held"]
    filled = python_load(f"{url}/instant", 120, CONNECTIONS, requests=sizes.retained_tasks)
    wait_until_finished(server)
    retained = held_tasks(server)["held"] - before
    results["memory"] = {"tasks": retained, "growth": server.rss() - before_rss, "load": filled}

    progress(f"threads: {sizes.slow_tasks} slow tasks")
    results["slow_peak"], results["slow"] = peak_threads(
        server, lambda: python_load(f"{url}/slow", 60, CONNECTIONS, requests=sizes.slow_tasks)
    )
    return results


def measure_plain_threads(venv_python, project, workdir, sizes):
    """The server's own threads: a plain Flask app under the same conf and load."""
    server = Server("plain-threads", venv_python, project, workdir, "plain_app:app", SERVICE_ENV)
    try:
        server.start()
        url = f"{server.url}/plain"
        peak, _ = peak_threads(
            server, lambda: python_load(url, 60, CONNECTIONS, requests=sizes.slow_tasks)
        )
        return peak
    finally:
        server.stop()


def measure_shutdown(venv_python, project, workdir, sizes):
    """Seconds from SIGTERM to exit of the idle service and of the plain app, median of rounds."""
    apps = {"service": None, "plain": "plain_app:app"}  # None: the conf's own wsgi_app
    seconds = {name: [] for name in apps}
    for round_ in range(sizes.shutdown_rounds):
        for name, app in apps.items():
            server = Server(
                f"{name}-sigterm-{round_}", venv_python, project, workdir, app, SERVICE_ENV
            )
            try:
                server.start()
                # Past the graceful timeout (5 s) the server is stuck: say so, do not wait.
                took = server.terminate(timeout=15)
                seconds[name].append(took if took is not None else float("inf"))
            finally:
                server.stop()
    return {name: statistics.median(values) for name, values in seconds.items()}


def measure_cleaner(venv_python, sizes):
    """Figure 5, in a process of its own that imports the baked package."""
    command = [
        str(venv_python),
        str(BENCH_DIR / "inprocess.py"),
        "--tasks",
        str(sizes.cleaner_tasks),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as error:
        raise BenchError("the cleaner pass took over 120 s") from error
    if result.returncode != 0:
        raise BenchError(f"the cleaner pass failed:\n{result.stdout}{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def load_average():
    """The machine's 1-minute load average: other work skews every figure."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


def progress(message):
    print(f"# {message}", file=sys.stderr, flush=True)


def benchmark(template, sizes, generator, workdir):
    """Every measurement of the threads bake; returns what its table needs."""
    progress(f"baking {template}")
    project = bake(template, workdir)
    progress("installing the baked project into a fresh venv")
    venv_python = install(project, workdir)
    write_apps(workdir)
    started_load = load_average()

    service = Server("service", venv_python, project, workdir, "bench_app:app", SERVICE_ENV)
    try:
        service.start()
        results = measure_service(generator, service, sizes)
        results["max_workers"] = held_tasks(service)["max_workers"]
        results["gunicorn_threads"] = int(SERVICE_ENV["GUNICORN_THREADS"])
    except (BenchError, RuntimeError, OSError) as error:
        raise BenchError(f"{error}\nThe end of the service's log:\n{service.log_tail()}") from error
    finally:
        service.stop()
    progress("threads of a plain Flask app")
    results["plain_threads"] = measure_plain_threads(venv_python, project, workdir, sizes)
    progress("SIGTERM to exit")
    results["shutdown"] = measure_shutdown(venv_python, project, workdir, sizes)
    progress(f"cleaner pass over {sizes.cleaner_tasks} tasks")
    results["cleaner"] = measure_cleaner(venv_python, sizes)
    results["generator"] = generator.name
    results["load_average"] = (started_load, load_average())
    return results


def benchmark_celery(template, sizes, generator, workdir):
    """Every measurement of the celery bake; returns what its table needs."""
    progress(f"baking {template} with task_backend=celery")
    project = bake(template, workdir, task_backend="celery")
    progress("installing the celery bake into a fresh venv")
    venv_python = install(project, workdir)
    started_load = load_average()
    results = celerybench.benchmark(generator, venv_python, project, workdir, sizes, progress)
    results["generator"] = generator.name
    results["load_average"] = (started_load, load_average())
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description="Benchmark the baked async Flask service.")
    parser.add_argument("--quick", action="store_true", help="tiny counts: check that it runs")
    parser.add_argument(
        "--template",
        type=Path,
        default=BENCH_DIR.parent,
        help="the template checkout to bake (default: the one holding bench/)",
    )
    parser.add_argument(
        "--load",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk (installed from apt when missing, as root), Python, "
        "or auto: wrk if it can be had, else Python (default)",
    )
    parser.add_argument(
        "--backend",
        choices=("threads", "celery", "both"),
        default="both",
        help="which bake to measure (default: both, one table each)",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    started = time.monotonic()
    backends = ("threads", "celery") if args.backend == "both" else (args.backend,)
    try:
        generator = Generator(args.load)
        progress(f"load generator: {generator.name}")
        results = {}
        with tempfile.TemporaryDirectory(prefix="async-flask-bench-") as workdir:
            for backend in backends:
                folder = Path(workdir) / backend
                folder.mkdir()
                measure = benchmark if backend == "threads" else benchmark_celery
                results[backend] = measure(args.template.resolve(), sizes, generator, folder)
    except (BenchError, RuntimeError, OSError, ValueError) as error:
        print(f"ERROR: could not measure: {error}", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - started
    if "threads" in results:
        print("## task_backend=threads\n")
        print_report(results["threads"], sizes, quick=args.quick)
    if "celery" in results:
        print("\n## task_backend=celery\n")
        print_celery_report(results["celery"], sizes, quick=args.quick)
    print(f"\nWhole run: {elapsed:.0f} s, on {os.cpu_count()} CPUs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
