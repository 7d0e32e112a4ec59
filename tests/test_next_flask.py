"""G10: the baked suite passes on the next Flask (3.2), for each backend.

Flask 3.2's request-dispatch methods take the app context as their first
parameter; the engine's replay of a request calls them. A wheel built from
Flask's development branch is kept in ``tests/wheels/`` (``NEXT_FLASK_WHEEL``
names another). A plain-Flask bake
is installed for development into a fresh venv as its README says, the wheel
over the released Flask, and the bake's suite runs in that venv's Python,
warnings as errors. Without the wheel the test skips here and fails under
``CI=true``.
"""

import os
import re
import sys
import tomllib
from pathlib import Path

import pytest
from test_installed_project import readme_command
from test_python_versions import fresh_venv

from conftest import CHOICES, TEMPLATE, run

# Kept in the repository, so that any clone has it; a team's shared folder beside it next.
WHEEL_FOLDERS = (TEMPLATE / "tests" / "wheels", TEMPLATE.parent / "shared" / "wheels")


def next_flask_wheel():
    if os.environ.get("NEXT_FLASK_WHEEL"):
        wheel = Path(os.environ["NEXT_FLASK_WHEEL"])
        if not wheel.is_file():
            pytest.fail(f"NEXT_FLASK_WHEEL={wheel} is not a file", pytrace=False)
        return wheel
    wheels = sorted(wheel for folder in WHEEL_FOLDERS for wheel in folder.glob("flask-3.2*.whl"))
    if not wheels:
        message = f"no Flask 3.2 wheel in {WHEEL_FOLDERS[0]} (or NEXT_FLASK_WHEEL)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}: CI must test the next Flask", pytrace=False)
        pytest.skip(message)
    return wheels[-1]


def summary(output):
    """The suite's verdict, each distinct error once, and the first failing tests."""
    lines = output.splitlines()
    errors = sorted({line.strip() for line in lines if re.match(r"\w+(Error|Exception): ", line)})
    failed = [line for line in lines if re.match(r"(FAILED|ERROR) tests/", line)]
    return "\n".join([lines[-1] if lines else "", *errors[:10], *failed[:15]])


@pytest.mark.parametrize("backend", CHOICES["task_backend"])
def test_the_suite_passes_on_the_next_flask(bake, tmp_path, backend):
    wheel = next_flask_wheel()
    project = bake(rest_layer="flask", task_backend=backend)
    with (project / "pyproject.toml").open("rb") as file:
        pytest_config = tomllib.load(file)["tool"]["pytest"]["ini_options"]
    assert pytest_config["filterwarnings"] == ["error"], "warnings must fail the suite"

    env = fresh_venv(sys.executable, tmp_path)
    run(["bash", "-c", readme_command(project, r"\bpip install\b", "install")], project, env=env)
    run(["python", "-m", "pip", "install", str(wheel)], project, env=env, timeout=300)
    # Flask 3.2 has no flask.__version__ (3.1 deprecated it): ask the installed metadata.
    version = run(
        ["python", "-c", "import importlib.metadata as m; print(m.version('flask'))"],
        project,
        env=env,
    )
    assert version.stdout.strip().startswith("3.2"), version.stdout

    result = run(
        ["python", "-m", "pytest", "-p", "no:cacheprovider"],
        project,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"on Flask {version.stdout.strip()}:\n{summary(result.stdout)}"
