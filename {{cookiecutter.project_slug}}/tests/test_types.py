"""The package's types check: ``mypy --strict``, with the settings in pyproject.toml."""

from helpers import PROJECT
from mypy import api


def test_the_package_passes_mypy_strict():
    report, errors, status = api.run(
        ["--config-file", str(PROJECT / "pyproject.toml"), str(PROJECT / "src")]
    )
    assert status == 0, report + errors
