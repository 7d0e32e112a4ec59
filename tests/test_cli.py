"""T1 and T2: the questions, the defaults and ``key=value`` answers on the CLI."""

import tomllib

import pytest

from conftest import COOKIECUTTER_JSON, DEFAULT_SLUG

# T2: the variables the contract promises, in the order they are asked.
CONTRACT_VARIABLES = [
    "project_name",
    "project_slug",
    "description",
    "author_name",
    "author_email",
    "version",
    "rest_layer",
    "task_backend",
    "cleanup_interval_seconds",
    "task_retention_seconds",
]


def read_pyproject(project):
    with (project / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def test_the_variables_are_the_contracts_and_each_has_a_question():
    variables = [name for name in COOKIECUTTER_JSON if not name.startswith("_")]
    assert variables == CONTRACT_VARIABLES
    prompts = COOKIECUTTER_JSON["__prompts__"]
    for name in variables:
        prompt = prompts.get(name)
        if isinstance(prompt, dict):
            assert prompt.get("__prompt__"), f"{name} has no question"
            assert set(prompt) - {"__prompt__"} == set(COOKIECUTTER_JSON[name]), (
                f"{name}: every choice, and only those, has a description"
            )
        else:
            assert isinstance(prompt, str) and prompt.strip(), f"{name} has no question"


def test_the_first_choice_is_the_contracts_default():
    assert COOKIECUTTER_JSON["rest_layer"][0] == "flask-restful"
    assert COOKIECUTTER_JSON["task_backend"][0] == "threads"


def test_no_input_bakes_the_defaults_into_the_current_folder(cookiecutter_cli, tmp_path):
    cookiecutter_cli(None, cwd=tmp_path)

    assert [path.name for path in tmp_path.iterdir()] == [DEFAULT_SLUG]
    project = tmp_path / DEFAULT_SLUG
    pyproject = read_pyproject(project)
    assert pyproject["project"]["name"] == DEFAULT_SLUG
    assert pyproject["project"]["version"] == COOKIECUTTER_JSON["version"]
    assert pyproject["project"]["description"] == COOKIECUTTER_JSON["description"]
    assert (project / "src" / DEFAULT_SLUG / "__init__.py").is_file()
    assert "flask_restful" in (project / "src" / DEFAULT_SLUG / "routes.py").read_text()


def test_key_value_arguments_override_the_defaults(cookiecutter_cli, tmp_path):
    cookiecutter_cli(
        tmp_path,
        "project_name=Order Desk",
        "description=Takes orders.",
        "author_name=Ada Lovelace",
        "author_email=ada@example.org",
        "version=2.1.0",
        "rest_layer=flask",
    )

    assert [path.name for path in tmp_path.iterdir()] == ["order_desk"]
    project = read_pyproject(tmp_path / "order_desk")["project"]
    assert project["name"] == "order_desk"
    assert project["version"] == "2.1.0"
    assert project["description"] == "Takes orders."
    assert project["authors"] == [{"name": "Ada Lovelace", "email": "ada@example.org"}]
    routes = (tmp_path / "order_desk" / "src" / "order_desk" / "routes.py").read_text()
    assert "flask_restful" not in routes


@pytest.mark.parametrize(
    ("project_name", "slug"),
    [
        ("Async Flask Service", "async_flask_service"),
        ("  Hello, World! 2 ", "hello_world_2"),
        ("Crème brûlée API", "cr_me_br_l_e_api"),
        ("__Private--Thing__", "private_thing"),
    ],
)
def test_the_slug_is_derived_from_the_project_name(cookiecutter_cli, tmp_path, project_name, slug):
    cookiecutter_cli(tmp_path, f"project_name={project_name}")

    assert [path.name for path in tmp_path.iterdir()] == [slug]


def test_a_slug_given_explicitly_wins(cookiecutter_cli, tmp_path):
    cookiecutter_cli(tmp_path, "project_name=Order Desk", "project_slug=desk")

    assert [path.name for path in tmp_path.iterdir()] == ["desk"]
    assert read_pyproject(tmp_path / "desk")["project"]["name"] == "desk"
    assert (tmp_path / "desk" / "src" / "desk" / "__init__.py").is_file()


@pytest.mark.parametrize("backend", COOKIECUTTER_JSON["task_backend"])
def test_a_bake_ends_with_the_next_steps(cookiecutter_cli, tmp_path, backend):
    result = cookiecutter_cli(tmp_path, f"task_backend={backend}")
    project = tmp_path / DEFAULT_SLUG
    lines = result.stdout.strip().splitlines()
    assert f"Made {project}. Next:" in lines, result.stdout
    steps = "\n".join(lines[lines.index(f"Made {project}. Next:") :])
    for step in (f"cd {project}", 'pip install -e ".[dev]"', "pytest", ":8000"):
        assert step in steps, steps
    readme = (project / "README.md").read_text(encoding="utf-8")
    start = "honcho start" if backend == "celery" else "gunicorn -c gunicorn.conf.py"
    assert start in steps and start in readme
    development = f"flask --app {DEFAULT_SLUG} run --debug --port 8000"
    if backend == "celery":
        development = "honcho -f Procfile.dev start"
    assert development in steps and development in readme
