"""T4: a freshly baked project's first ``git commit`` passes its own pre-commit hooks.

The hooks must pass on the files exactly as baked: a hook that rewrites a file
(ruff format, end-of-file fixer, ...) fails the commit.
"""

import os

import pytest

from conftest import PYTHON, clean_env, run


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory):
    """Hook environments shared by every test (and by every run, if set outside)."""
    if os.environ.get("PRE_COMMIT_HOME"):
        return os.environ["PRE_COMMIT_HOME"]
    # The parent of the base temp is shared by the xdist workers of one run.
    return str(tmp_path_factory.getbasetemp().parent / "pre-commit-home")


def test_the_first_commit_passes_the_hooks_unchanged(bake, combination, pre_commit_home, tmp_path):
    project = bake(**combination)
    git_config = tmp_path / "gitconfig"
    git_config.write_text("[init]\n\tdefaultBranch = main\n", encoding="utf-8")
    env = clean_env(
        PRE_COMMIT_HOME=pre_commit_home,
        GIT_CONFIG_GLOBAL=str(git_config),
        GIT_CONFIG_NOSYSTEM="1",
    )
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(name, None)

    def git(*args):
        return run(["git", *args], project, env=env, timeout=60)

    git("init", "-q")
    git("config", "user.name", "Template Test")
    git("config", "user.email", "template-test@example.com")
    run([PYTHON, "-m", "pre_commit", "install"], project, env=env, timeout=60)
    git("add", "-A")
    git("commit", "-q", "-m", "init")

    assert git("status", "--porcelain").stdout == ""
    assert git("rev-list", "--count", "HEAD").stdout.strip() == "1"
    committed = set(git("ls-files").stdout.split())
    assert {".pre-commit-config.yaml", "pyproject.toml", "README.md"} <= committed
