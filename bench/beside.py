"""Submit and poll ratios of this template beside another commit's, in one run.

Run from a checkout of the template::

    python bench/beside.py fae9bad                    # both bakes, about 10 minutes
    python bench/beside.py fae9bad --backend threads  # one of them
    python bench/beside.py HEAD --quick               # tiny counts, to check that it works

A change must not make ``@async_api`` dearer (issue 16, O4: the submit and
poll ratios within 0.03 of the tree before it). Two runs of ``run.py``, one
per tree, are minutes apart, and this shared machine's speed drifts by more
than that between them. Here both trees' bakes are served at once, each in
its own venv (the celery bakes with their own redis-server and worker), and
every round measures each tree's reference and task route back to back, the
trees taking turns to go first: both meet the same machine. While one tree
is measured, the other's processes are paused (``SIGSTOP``). The ratio of a
tree is the median of its rounds' ratios, as ``run.py`` takes it.

Beside each ratio: the CPU time and the context switches of the web
processes per request of the task route, which say where a difference comes
from (a context switch is a thread that gave up the CPU, or lost it).
"""

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import celerybench
from load import Generator, python_load
from project import BENCH_APP, BenchError, Server, bake, children, install
from run import (
    BENCH_DIR,
    CONNECTIONS,
    SERVICE_ENV,
    finished_instant_task,
    load_average,
    progress,
    wait_until_finished,
)

# The ratios O4 compares, and the most the change may move them.
TOLERANCE = 0.03
ROUNDS = 10
QUICK_ROUNDS = 1
LOAD_SECONDS = 2
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Figure:
    """One ratio of one tree: a task route against its reference, round after round."""

    reference: str  # path
    target: str  # path
    ratios: list = field(default_factory=list)
    rates: list = field(default_factory=list)  # the target's requests per second
    cpu: list = field(default_factory=list)  # CPU seconds per request of the target
    switches: list = field(default_factory=list)  # context switches per request


@dataclass
class Tree:
    """A template tree, its bake, and what is served from it."""

    label: str
    template: Path
    workdir: Path
    figures: dict = field(default_factory=dict)
    server: Server | None = None
    settle: object = None  # waits until no task of the tree's service is left to run
    stoppers: list = field(default_factory=list)
    processes: list = field(default_factory=list)  # each answers the pids of a part

    def signal(self, number):
        """Send ``number`` to every process of the tree's stack."""
        for pids in self.processes:
            for pid in pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, number)


