"""T3: a bad answer stops the bake cleanly; an awkward answer is only data."""

import tomllib

import pytest

from conftest import COOKIECUTTER_JSON, PYTHON, RUFF, clean_env, run

SLUG_RULE = "^[a-z_][a-z0-9_]*$"

# (variable, value, words the first line must hold besides the variable and value)
BAD_ANSWERS = [
    ("project_slug", "My-App", [SLUG_RULE]),
    ("project_slug", "1abc", [SLUG_RULE]),
    ("project_slug", "has space", [SLUG_RULE]),
    ("project_slug", "class", ["keyword"]),
    ("project_slug", "flask", ["shadow"]),
    ("project_slug", "celery", ["shadow"]),
    ("project_slug", "json", ["shadow"]),
    ("project_slug", "helpers", ["shadow"]),
    ("project_slug", "_svc", ["distribution name"]),
    ("project_slug", "svc_", ["distribution name"]),
    *(
        (name, value, ["positive whole number"])
        for name in ("cleanup_interval_seconds", "task_retention_seconds")
        for value in ("0", "-5", "abc", "1.5")
    ),
    ("version", "not a version", ["PEP 440"]),
    ("author_email", "not-an-email", ["address"]),
    ("author_email", "a@b", ["address"]),
]


@pytest.mark.parametrize(
    ("variable", "value", "rule_words"),
    BAD_ANSWERS,
    ids=[f"{variable}={value}" for variable, value, _ in BAD_ANSWERS],
)
def test_a_bad_answer_stops_the_bake_before_anything_is_written(
    cookiecutter_cli, tmp_path, variable, value, rule_words
):
    result = cookiecutter_cli(tmp_path, f"{variable}={value}", check=False)

    assert result.returncode != 0, result.stdout
    first_line = result.stdout.lstrip("\n").splitlines()[0]
    assert first_line.startswith(f"ERROR: {variable} "), result.stdout
    assert value in first_line, first_line
    for word in rule_words:
        assert word.lower() in first_line.lower(), first_line
    assert list(tmp_path.iterdir()) == [], "the half-made project was left behind"


# Typed at the prompts, so cookiecutter does not render them (CLI key=value
# answers are rendered by cookiecutter itself, T3).
AWKWARD_NAME = 'It\'s "quoted" \\ back\\slash {{ 7*7 }}'
AWKWARD_DESCRIPTION = (
    "Say \"hi\" it's {{ 7*7 }} {{ 'jinja' ~ 'ran' }} {% if true %}yes{% endif %}"
    " {# note #} \\n \\\\ \"\"\" ''' done"
)
# The derived default slug: every run of other characters becomes "_", and
# 7*7 stays two sevens (49 would mean the name was rendered).
AWKWARD_SLUG = "it_s_quoted_back_slash_7_7"


def typed_answers(answers):
    """One line per question, in cookiecutter.json order; empty takes the default."""
    variables = [name for name in COOKIECUTTER_JSON if not name.startswith("_")]
    unknown = set(answers) - set(variables)
    assert not unknown, f"no such questions: {unknown}"
    return "".join(f"{answers.get(name, '')}\n" for name in variables)


# The awkward bake is shared: keep its tests on one xdist worker.
awkward = pytest.mark.xdist_group("awkward-project")


