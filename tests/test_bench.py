"""B1-B2: the benchmark's own code runs, end to end, and prints every row.

``bench/run.py --quick`` bakes, installs into a fresh venv, serves with
gunicorn and measures every figure with tiny counts. Nothing here looks at the
figures themselves: a slow or busy machine must not fail a test.
"""

import shutil
import subprocess
import sys

from conftest import TEMPLATE, clean_env

ROWS = (
    "submit an instant task",
    "poll a finished task",
    "memory per retained finished task",
    "peak OS threads",
    "one cleaner pass",
    "SIGTERM to exit, idle",
)


def table_rows(output):
    """The Markdown table's body rows, each as its list of cells."""
    lines = [line for line in output.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def test_the_quick_benchmark_prints_every_row():
    # wrk where it is installed already; the tests never install it.
    load = "wrk" if shutil.which("wrk") else "python"
    result = subprocess.run(
        [sys.executable, str(TEMPLATE / "bench" / "run.py"), "--quick", "--load", load],
        cwd=TEMPLATE,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    report = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, report

    rows = table_rows(result.stdout)
    assert len(rows) == len(ROWS), report
    for row, name in zip(rows, ROWS, strict=True):
        assert row[0].startswith(name), report
        assert len(row) == 7, row  # figure, measured, reference, vs, original, target, verdict
        assert row[-1] in ("met", "**missed**"), row
    assert "Load generator:" in result.stdout, report
