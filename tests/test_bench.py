"""The benchmark's own code runs, end to end, for both task backends, and prints every row.

``bench/run.py --quick`` bakes each backend, installs it into a fresh venv,
serves it with gunicorn (the celery bake with a private redis-server and a
Celery worker) and measures every figure with tiny counts. Nothing here looks
at the figures themselves: a slow or busy machine must not fail a test.
"""

import shutil
import subprocess
import sys

from conftest import TEMPLATE, clean_env

# What Prefer: wait saves a client, on both bakes.
WAIT_ROWS = (
    "instant task, submit with Prefer: wait=5 until its answer",
    "task of 0.5 s, held (Prefer: wait=5)",
    "plain route while",
)
ROWS = {
    "threads": (
        "submit an instant task",
        "poll a finished task",
        "memory per retained finished task",
        "peak OS threads",
        "one cleaner pass",
        "SIGTERM to exit, idle",
        *WAIT_ROWS,
    ),
    "celery": (
        "submit an instant task",
        "poll a finished task",
        "instant task, submit until its answer is readable",
        "polls answered 404",
        "Redis memory per retained finished task",
        "SIGTERM to exit, idle web processes",
        *WAIT_ROWS,
    ),
}


def table_rows(section):
    """The Markdown table's body rows of one section, each as its list of cells."""
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def sections(output):
    """``{backend: its part of the report}``, split at ``## task_backend=<backend>``."""
    parts = output.split("## task_backend=")[1:]
    return {part.split("\n", 1)[0].strip(): part for part in parts}


def run_bench(script, *args):
    """Run ``bench/<script>`` with ``args``, with wrk where it is installed already.

    The tests never install wrk; without it the Python load generator runs.
    """
    load = "wrk" if shutil.which("wrk") else "python"
    return subprocess.run(
        [sys.executable, str(TEMPLATE / "bench" / script), *args, "--load", load],
        cwd=TEMPLATE,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=420,
    )


def test_the_quick_benchmark_prints_every_row():
    result = run_bench("run.py", "--quick")
    report = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, report

    found = sections(result.stdout)
    assert set(found) == set(ROWS), report
    for backend, names in ROWS.items():
        rows = table_rows(found[backend])
        assert len(rows) == len(names), report
        for row, name in zip(rows, names, strict=True):
            assert row[0].startswith(name), report
            assert len(row) == 7, row  # figure, measured, reference, vs, original, target, verdict
            assert row[-1] in ("met", "**missed**"), row
        assert "Load generator:" in found[backend], report
    assert "Redis round trips: submit" in found["celery"], report


def test_beside_prints_both_trees_ratios_and_their_change():
    # HEAD beside the working tree: the cheapest pair there is, threads alone.
    result = run_bench("beside.py", "HEAD", "--quick", "--backend", "threads")
    report = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, report
    found = sections(result.stdout)
    assert set(found) == {"threads"}, report
    rows = table_rows(found["threads"])
    assert [row[0] for row in rows] == [
        "submit, vs plain route",
        "poll a finished task, vs plain route",
    ], report
    for row in rows:
        # figure, HEAD's ratio, this tree's, the change, the verdict
        assert len(row) == 5 and all(" x (" in cell for cell in row[1:3]), row
        assert row[-1] in ("met", "**missed**"), row
    assert found["threads"].count("context switches") == 2, report
    assert found["threads"].count("the change round by round: median ") == 2, report
