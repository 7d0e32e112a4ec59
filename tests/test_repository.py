"""T5: the template repository's layout, and the commands its README gives."""

import os
import re
import sys

from conftest import COOKIECUTTER_JSON, TEMPLATE, clean_env, run

FENCED_BASH = re.compile(r"^```bash[ \t]*\n(.*?)^```", re.DOTALL | re.MULTILINE)


def readme():
    return (TEMPLATE / "README.md").read_text(encoding="utf-8")


def readme_commands():
    return [
        line.strip()
        for block in FENCED_BASH.findall(readme())
        for line in block.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def test_the_top_level_holds_what_the_contract_names():
    for name in ("cookiecutter.json", "README.md", "LICENSE", ".pre-commit-config.yaml"):
        assert (TEMPLATE / name).is_file(), name
    for name in ("{{cookiecutter.project_slug}}", "hooks", "tests"):
        assert (TEMPLATE / name).is_dir(), name


def test_the_readme_gives_the_bake_commands():
    commands = readme_commands()
    assert any(re.fullmatch(r"cookiecutter gh:[\w.-]+/[\w.-]+", command) for command in commands)
    assert any(re.fullmatch(r"cookiecutter (?!gh:)\S+", command) for command in commands)


def test_the_readme_gives_one_test_command_and_ci_runs_exactly_it():
    test_commands = [command for command in readme_commands() if "-m pytest" in command]
    assert len(test_commands) == 1, test_commands
    (test_command,) = test_commands
    assert "requirements-dev.txt" in test_command, "the command must install the test tools"

    ci_run = TEMPLATE / ".ci" / "run"
    assert os.access(ci_run, os.X_OK), ".ci/run is not executable"
    script = ci_run.read_text(encoding="utf-8")
    assert "set -euo pipefail" in script
    script_commands = [
        line.strip()
        for line in script.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert test_command in script_commands, f".ci/run does not run {test_command!r}"


def test_the_readme_explains_every_question():
    text = readme()
    for name in COOKIECUTTER_JSON:
        if not name.startswith("_"):
            assert f"`{name}`" in text, f"the README does not explain {name}"
    for variable in ("rest_layer", "task_backend"):
        for choice in COOKIECUTTER_JSON[variable]:
            assert f"`{choice}`" in text, f"the README does not explain {variable}={choice}"


def test_the_test_requirements_are_bounded():
    lines = (TEMPLATE / "requirements-dev.txt").read_text(encoding="utf-8").splitlines()
    requirements = [line.split("#")[0].strip() for line in lines]
    for requirement in filter(None, requirements):
        assert "<" in requirement and ">=" in requirement, f"unbounded: {requirement}"


def test_pytest_collects_only_the_template_tests():
    config = (TEMPLATE / "pytest.ini").read_text(encoding="utf-8")
    assert re.search(r"^testpaths\s*=\s*tests\s*$", config, re.MULTILINE)


def test_the_readme_installs_its_tools_with_pipx_not_the_system_pip():
    """``python3 -m pip install`` stops on Debian's and Ubuntu's own Python (PEP 668)."""
    commands = readme_commands()
    system_pip = [c for c in commands if re.match(r"(sudo )?(python3? -m pip|pip3?) install\b", c)]
    assert not system_pip, f"installs into the system's Python: {system_pip}"
    assert any(re.fullmatch(r'pipx install "cookiecutter[^"]*"', c) for c in commands), commands
    assert any(re.fullmatch(r'pipx install "cruft[^"]*"', c) for c in commands), commands
    assert any(re.fullmatch(r'pipx inject --force cruft "typer<[^"]*"', c) for c in commands)


def test_the_readmes_pipx_commands_give_cookiecutter_and_cruft(tmp_path):
    """The README's pipx lines, run as given (pipx from PyPI, in a folder of its own)."""
    tool = tmp_path / "pipx-venv"
    run([sys.executable, "-m", "venv", str(tool)], tmp_path, timeout=120)
    run([str(tool / "bin" / "python"), "-m", "pip", "install", "pipx"], tmp_path, timeout=300)
    home, bin_dir = tmp_path / "pipx-home", tmp_path / "pipx-bin"
    env = clean_env(
        PATH=f"{bin_dir}{os.pathsep}{tool / 'bin'}{os.pathsep}{os.environ['PATH']}",
        PIPX_HOME=str(home),
        PIPX_BIN_DIR=str(bin_dir),
        PIPX_MAN_DIR=str(tmp_path / "pipx-man"),
    )
    for command in readme_commands():
        if command.startswith("pipx "):
            run(["bash", "-c", command], tmp_path, env=env, timeout=300)
    assert "Cookiecutter 2." in run(["cookiecutter", "--version"], tmp_path, env=env).stdout
    run(["cruft", "--help"], tmp_path, env=env)
    typer = run(
        [
            str(home / "venvs" / "cruft" / "bin" / "python"),
            "-c",
            "import typer; print(typer.__version__)",
        ],
        tmp_path,
        env=env,
    ).stdout.strip()
    assert tuple(int(part) for part in typer.split(".")[:2]) < (0, 29), typer
