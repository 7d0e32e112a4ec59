"""Keep only the files of the options chosen.

Runs in the new project's folder with nothing but Python: no network, no git,
no installs, so that it also runs unchanged when a project is re-rendered to
take template updates.
"""

import shutil
from pathlib import Path

PACKAGE = Path("src") / {{ cookiecutter.project_slug | tojson }}
REST_LAYER = {{ cookiecutter.rest_layer | tojson }}


def keep_one(folder, chosen, target):
    """Move ``folder/<chosen>.py`` to ``target`` and delete ``folder``."""
    (folder / f"{chosen}.py").replace(target)
    shutil.rmtree(folder)


def main():
    layer_module = REST_LAYER.replace("-", "_")
    keep_one(PACKAGE / "_rest_layers", layer_module, PACKAGE / "routes.py")
    keep_one(Path("tests") / "_rest_layers", layer_module, Path("tests") / "test_rest_layer.py")


if __name__ == "__main__":
    main()