@pytest.fixture(scope="module")
def awkward_project(cookiecutter_cli, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("awkward")
    # flask-smorest: its OpenAPI settings write the name into Python too.
    smorest = str(COOKIECUTTER_JSON["rest_layer"].index("flask-smorest") + 1)
    answers = {"project_name": AWKWARD_NAME, "description": AWKWARD_DESCRIPTION}
    cookiecutter_cli(output_dir, input=typed_answers({**answers, "rest_layer": smorest}))
    return output_dir / AWKWARD_SLUG


@awkward
def test_awkward_typed_answers_bake_with_nothing_evaluated(awkward_project):
    assert awkward_project.is_dir(), f"expected {AWKWARD_SLUG}/ (the name was rendered?)"
    with (awkward_project / "pyproject.toml").open("rb") as file:
        project = tomllib.load(file)["project"]
    assert project["name"] == AWKWARD_SLUG
    assert project["description"] == AWKWARD_DESCRIPTION
    for path in awkward_project.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert "jinjaran" not in text, f"{path}: a typed answer was rendered"
            assert "slash 49" not in text, f"{path}: a typed answer was rendered"


@awkward
def test_awkward_typed_answers_appear_verbatim_where_prose_uses_them(awkward_project):
    readme = (awkward_project / "README.md").read_text(encoding="utf-8")
    assert AWKWARD_NAME in readme, "the README does not show the project name as typed"


@awkward
def test_awkward_typed_answers_title_the_openapi_document_as_typed(awkward_project):
    script = (
        f"from {AWKWARD_SLUG} import create_app\n"
        "client = create_app({'SECRET_KEY': 'x'}).test_client()\n"
        "print(repr(client.get('/docs/openapi.json').get_json()['info']['title']))\n"
    )
    env = clean_env(PYTHONPATH=str(awkward_project / "src"))
    result = run([PYTHON, "-c", script], awkward_project, env=env, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == repr(AWKWARD_NAME)


@awkward
def test_awkward_typed_answers_keep_ruff_clean(awkward_project):
    for command in (["check", "--no-cache"], ["format", "--check", "--no-cache"]):
        run([*RUFF, *command, "."], awkward_project)


@awkward
def test_awkward_typed_answers_keep_the_baked_tests_passing(awkward_project):
    run(
        [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        awkward_project,
        env=clean_env(PYTHONPATH=str(awkward_project / "src")),
    )


def test_an_empty_author_email_is_left_out(cookiecutter_cli, tmp_path):
    cookiecutter_cli(tmp_path, "author_email=")
    project = tomllib.loads((tmp_path / "async_flask_service" / "pyproject.toml").read_text())
    assert project["project"]["authors"] == [{"name": "Your Name"}]


def test_a_name_without_letters_or_digits_says_the_slug_needs_them(cookiecutter_cli, tmp_path):
    result = cookiecutter_cli(tmp_path, "project_name=!!!", check=False)
    assert result.returncode != 0
    first_line = result.stdout.lstrip("\n").splitlines()[0]
    assert first_line.startswith("ERROR: project_slug 'no-letters-or-digits-in-project_name'")
    assert list(tmp_path.iterdir()) == []


def test_characters_beyond_the_basic_plane_stay_valid_toml(cookiecutter_cli, tmp_path):
    description = 'Rocket \U0001f680 "quoted" it\'s \\ done'
    cookiecutter_cli(tmp_path, f"description={description}", "author_name=Zo\u00eb \U0001f600")
    with (tmp_path / "async_flask_service" / "pyproject.toml").open("rb") as file:
        project = tomllib.load(file)["project"]
    assert project["description"] == description
    assert project["authors"][0]["name"] == "Zo\u00eb \U0001f600"


def test_control_characters_in_free_text_stop_the_bake(cookiecutter_cli, tmp_path):
    result = cookiecutter_cli(tmp_path, "description=tab\there", check=False)
    assert result.returncode != 0
    first_line = result.stdout.lstrip("\n").splitlines()[0]
    assert first_line == "ERROR: description 'tab\\there' must not contain control characters."
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("answer", "suggestion"),
    [
        ("project_slug=my-service", "project_slug=my_service"),
        ("project_slug=flask", "project_slug=flask_service"),
        ("version=1.0-beta", "version=1.0b0"),
        ("version=v2.1", "version=2.1"),
        ("task_retention_seconds=300s", "task_retention_seconds=300"),
    ],
)
def test_a_refused_answer_suggests_a_corrected_one(cookiecutter_cli, tmp_path, answer, suggestion):
    result = cookiecutter_cli(tmp_path, answer, check=False)
    assert result.returncode != 0
    first_line = result.stdout.lstrip("\n").splitlines()[0]
    assert first_line.startswith("ERROR: "), result.stdout
    assert first_line.endswith(f"Try {suggestion}"), first_line
    assert list(tmp_path.iterdir()) == []
    # The suggestion is itself a good answer.
    cookiecutter_cli(tmp_path, suggestion)
