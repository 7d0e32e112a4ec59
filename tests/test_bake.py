"""T4 for every supported combination: the project reads as if written by hand.

Each combination of ``rest_layer`` and ``task_backend`` in cookiecutter.json is
baked; a choice added there is baked here too.
"""

import json
import re
import tomllib

import pytest

from conftest import CHOICES, HADOLINT, PYTHON, RUFF, clean_env, combination_id, run

# `${{ ... }}` is a GitHub Actions expression (the workflow's), not Jinja's.
LEFTOVER_TEMPLATE_SYNTAX = re.compile(r"(?<!\$)\{\{|\{%|\{#|cookiecutter\.[A-Za-z_]")

# What betrays each option in code and configuration: patterns that only
# that option's files hold, and the distribution it adds to the dependencies.
# A choice without an entry is recognised by its own name.
OPTION_MARKERS = {
    "rest_layer": {
        "flask-restful": {"patterns": [r"flask[_-]restful"], "distribution": "flask-restful"},
        # Blueprints and MethodView classes serve the other layers too; rules
        # added to a blueprint by hand are plain Flask's.
        "flask": {"patterns": [r"\bbp\.add_url_rule\("], "distribution": None},
        # The OpenAPI document, its schemas and Swagger UI, and their tests.
        "flask-smorest": {
            "patterns": [
                r"flask[_-]smorest",
                r"\bmarshmallow\b",
                r"\bapispec\b",
                r"(?i)swagger",
                r"\bschemathesis\b",
                r"(?i)openapi",
            ],
            "distribution": "flask-smorest",
        },
    },
    "task_backend": {
        # No thread pool and no in-process store in a celery bake.
        "threads": {
            "patterns": [r"\bThreadBackend\b", r"\bWorkerPool\b", r"\bTaskStore\b"],
            "distribution": None,
        },
        # Nothing of Celery or Redis in a threads bake.
        "celery": {"patterns": [r"(?i)\bcelery\b", r"(?i)\bredis\b"], "distribution": "celery"},
    },
}

# Prose may point to the other options (T4); code and configuration may not.
PROSE_SUFFIXES = {".md", ".rst", ".txt"}


def markers(variable, choice):
    default = {
        "patterns": [re.escape(choice), re.escape(choice.replace("-", "_"))],
        "distribution": choice,
    }
    return OPTION_MARKERS.get(variable, {}).get(choice, default)


def text_files(project):
    for path in sorted(project.rglob("*")):
        if path.is_file():
            try:
                yield path, path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue


def dependency_names(project):
    with (project / "pyproject.toml").open("rb") as file:
        pyproject = tomllib.load(file)
    requirements = list(pyproject["project"].get("dependencies", []))
    for extra in pyproject["project"].get("optional-dependencies", {}).values():
        requirements += extra
    names = set()
    for requirement in requirements:
        name = re.match(r"[A-Za-z0-9._-]+", requirement).group()
        names.add(re.sub(r"[-_.]+", "-", name).lower())
    return names


def slug_of(project):
    return project.name


def lines_matching(project, pattern):
    """``path:line: text`` of every line of the project's text files that ``pattern`` finds."""
    return [
        f"{path.relative_to(project)}:{number}: {line.strip()}"
        for path, text in text_files(project)
        for number, line in enumerate(text.splitlines(), start=1)
        if pattern.search(line)
    ]


def test_no_template_syntax_is_left_over(baked, combination):
    project = baked(combination)
    leftovers = lines_matching(project, LEFTOVER_TEMPLATE_SYNTAX)
    assert not leftovers, "template syntax left over:\n" + "\n".join(leftovers)
    names = [str(path.relative_to(project)) for path in project.rglob("*")]
    assert not [name for name in names if "{" in name or "cookiecutter" in name]


# Codes and documents the baked project does not ship: a reader cannot look them up.
UNSHIPPED_REFERENCES = re.compile(
    r"\b[GHLCTSUB][0-9]{1,2}(-[GHLCTSUB]?[0-9]{1,2})?\b|original design|CONTRACT|issue [0-9]"
)


def test_the_project_cites_nothing_it_does_not_ship(baked, combination):
    found = lines_matching(baked(combination), UNSHIPPED_REFERENCES)
    assert not found, "cites what the project does not ship:\n" + "\n".join(found)


def test_pyproject_parses_and_names_the_slug(baked, combination):
    project = baked(combination)
    with (project / "pyproject.toml").open("rb") as file:
        pyproject = tomllib.load(file)
    assert pyproject["project"]["name"] == slug_of(project)
    assert (project / "src" / slug_of(project) / "__init__.py").is_file()


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=" ".join)
def test_ruff_is_clean(baked, combination, command):
    run([*RUFF, *command, "--no-cache", "."], baked(combination))


def test_hadolint_finds_nothing_in_the_dockerfile(baked, combination):
    # A rule the Dockerfile ignores is named there, with its reason.
    run([HADOLINT, "--no-color", "Dockerfile"], baked(combination))


