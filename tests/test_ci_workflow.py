"""D3: every bake's CI workflow, and this repository's, and the checks they pass.

A bake's ``.github/workflows/ci.yml`` runs its git hooks, its tests on every
Python the template supports and builds its image; ``.github/dependabot.yml``
keeps its dependencies, base images and actions up to date. Both pass their
JSON Schemas (check-jsonschema's built-in ones) and zizmor, GitHub Actions'
security linter, with no finding, and every ``run:`` step is a command of the
baked README, so that the two cannot drift apart. This repository's own
workflow passes the same checks and runs ``.ci/run``.
"""

import re

import pytest
import yaml
from test_installed_project import readme_commands
from test_python_versions import SUPPORTED

from conftest import CHECK_JSONSCHEMA, TEMPLATE, ZIZMOR, clean_env, run

# `uses: owner/repo@<commit> # v1.2.3`: a tag can be moved, a commit cannot,
# and the comment says which release the commit is.
PINNED_USES = re.compile(r"^\s*(- )?uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")


def workflow_files(root):
    return sorted((root / ".github" / "workflows").glob("*.y*ml"))


def load_workflow(path):
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    # YAML 1.1, which PyYAML reads, takes the key `on` for true.
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def steps(workflow):
    """``(job id, step)`` of every step of every job."""
    return [(name, step) for name, job in workflow["jobs"].items() for step in job["steps"]]


def run_lines(workflow):
    return [step["run"].strip() for _, step in steps(workflow) if "run" in step]


def check_jsonschema(schema, *paths, cwd):
    run([CHECK_JSONSCHEMA, "--builtin-schema", schema, *map(str, paths)], cwd, timeout=60)


def zizmor(root):
    """zizmor on ``root``'s .github/ as a whole, its settings (zizmor.yml) included."""
    run([ZIZMOR, "--offline", ".github"], root, env=clean_env(NO_COLOR="1"), timeout=60)


def assert_least_privilege_and_pinned(path):
    """What every workflow here keeps to, whatever it runs."""
    workflow = load_workflow(path)
    triggers = set(workflow["on"])
    assert {"push", "pull_request"} <= triggers, triggers
    # pull_request_target runs a fork's code with this repository's secrets.
    assert "pull_request_target" not in triggers
    assert workflow["permissions"] in ({}, {"contents": "read"}), workflow["permissions"]
    assert workflow["concurrency"]["cancel-in-progress"] is True
    for name, job in workflow["jobs"].items():
        assert job.get("timeout-minutes"), f"job {name} has no timeout"
        assert set(job.get("permissions", {}).values()) <= {"read", "none"}, name
    for name, step in steps(workflow):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False, f"checkout in {name}"
    uses = [line for line in path.read_text(encoding="utf-8").splitlines() if "uses:" in line]
    assert uses
    unpinned = [line.strip() for line in uses if not PINNED_USES.match(line)]
    assert not unpinned, f"not pinned by commit with its release beside it: {unpinned}"


def test_the_workflow_and_dependabot_settings_pass_their_schemas(baked, combination):
    project = baked(combination)
    workflows = workflow_files(project)
    assert [path.name for path in workflows] == ["ci.yml"]
    check_jsonschema("vendor.github-workflows", *workflows, cwd=project)
    check_jsonschema("vendor.dependabot", project / ".github" / "dependabot.yml", cwd=project)


def test_zizmor_finds_nothing(baked, combination):
    # A rule .github/zizmor.yml relaxes is named there, with its reason.
    zizmor(baked(combination))


def test_every_run_step_is_a_readme_command(baked, combination):
    project = baked(combination)
    commands = readme_commands(project)
    workflow = load_workflow(project / ".github" / "workflows" / "ci.yml")
    missing = [line for line in run_lines(workflow) if line not in commands]
    assert not missing, f"run: steps that the README does not give: {missing}"


def test_the_workflow_runs_the_hooks_the_tests_and_the_image(baked, combination):
    project = baked(combination)
    workflow = load_workflow(project / ".github" / "workflows" / "ci.yml")
    assert_least_privilege_and_pinned(project / ".github" / "workflows" / "ci.yml")
    jobs = {
        name: [step.get("run", "").strip() for step in job["steps"]]
        for name, job in workflow["jobs"].items()
    }

    assert "pre-commit run --all-files" in jobs["pre-commit"]

    tests = workflow["jobs"]["tests"]
    assert tests["strategy"]["matrix"]["python-version"] == SUPPORTED
    assert jobs["tests"][-1] == "pytest"
    # The celery tests start a redis-server of their own: the runner must have one.
    installs_redis = [
        i for i, line in enumerate(jobs["tests"]) if "install -y redis-server" in line
    ]
    if combination["task_backend"] == "celery":
        assert installs_redis and installs_redis[0] < len(jobs["tests"]) - 1
    else:
        assert not installs_redis

    slug = project.name
    assert f"docker build -t {slug} ." in jobs["image"]
    probe = [line for line in jobs["image"] if line.startswith("curl ")]
    assert probe and probe[0].endswith("http://127.0.0.1:8000/readyz"), probe


def test_dependabot_watches_pip_docker_and_actions_after_a_cooldown(baked, combination):
    path = baked(combination) / ".github" / "dependabot.yml"
    updates = yaml.safe_load(path.read_text(encoding="utf-8"))["updates"]
    assert sorted(update["package-ecosystem"] for update in updates) == [
        "docker",
        "github-actions",
        "pip",
    ]
    # A release that turns out bad is usually pulled within days.
    assert all(update["cooldown"]["default-days"] >= 7 for update in updates)


@pytest.fixture(scope="module")
def repository_workflow():
    (path,) = workflow_files(TEMPLATE)
    return path


def test_the_repository_workflow_passes_its_schema_and_zizmor(repository_workflow):
    check_jsonschema("vendor.github-workflows", repository_workflow, cwd=TEMPLATE)
    zizmor(TEMPLATE)


def test_the_repository_workflow_runs_ci_run(repository_workflow):
    assert_least_privilege_and_pinned(repository_workflow)
    workflow = load_workflow(repository_workflow)
    lines = run_lines(workflow)
    assert lines[-1].endswith("bash .ci/run"), lines
    # Every Python the baked projects are tested on is there for .ci/run.
    (setup_python,) = [
        step
        for _, step in steps(workflow)
        if step.get("uses", "").startswith("actions/setup-python@")
    ]
    assert sorted(setup_python["with"]["python-version"].split()) == SUPPORTED
