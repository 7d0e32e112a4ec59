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


def git_env(pre_commit_home, tmp_path):
    """Git and pre-commit with settings of their own, whatever this machine's are."""
    git_config = tmp_path / "gitconfig"
    git_config.write_text(
        "[init]\n\tdefaultBranch = main\n"
        "[user]\n\tname = Template Test\n\temail = template-test@example.com\n",
        encoding="utf-8",
    )
    env = clean_env(
        PRE_COMMIT_HOME=pre_commit_home,
        GIT_CONFIG_GLOBAL=str(git_config),
        GIT_CONFIG_NOSYSTEM="1",
    )
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(name, None)
    return env


def first_commit(project, env):
    """``git init``, install the hooks, commit everything; a ``git(*args)`` for more."""

    def git(*args, check=True):
        return run(["git", *args], project, env=env, timeout=120, check=check)

    git("init", "-q")
    run([PYTHON, "-m", "pre_commit", "install"], project, env=env, timeout=60)
    git("add", "-A")
    git("commit", "-q", "-m", "init")
    return git


def test_the_first_commit_passes_the_hooks_unchanged(bake, combination, pre_commit_home, tmp_path):
    project = bake(**combination)
    git = first_commit(project, git_env(pre_commit_home, tmp_path))

    assert git("status", "--porcelain").stdout == ""
    assert git("rev-list", "--count", "HEAD").stdout.strip() == "1"
    committed = set(git("ls-files").stdout.split())
    assert {".pre-commit-config.yaml", "pyproject.toml", "README.md"} <= committed


CONFLICTED = """def answer():
<<<<<<< before updating
    return 1
=======
    return 2
>>>>>>> after updating
"""


@pytest.mark.parametrize(
    ("left_behind", "text", "hook"),
    [
        ("src/notes.py", CONFLICTED, "check for merge conflicts"),
        ("src/notes.py.rej", "@@ -1 +1 @@\n-old\n+new\n", "refuse .rej files"),
    ],
    ids=["conflict markers", "rej file"],
)
def test_the_hooks_refuse_what_a_template_update_left_behind(
    bake, pre_commit_home, tmp_path, left_behind, text, hook
):
    """cruft reports success even when it leaves these; the commit must not pass."""
    project = bake()
    git = first_commit(project, git_env(pre_commit_home, tmp_path))
    (project / left_behind).write_text(text, encoding="utf-8")
    git("add", "-A")
    refused = git("commit", "-q", "-m", "take the template update", check=False)
    assert refused.returncode != 0
    assert any(line.startswith(hook) and "Failed" in line for line in refused.stdout.splitlines())
    assert git("rev-list", "--count", "HEAD").stdout.strip() == "1"
