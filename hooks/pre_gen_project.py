"""Check the answers before anything is written.

Answers arrive as data: rendered through ``tojson`` into one JSON document in
a raw string literal (``tojson`` escapes its quotes), so quotes, backslashes,
emoji or template syntax in them can neither break this script nor run. A bad answer prints one ``ERROR:`` line that names
the variable, the value and the rule, and exits 1; cookiecutter then removes
the half-made project folder.
"""

import json
import keyword
import re
import sys
import unicodedata

SLUG_PATTERN = re.compile(r"^[a-z_][a-z0-9_]*$")
# A distribution name must also start and end with a letter or digit (PEP 508).
DISTRIBUTION_PATTERN = re.compile(r"^[a-z](.*[a-z0-9])?$")
# What packaging tools accept as an author's address (or leave it empty).
EMAIL_PATTERN = re.compile(r"^([^@\s\"(),:;<>\[\\\]]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)?$")
# PEP 440's canonical public version (Appendix B).
VERSION_PATTERN = re.compile(
    r"^([1-9][0-9]*!)?(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*((a|b|rc)(0|[1-9][0-9]*))?"
    r"(\.post(0|[1-9][0-9]*))?(\.dev(0|[1-9][0-9]*))?$"
)

# Import names the baked project, its tests or its tools depend on: a package
# of the same name would shadow them.
RESERVED_NAMES = {
    "aniso8601",
    "apispec",
    "blinker",
    "celery",
    "click",
    "conftest",
    "flask",
    "flask_restful",
    "flask_smorest",
    "gunicorn",
    "helpers",
    "itsdangerous",
    "jinja2",
    "kombu",
    "markupsafe",
    "marshmallow",
    "packaging",
    "pip",
    "pre_commit",
    "pytest",
    "pytz",
    "redis",
    "requests",
    "ruff",
    "setuptools",
    "six",
    "tests",
    "webargs",
    "werkzeug",
}

ANSWERS = json.loads(
    r'{{ {
        "project_name": cookiecutter.project_name,
        "project_slug": cookiecutter.project_slug,
        "description": cookiecutter.description,
        "author_name": cookiecutter.author_name,
        "author_email": cookiecutter.author_email,
        "version": cookiecutter.version,
        "cleanup_interval_seconds": cookiecutter.cleanup_interval_seconds | string,
        "task_retention_seconds": cookiecutter.task_retention_seconds | string,
    } | tojson }}'
)


def slug_problem(slug):
    """Say what is wrong with ``slug`` as an import name, or return None."""
    if not SLUG_PATTERN.match(slug):
        return "must match ^[a-z_][a-z0-9_]*$ (lower case letters, digits, underscores; no leading digit)"
    if not DISTRIBUTION_PATTERN.match(slug):
        return "must start with a letter and end with a letter or digit, to be a distribution name"
    if keyword.iskeyword(slug):
        return "must not be a Python keyword"
    if slug in RESERVED_NAMES or slug in getattr(sys, "stdlib_module_names", ()):
        return "must not shadow a module the project imports (standard library or a dependency)"
    return None


def seconds_problem(value):
    """Say what is wrong with ``value`` as a count of seconds, or return None."""
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        return "must be a positive whole number of seconds"
    return None


def version_problem(version):
    """Say what is wrong with ``version`` as a package version, or return None."""
    if not VERSION_PATTERN.match(version):
        return "must be a PEP 440 version such as 0.1.0 or 1.0rc1"
    return None


def email_problem(email):
    """Say what is wrong with ``email`` as an author's address, or return None."""
    if not EMAIL_PATTERN.match(email):
        return "must be an address such as you@example.com, or empty"
    return None


def text_problem(text):
    """Say what is wrong with free ``text`` (a name, a description), or return None."""
    if any(unicodedata.category(character) == "Cc" for character in text):
        return "must not contain control characters"
    return None


# How PEP 440 spells the pre-release names people type.
PRE_RELEASE_NAMES = {"alpha": "a", "a": "a", "beta": "b", "b": "b", "c": "rc", "rc": "rc",
                     "pre": "rc", "preview": "rc"}
LOOSE_VERSION = re.compile(
    r"^v?(?P<release>[0-9]+(\.[0-9]+)*)([-_.]?(?P<pre>alpha|beta|preview|pre|rc|a|b|c)[-_.]?(?P<number>[0-9]*))?$"
)


def suggested_slug(slug):
    """A slug that keeps the rules, made from ``slug``, or None."""
    words = re.findall(r"[a-z0-9]+", slug.lower())
    if not words:
        return None
    candidate = "_".join(words)
    if candidate[0].isdigit():
        candidate = f"service_{candidate}"
    if keyword.iskeyword(candidate) or candidate in RESERVED_NAMES or candidate in getattr(
        sys, "stdlib_module_names", ()
    ):
        candidate = f"{candidate}_service"
    return candidate if candidate != slug and slug_problem(candidate) is None else None


def suggested_version(version):
    """The PEP 440 spelling of ``version`` (``1.0-beta`` is ``1.0b0``), or None."""
    match = LOOSE_VERSION.match(version.strip().lower())
    if not match:
        return None
    release = ".".join(str(int(part)) for part in match["release"].split("."))
    if match["pre"]:
        release += PRE_RELEASE_NAMES[match["pre"]] + str(int(match["number"] or 0))
    return release if release != version else None


def suggested_seconds(value):
    """Whole seconds from ``value`` (``60s`` is ``60``), or None."""
    match = re.fullmatch(r"\s*([0-9]+)(\.0*)?\s*(s|sec|secs|seconds)?\s*", value.lower())
    if not match or int(match[1]) < 1 or match[1] == value:
        return None
    return str(int(match[1]))


SUGGESTIONS = {
    "project_slug": suggested_slug,
    "version": suggested_version,
    "cleanup_interval_seconds": suggested_seconds,
    "task_retention_seconds": suggested_seconds,
}


def main():
    problems = [
        ("project_slug", slug_problem(ANSWERS["project_slug"])),
        ("version", version_problem(ANSWERS["version"])),
        ("author_email", email_problem(ANSWERS["author_email"])),
        *((name, text_problem(ANSWERS[name])) for name in ("project_name", "description", "author_name")),
    ]
    for name in ("cleanup_interval_seconds", "task_retention_seconds"):
        problems.append((name, seconds_problem(ANSWERS[name])))
    for name, problem in problems:
        if problem:
            suggest = SUGGESTIONS.get(name)
            suggestion = suggest(ANSWERS[name]) if suggest else None
            hint = f" Try {name}={suggestion}" if suggestion else ""
            print(f"ERROR: {name} {ANSWERS[name]!r} {problem}.{hint}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
