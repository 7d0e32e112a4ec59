"""G7 for the README's own view: "Make your own view a task" and "Test your own task", followed.

A user who copies the README's ``Report`` view into ``routes.py`` and its
test into ``tests/test_reports.py`` must end with a passing suite: two
new-user trials found it broken (the README's view shadowed the tests'
views; later it clashed with the OpenAPI tests' schemas). For each REST
layer, the README's code goes in as a user puts it: its imports at the top of
``routes.py``, its definitions before ``init_app``, the lines it adds to
``init_app`` at its end. The threads backend stands for both: neither the view
nor its test depends on where tasks run.

With flask-smorest, the suite includes schemathesis, which calls the
README's operation with what the document admits: a third trial found that
the README's own input advice (``Integer(strict=True)``) refused a whole
number written ``238.0``, a valid JSON Schema ``integer``.
"""

import re

import pytest

from conftest import CHOICES, PYTHON, RUFF, clean_env, run

PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
# Prints the paths of a flask-smorest bake's OpenAPI document.
DOCUMENTED_PATHS = (
    "from {slug} import create_app\n"
    "app = create_app({{'SECRET_KEY': 'x'}})\n"
    "print(*app.test_client().get('/docs/openapi.json').get_json()['paths'])\n"
    "from {slug}.tasks import task_engine\n"
    "with app.app_context():\n"
    "    task_engine().shutdown()\n"
)


def readme_view_and_test(readme):
    """The README's ``routes.py`` code for the view, and its test module."""
    section = readme[readme.index("## Make your own view a task") :].split("\n## ", 1)[0]
    blocks = PYTHON_BLOCK.findall(section)
    before_first = section.split("```python", 1)[0]
    assert re.search(r"In\s+`src/\w+/routes\.py`:\s*$", before_first), "no routes.py code first"
    (test,) = [block for block in blocks if "def test_report" in block]
    return blocks[0], test


# The line that starts init_app, annotated or not: def init_app(app: Flask) -> None:
INIT_APP = re.compile(r"^def init_app\(app\b[^)]*\)[^:\n]*:", re.MULTILINE)


def _split_init(code):
    """``code`` before ``init_app``, its ``def`` line, and its body (empty without one)."""
    found = INIT_APP.search(code)
    if found is None:
        return code, "", ""
    return code[: found.start()], found.group(), code[found.end() :]


def add_to_routes(routes, snippet):
    """``routes.py`` with the README's snippet added where a user would add each part."""
    code, _, init_app = _split_init(snippet)
    lines = code.splitlines()
    imports = [line for line in lines if line.startswith(("import ", "from "))]
    definitions = "\n".join(line for line in lines if not line.startswith(("import ", "from ")))
    new_init_lines = [
        line
        for line in init_app.splitlines()
        if line.strip() not in ("", "...") and line.strip() not in routes
    ]
    docstring_end = routes.index('"""', 3) + 3
    future = "\n\nfrom __future__ import annotations\n"
    if routes[docstring_end:].startswith(future):
        docstring_end += len(future)  # the one import that must stay first
    head, rest = routes[:docstring_end], routes[docstring_end:]
    before_init, header, init = _split_init(rest)
    assert header, "routes.py has no init_app"
    assert "\ndef " not in init, "init_app is not the last function of routes.py"
    return (
        head
        + "\n\n"
        + "\n".join(imports)
        + before_init
        + "\n"
        + definitions
        + "\n\n"
        + header
        + init.rstrip("\n")
        + "\n"
        + "".join(f"{line}\n" for line in new_init_lines)
    )


@pytest.mark.parametrize("rest_layer", CHOICES["rest_layer"])
def test_the_readmes_view_and_its_test_pass(bake, rest_layer):
    project = bake(rest_layer=rest_layer)
    view, test = readme_view_and_test((project / "README.md").read_text(encoding="utf-8"))
    routes = project / "src" / project.name / "routes.py"
    routes.write_text(add_to_routes(routes.read_text(encoding="utf-8"), view), encoding="utf-8")
    (project / "tests" / "test_reports.py").write_text(test, encoding="utf-8")
    # What the pre-commit hooks would do to the pasted code: sort the imports, format.
    run([*RUFF, "check", "--fix", "--no-cache", "."], project)
    run([*RUFF, "format", "--no-cache", "."], project)
    env = clean_env(PYTHONPATH=str(project / "src"))
    result = run(
        [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider"], project, env=env, timeout=300
    )
    assert " passed" in result.stdout.splitlines()[-1]
    if rest_layer == "flask-smorest":
        # The suite's schemathesis tests call every operation of the document: this one too.
        paths = run(
            [PYTHON, "-c", DOCUMENTED_PATHS.format(slug=project.name)], project, env=env
        ).stdout.split()
        assert "/reports/{name}" in paths
    assert (
        "test_reports.py"
        in run(
            [
                PYTHON,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--co",
                "tests/test_reports.py",
            ],
            project,
            env=env,
        ).stdout
    )
