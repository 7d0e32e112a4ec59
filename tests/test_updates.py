"""U2: a project baked with cruft from an older template takes today's with ``cruft update``.

The older template is made here from the current one by a known change, in
a repository of its own, so the test needs none of this repository's history
(CI's clone may be shallow) and sees uncommitted template changes as the
other tests do. The change covers what updates must carry: a line of every
REST layer's module (which a bake renames to ``routes.py``), a file the
template has since removed, and a file it has since added.
"""

import json
import sys

import pytest

from conftest import TEMPLATE, clean_env, run

PROJECT_TEMPLATE = TEMPLATE / "{{cookiecutter.project_slug}}"
LAYERS = PROJECT_TEMPLATE / "src" / "{{cookiecutter.project_slug}}" / "_rest_layers"
REMOVED_SINCE = "OLD_NOTES.md"  # in the older template only
ADDED_SINCE = "tests/test_task_client.py"  # in today's template only
OLDER_LAYER_DOCSTRING = '"""The routes, as an older template wrote them."""'

CRUFT = [sys.executable, "-m", "cruft"]


def git_env(tmp_path):
    """Git with an identity and settings of its own, whatever this machine's are."""
    config = tmp_path / "gitconfig"
    config.write_text(
        "[user]\n\tname = Template Test\n\temail = template-test@example.com\n"
        "[init]\n\tdefaultBranch = main\n",
        encoding="utf-8",
    )
    env = clean_env(GIT_CONFIG_GLOBAL=str(config), GIT_CONFIG_NOSYSTEM="1")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory):
    """``(repository, older commit, today's commit)`` of a copy of this template."""
    home = tmp_path_factory.mktemp("template-repo")
    env = git_env(home)
    repo = home / "template"
    files = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], TEMPLATE
    ).stdout.split("\0")
    for name in filter(None, files):
        source = TEMPLATE / name
        if source.is_file():
            target = repo / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())

    def git(*args):
        return run(["git", *args], repo, env=env, timeout=60).stdout.strip()

    git("init", "-q")
    today = {path: path.read_bytes() for path in (repo / LAYERS.relative_to(TEMPLATE)).iterdir()}
    added = repo / PROJECT_TEMPLATE.name / ADDED_SINCE
    added_text = added.read_bytes()
    # The older template: every layer's first line differs, one file more, one less.
    for path, text in today.items():
        _, rest = text.split(b"\n", 1)
        path.write_bytes(OLDER_LAYER_DOCSTRING.encode() + b"\n" + rest)
    (repo / PROJECT_TEMPLATE.name / REMOVED_SINCE).write_text("Notes of an older template.\n")
    added.unlink()
    git("add", "-A")
    git("commit", "-q", "-m", "an older template")
    older = git("rev-parse", "HEAD")
    for path, text in today.items():
        path.write_bytes(text)
    (repo / PROJECT_TEMPLATE.name / REMOVED_SINCE).unlink()
    added.write_bytes(added_text)
    git("add", "-A")
    git("commit", "-q", "-m", "today's template")
    return repo, older, git("rev-parse", "HEAD")


def cruft_create(repo, combination, output_dir, cookiecutter_config, env, checkout=None):
    output_dir.mkdir()
    command = [
        *CRUFT,
        "create",
        str(repo),
        "--no-input",
        "--config-file",
        str(cookiecutter_config),
        "--output-dir",
        str(output_dir),
        "--extra-context",
        json.dumps(combination),
    ]
    if checkout:
        command += ["--checkout", checkout]
    run(command, output_dir, env=env, timeout=120)
    (project,) = output_dir.iterdir()
    return project


def tree(project):
    """Every file of ``project`` but git's, as ``{relative path: bytes}``."""
    return {
        str(path.relative_to(project)): path.read_bytes()
        for path in sorted(project.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }


def test_an_update_from_an_older_template_gives_a_fresh_bake(
    template_repo, combination, cookiecutter_config, tmp_path
):
    repo, older, _ = template_repo
    env = git_env(tmp_path)
    project = cruft_create(repo, combination, tmp_path / "old", cookiecutter_config, env, older)
    assert (project / REMOVED_SINCE).exists()
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "baked"]):
        run(["git", *args], project, env=env)
    # cruft says it succeeded even when it leaves conflicts: git status tells.
    run([*CRUFT, "update", "-y"], project, env=env, timeout=120)
    status = run(["git", "status", "--porcelain"], project, env=env).stdout.splitlines()
    assert not [line for line in status if line[:2] in ("UU", "AA", "DU", "UD")], status
    assert not list(project.rglob("*.rej"))
    fresh = cruft_create(repo, combination, tmp_path / "fresh", cookiecutter_config, env)
    assert tree(project) == tree(fresh)
    run([*CRUFT, "check"], project, env=env)
    run([*CRUFT, "diff", "--exit-code"], project, env=env)


def test_an_update_keeps_the_users_own_changes(template_repo, cookiecutter_config, tmp_path):
    repo, older, _ = template_repo
    env = git_env(tmp_path)
    project = cruft_create(repo, {}, tmp_path / "old", cookiecutter_config, env, older)
    routes = project / "src" / project.name / "routes.py"
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "baked"]):
        run(["git", *args], project, env=env)
    own_line = "\n\n# Our own note, kept across template updates.\n"
    routes.write_text(routes.read_text(encoding="utf-8") + own_line, encoding="utf-8")
    run(["git", "commit", "-q", "-am", "our own change"], project, env=env)
    run([*CRUFT, "update", "-y"], project, env=env, timeout=120)
    text = routes.read_text(encoding="utf-8")
    assert text.endswith(own_line)
    assert not text.startswith(OLDER_LAYER_DOCSTRING)
    assert not list(project.rglob("*.rej"))
    assert "UU" not in run(["git", "status", "--porcelain"], project, env=env).stdout
