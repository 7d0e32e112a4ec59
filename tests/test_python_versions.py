"""G1: every bake declares Python 3.11+, and installs and passes its suite on each version.

The flask-smorest bake on the threads backend stands for all: it is the one
that could not install on 3.10 (marshmallow 4.4 needs 3.11) while declaring
3.10. For each supported version found on this machine (PATH, else pyenv's
versions), it goes into a fresh virtual environment with the baked README's
install command, and its suite runs with the README's test command. A version
that cannot be found skips here, and fails under ``CI=true``.
"""

import glob
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from test_installed_project import readme_command

from conftest import clean_env, run

SUPPORTED = ["3.11", "3.12", "3.13"]
# The flask-smorest bake: its dependencies were the first to leave 3.10 behind.
COMBINATION = {"rest_layer": "flask-smorest", "task_backend": "threads"}


def pyenv_root():
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    pyenv = shutil.which("pyenv")
    if pyenv:
        result = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
        if result.returncode == 0 and result.stdout.strip():
            return Path(result.stdout.strip())
    return Path.home() / ".pyenv"


def release(path):
    """(3, 12, 1) of ``.../versions/3.12.1/bin/python3.12``, to pick the newest patch."""
    found = re.search(r"/(\d+)\.(\d+)\.(\d+)/bin/", str(path))
    return tuple(int(part) for part in found.groups()) if found else (0,)


def find_python(version):
    """An interpreter of ``version`` (``"3.12"``): PATH's ``python3.12``, else pyenv's newest."""
    candidates = []
    shims = str(pyenv_root() / "shims")
    on_path = shutil.which(f"python{version}")
    # A pyenv shim answers only for the versions selected in the shell: skip it.
    if on_path and not on_path.startswith(shims):
        candidates.append(on_path)
    pattern = str(pyenv_root() / "versions" / f"{version}.*" / "bin" / f"python{version}")
    candidates += sorted(glob.glob(pattern), key=release, reverse=True)
    for candidate in candidates:
        result = subprocess.run(
            [candidate, "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0 and result.stdout.strip() == version:
            return candidate
    return None


def python_or_skip(version):
    python = find_python(version)
    if python is None:
        message = f"no Python {version} on PATH or in {pyenv_root() / 'versions'}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}: CI must test every supported version", pytrace=False)
        pytest.skip(message)
    return python


def fresh_venv(python, folder):
    """A virtual environment made by ``python``, and the environment that activating it gives."""
    venv = folder / ".venv"
    run([python, "-m", "venv", str(venv)], folder, timeout=120)
    env = clean_env(
        VIRTUAL_ENV=str(venv),
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    env.pop("PYTHONHOME", None)
    env.pop("PIP_NO_CACHE_DIR", None)  # pip's cache keeps three installs fast
    return env


def test_every_bake_declares_python_3_11_and_newer(baked, combination):
    project = baked(combination)
    with (project / "pyproject.toml").open("rb") as file:
        pyproject = tomllib.load(file)
    assert pyproject["project"]["requires-python"] == ">=3.11"
    assert pyproject["tool"]["ruff"]["target-version"] == "py311"
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert "Python 3.11 or newer" in readme
    assert "3.10" not in readme


@pytest.mark.parametrize("version", SUPPORTED)
def test_a_bake_installs_and_passes_its_suite_on(bake, tmp_path, version):
    python = python_or_skip(version)
    project = bake(**COMBINATION)
    env = fresh_venv(python, tmp_path)
    run(["bash", "-c", readme_command(project, r"\bpip install\b", "install")], project, env=env)
    result = run(["python", "-c", "import sys; print(sys.version)"], project, env=env)
    assert result.stdout.startswith(f"{version}."), result.stdout
    command = readme_command(project, r"^(python -m )?pytest\b", "test")
    result = run(["bash", "-c", command], project, env=env, timeout=600)
    assert re.search(r"\d+ passed", result.stdout.splitlines()[-1]), result.stdout
