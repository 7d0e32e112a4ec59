"""Where tasks run: the backend this project was made with.

A backend is one package here with the interface of ``..backend.TaskBackend``.
"""

{% if cookiecutter.task_backend == "celery" -%}
from .celery import CeleryBackend as Backend
{%- else -%}
from .threads import ThreadBackend as Backend
{%- endif %}

__all__ = ["Backend"]
