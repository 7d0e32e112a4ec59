"""Keep only the files of the options chosen.

Runs in the new project's folder with nothing but Python: no network, no git,
no installs, so that it also runs unchanged when a project is re-rendered to
take template updates.
"""

import shutil
from pathlib import Path

PACKAGE = Path("src") / {{ cookiecutter.project_slug | tojson }}
REST_LAYER = {{ cookiecutter.rest_layer | tojson }}
TASK_BACKEND = {{ cookiecutter.task_backend | tojson }}
# What only a project with each REST layer has, besides its routes, example
# and tests.
LAYER_ONLY_FILES = {
    "flask-smorest": [
        PACKAGE / "openapi.py",
        PACKAGE / "schemas.py",
        Path("tests") / "test_openapi.py",
    ],
}
# What only a project on each task backend has, besides its package under
# tasks/backends/ and its tests under tests/_backends/.
BACKEND_ONLY_FILES = {
    "celery": [PACKAGE / "worker.py", Path("Procfile"), Path("Procfile.dev")],
    "threads": [],
}


def keep_one(folder, chosen, target):
    """Move ``folder/<chosen>.py`` to ``target`` and delete ``folder``."""
    (folder / f"{chosen}.py").replace(target)
    shutil.rmtree(folder)


def remove_unchosen(only_files, chosen):
    """Delete the files that only options other than ``chosen`` need."""
    for option, paths in only_files.items():
        if option != chosen:
            for path in paths:
                path.unlink(missing_ok=True)


def keep_backend(chosen):
    """Keep the chosen backend's package and tests; remove every other backend's files."""
    backends = PACKAGE / "tasks" / "backends"
    tests = Path("tests") / "_backends"
    for package in backends.iterdir():
        if package.is_dir() and package.name != chosen:
            shutil.rmtree(package)
    remove_unchosen(BACKEND_ONLY_FILES, chosen)
    for test_file in sorted((tests / chosen).iterdir()):
        test_file.replace(Path("tests") / test_file.name)
    shutil.rmtree(tests)


def main():
    layer_module = REST_LAYER.replace("-", "_")
    keep_one(PACKAGE / "_rest_layers", layer_module, PACKAGE / "routes.py")
    keep_one(PACKAGE / "_examples", layer_module, PACKAGE / "example.py")
    keep_one(Path("tests") / "_rest_layers", layer_module, Path("tests") / "test_rest_layer.py")
    remove_unchosen(LAYER_ONLY_FILES, REST_LAYER)
    keep_backend(TASK_BACKEND)
    print(next_steps())


def next_steps():
    """What to do now, printed once the project is written."""
    folder = Path.cwd()
    lines = [
        f"Made {folder}. Next:",
        f"  cd {folder}",
        "  python -m venv .venv && . .venv/bin/activate",
        '  python -m pip install -e ".[dev]"',
        "  pytest",
    ]
    development_server = f"flask --app {PACKAGE.name} run --debug --port 8000"
    if TASK_BACKEND == "celery":
        lines += [
            "  export FLASK_SECRET_KEY=change-me",
            "  honcho -f Procfile.dev start   # Redis, a Celery worker and"
            f" {development_server}",
            "  honcho start                   # the same with gunicorn, as in production, on :8000",
        ]
    else:
        lines += [
            f"  {development_server}   # the development server on http://127.0.0.1:8000",
            "  gunicorn -c gunicorn.conf.py   # the service in production, on the same port",
        ]
    lines.append("README.md says the rest: the HTTP contract, settings, production.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