def checkout(template, revision, workdir):
    """The template as it was at ``revision`` (``git archive``), in ``workdir``."""
    folder = workdir / "template"
    folder.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(template), "archive", revision],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if archive.returncode != 0:
        raise BenchError(f"git archive {revision} failed: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def web_counters(server):
    """CPU seconds and context switches of the server's web processes, so far.

    A context switch is counted per thread (``/proc/<pid>/task``): the pool's
    and gunicorn's threads live as long as the process.
    """
    cpu = switches = 0
    for pid in server.worker_pids:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                status = (task / "status").read_text()
            except OSError:
                continue  # the thread ended while we looked
            for line in status.splitlines():
                name, _, value = line.partition(":")
                if name.endswith("ctxt_switches"):  # voluntary and not
                    switches += int(value)
    return cpu, switches


def measure_round(tree, generator, seconds):
    """One round of every figure of ``tree``: reference, then task route."""
    url = tree.server.url
    for figure in tree.figures.values():
        reference = generator.measure(f"{url}{figure.reference}", seconds, CONNECTIONS)
        tree.settle()
        cpu, switches = web_counters(tree.server)
        target = generator.measure(f"{url}{figure.target}", seconds, CONNECTIONS)
        cpu_after, switches_after = web_counters(tree.server)
        tree.settle()
        figure.ratios.append(target.rate / reference.rate if reference.rate else 0.0)
        figure.rates.append(target.rate)
        if target.requests:
            figure.cpu.append((cpu_after - cpu) / target.requests)
            figure.switches.append((switches_after - switches) / target.requests)


def serve_threads(tree, venv_python, project):
    """Serve the threads bake of ``tree``; its figures: submit and poll."""
    (tree.workdir / "bench_app.py").write_text(BENCH_APP, encoding="utf-8")
    server = Server("service", venv_python, project, tree.workdir, "bench_app:app", SERVICE_ENV)
    tree.stoppers.append(server.stop)
    server.start()
    tree.server = server
    tree.processes.append(lambda: [server.process.pid, *server.worker_pids])
    tree.settle = lambda: wait_until_finished(server)
    python_load(f"{server.url}/plain", 10, CONNECTIONS, requests=200)
    python_load(f"{server.url}/instant", 10, CONNECTIONS, requests=200)
    status_path = finished_instant_task(server)
    tree.settle()
    tree.figures = {
        "submit, vs plain route": Figure("/plain", "/instant"),
        "poll a finished task, vs plain route": Figure("/plain", status_path),
    }


def serve_celery(tree, venv_python, project):
    """Serve the celery bake of ``tree`` as ``celerybench`` does; submit and poll."""
    workdir = tree.workdir
    (workdir / "celery_bench_app.py").write_text(celerybench.CELERY_APP, encoding="utf-8")
    redis_server = celerybench.RedisServer(workdir).start()
    tree.stoppers.append(redis_server.stop)
    env = celerybench.service_env(workdir, redis_server.url)
    worker = celerybench.CeleryWorker(venv_python, workdir, env)
    tree.stoppers.insert(0, worker.stop)
    worker.start()
    server = Server(
        "celery-service",
        venv_python,
        project,
        workdir,
        "celery_bench_app:app",
        env,
        celerybench.WEB_PROCESSES,
    )
    tree.stoppers.insert(0, server.stop)
    server.start(timeout=60)
    tree.server = server
    tree.processes += [
        lambda: [server.process.pid, *server.worker_pids],
        lambda: [worker.process.pid, *children(worker.process.pid)],  # and its pool
        lambda: [redis_server.process.pid],
    ]
    tree.settle = lambda: celerybench.wait_until_drained(redis_server.client)
    for path in ("/plain", "/instant", "/pattern/instant"):
        python_load(f"{server.url}{path}", 10, CONNECTIONS, requests=200)
    tree.settle()
    status_path = celerybench.finished_task(server.url)
    tree.figures = {
        "submit, vs Flask's pattern": Figure("/pattern/instant", "/instant"),
        "poll a finished task, vs plain route": Figure("/plain", status_path),
    }


def stop(tree):
    tree.signal(signal.SIGCONT)
    for stopper in tree.stoppers:
        try:
            stopper()
        except (OSError, RuntimeError, subprocess.SubprocessError) as error:
            progress(f"stopping {tree.label}: {error}")
    tree.stoppers.clear()


def compare(trees, backend, generator, rounds, seconds):
    """Bake, serve and measure ``backend`` of every tree, the rounds interleaved."""
    serve = serve_threads if backend == "threads" else serve_celery
    try:
        for tree in trees:
            progress(f"{backend}: baking and installing {tree.label}")
            answers = {} if backend == "threads" else {"task_backend": "celery"}
            project = bake(tree.template, tree.workdir, **answers)
            venv_python = install(project, tree.workdir)
            serve(tree, venv_python, project)
            # Paused while the other is measured: its timers (heartbeats,
            # leases, the cleaner) must not take the CPU from it.
            tree.signal(signal.SIGSTOP)
        for round_ in range(rounds):
            progress(f"{backend}: round {round_ + 1} of {rounds}")
            # Each tree goes first in every other round: neither always meets
            # the machine as the other left it.
            for tree in trees if round_ % 2 == 0 else trees[::-1]:
                tree.signal(signal.SIGCONT)
                measure_round(tree, generator, seconds)
                tree.signal(signal.SIGSTOP)
            progress(
                "; ".join(
                    f"{tree.label}: "
                    + ", ".join(f"{figure.ratios[-1]:.2f}" for figure in tree.figures.values())
                    for tree in trees
                )
            )
    finally:
        for tree in trees:
            stop(tree)


def report(trees, backend):
    """A Markdown table of ``backend``'s figures: each tree, and the change."""
    before, after = trees
    print(f"## task_backend={backend}\n")
    print(
        f"| figure | {before.label} | {after.label} | change | "
        f"O4: within {TOLERANCE} |\n| --- | --- | --- | --- | --- |"
    )
    for name in after.figures:
        old, new = before.figures[name], after.figures[name]
        change = statistics.median(new.ratios) - statistics.median(old.ratios)
        # Rounded as shown: a change shown as the tolerance has met it.
        shown = round(change, 2)
        verdict = "met" if abs(shown) <= TOLERANCE else "**missed**"
        print(f"| {name} | {cell(old)} | {cell(new)} | {shown:+.2f} | {verdict} |")
    print()
    for name in after.figures:
        old, new = before.figures[name], after.figures[name]
        # Both trees met the same machine within a round: the change of each
        # round drifts less than either tree's ratio does from round to round.
        changes = [n - o for o, n in zip(old.ratios, new.ratios, strict=True)]
        low, middle, high = statistics.quantiles(changes, n=4) if len(changes) > 1 else changes * 3
        print(
            f"- {name}, the change round by round: median {middle:+.3f}, "
            f"middle half {low:+.3f} to {high:+.3f}."
        )
        print(
            f"- {name}, per request of the task route, medians: CPU "
            f"{micro(old.cpu)} us -> {micro(new.cpu)} us; context switches "
            f"{median(old.switches):.1f} -> {median(new.switches):.1f}."
        )
    print()


def cell(figure):
    ratio = statistics.median(figure.ratios)
    rate = statistics.median(figure.rates)
    spread = f"{min(figure.ratios):.2f} to {max(figure.ratios):.2f}"
    return f"{ratio:.2f} x ({rate:,.0f} req/s; rounds {spread})"


def median(values):
    return statistics.median(values) if values else float("nan")


def micro(values):
    return f"{median(values) * 1e6:,.0f}"


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Submit and poll ratios of this template beside another commit's."
    )
    parser.add_argument("revision", help="the commit to measure beside this tree (fae9bad, say)")
    parser.add_argument("--backend", choices=("threads", "celery", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"default {ROUNDS}")
    parser.add_argument("--quick", action="store_true", help="one short round: check that it runs")
    parser.add_argument(
        "--load", choices=("auto", "wrk", "python"), default="auto", help="as run.py's"
    )
    args = parser.parse_args(argv)
    rounds, seconds = (QUICK_ROUNDS, 1) if args.quick else (args.rounds, LOAD_SECONDS)
    template = BENCH_DIR.parent
    backends = ("threads", "celery") if args.backend == "both" else (args.backend,)
    loads = [f"{load_average():.1f}"]
    # Removed once the run succeeds; kept otherwise, for the servers' logs.
    workdir = tempfile.mkdtemp(prefix="async-flask-beside-")
    try:
        generator = Generator(args.load)
        progress(f"load generator: {generator.name}")
        measured = {}
        for backend in backends:
            trees = []
            for label, make in (
                (args.revision, lambda folder: checkout(template, args.revision, folder)),
                ("this tree", lambda folder: template),
            ):
                folder = Path(workdir) / backend / label
                folder.mkdir(parents=True)
                trees.append(Tree(label, make(folder), folder))
            compare(trees, backend, generator, rounds, seconds)
            measured[backend] = trees
            loads.append(f"{load_average():.1f}")
    except (BenchError, RuntimeError, OSError, subprocess.SubprocessError) as error:
        print(f"ERROR: could not measure: {error}", file=sys.stderr)
        print(f"# the bakes and their servers' logs are kept in {workdir}", file=sys.stderr)
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    for backend, trees in measured.items():
        report(trees, backend)
    print(
        f"{rounds} round(s) of {seconds} s loads per route and tree, {generator.name}, "
        f"{CONNECTIONS} connections, on {os.cpu_count()} CPUs; load averages (1 min) "
        f"at start and after each bake: {', '.join(loads)}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