def test_nothing_of_an_option_not_chosen(baked, combination):
    project = baked(combination)
    code_and_config = [
        (path, text) for path, text in text_files(project) if path.suffix not in PROSE_SUFFIXES
    ]
    dependencies = dependency_names(project)
    for variable, chosen in combination.items():
        for other in CHOICES[variable]:
            if other == chosen:
                continue
            other_markers = markers(variable, other)
            # A message that points to the other option by its answer
            # ("bake with task_backend=celery") is prose, not its code.
            pointer = re.compile(rf"\b{variable}={re.escape(other)}\b")
            for pattern in other_markers["patterns"]:
                found = [
                    str(path.relative_to(project))
                    for path, text in code_and_config
                    if re.search(pattern, pointer.sub("", text))
                ]
                assert not found, f"{variable}={other} ({pattern}) shows in {found}"
            if other_markers["distribution"]:
                assert other_markers["distribution"] not in dependencies


def test_the_chosen_rest_layer_is_the_routes_module(baked, combination):
    project = baked(combination)
    package = project / "src" / slug_of(project)
    routes = (package / "routes.py").read_text(encoding="utf-8")
    chosen = markers("rest_layer", combination["rest_layer"])
    assert any(re.search(pattern, routes) for pattern in chosen["patterns"])
    if chosen["distribution"]:
        assert chosen["distribution"] in dependency_names(project)
    assert (project / "tests" / "test_rest_layer.py").is_file()
    assert not (package / "_rest_layers").exists()
    assert not (project / "tests" / "_rest_layers").exists()


def test_only_the_chosen_task_backend_is_kept(baked, combination):
    project = baked(combination)
    backends = project / "src" / slug_of(project) / "tasks" / "backends"
    packages = {path.name for path in backends.iterdir() if path.is_dir() and path.name[0] != "_"}
    assert packages == {combination["task_backend"]}
    assert not (project / "tests" / "_backends").exists()


def test_baked_settings_defaults_by_default(baked, combination):
    project = baked(combination)
    assert baked_settings(project) == {
        "TASK_CLEANUP_INTERVAL": 60,
        "TASK_RETENTION": 300,
    }


def test_baked_seconds_land_in_the_settings(bake):
    project = bake(cleanup_interval_seconds=7, task_retention_seconds=4321)
    assert baked_settings(project) == {"TASK_CLEANUP_INTERVAL": 7, "TASK_RETENTION": 4321}


def baked_settings(project):
    """The baked seconds, read by the baked package itself in a subprocess.

    Both the defaults of its settings module (``COMMON``) and the config of an app made
    by ``create_app()`` must hold them.
    """
    slug = slug_of(project)
    script = (
        "import json\n"
        f"from {slug} import create_app\n"
        f"from {slug}.settings import COMMON\n"
        "keys = ('TASK_CLEANUP_INTERVAL', 'TASK_RETENTION')\n"
        "app = create_app({'TESTING': True, 'SECRET_KEY': 'x'})\n"
        "defaults = {k: COMMON.defaults[k] for k in keys}\n"
        "print(json.dumps([defaults, {k: app.config[k] for k in keys}]))\n"
    )
    result = run(
        [PYTHON, "-c", script], project, env=clean_env(PYTHONPATH=str(project / "src")), timeout=60
    )
    defaults, config = json.loads(result.stdout.strip().splitlines()[-1])
    assert defaults == config
    return defaults


def test_the_baked_test_suite_passes(baked, combination):
    project = baked(combination)
    result = run(
        [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        project,
        env=clean_env(PYTHONPATH=str(project / "src")),
        timeout=300,
    )
    # A skipped suite is not a passing one: the celery bakes' Redis tests
    # must find a redis-server here (.ci/run and the test requirements bring one).
    assert " skipped" not in result.stdout.splitlines()[-1], result.stdout


# The example and the steps that remove it are the same whatever the task
# backend; each REST layer has an example of its own. So each layer is tried
# once, and each backend at least once: every combination's whole suite runs
# above already, and a second run of each celery suite here cost CI minutes.
REMOVAL_COMBINATIONS = [
    {"rest_layer": layer, "task_backend": "celery" if index == 0 else "threads"}
    for index, layer in enumerate(CHOICES["rest_layer"])
]


@pytest.mark.parametrize(
    "removal", REMOVAL_COMBINATIONS, ids=[combination_id(c) for c in REMOVAL_COMBINATIONS]
)
def test_removing_the_example_as_the_readme_says_leaves_a_passing_project(bake, removal):
    project = bake(**removal)
    readme = (project / "README.md").read_text(encoding="utf-8")
    steps = readme[readme.index("## Remove the example") :].split("\n## ", 1)[0]
    package = project / "src" / slug_of(project)
    assert f"Delete `src/{slug_of(project)}/example.py`" in steps
    assert "Delete `tests/test_example.py`" in steps
    assert "delete the two lines that name `example`" in steps
    (package / "example.py").unlink()
    (project / "tests" / "test_example.py").unlink()
    app_py = package / "app.py"
    lines = app_py.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if "example" not in line]
    assert len(lines) - len(kept) == 2
    app_py.write_text("".join(kept), encoding="utf-8")

    run([*RUFF, "check", "--no-cache", "."], project)
    run([*RUFF, "format", "--check", "--no-cache", "."], project)
    env = clean_env(PYTHONPATH=str(project / "src"))
    run([PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider"], project, env=env, timeout=300)
    script = (
        f"from {slug_of(project)} import create_app\n"
        "client = create_app({'SECRET_KEY': 'x'}).test_client()\n"
        "print(client.get('/no/such/view').status_code)\n"
    )
    result = run([PYTHON, "-c", script], project, env=env, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == "404"
