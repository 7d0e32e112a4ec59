"""Where tasks run: the backend this project was made with, and its settings.

A backend is one package here with the interface of ``..backend.TaskBackend``.
"""

{% if cookiecutter.task_backend == "celery" -%}
from .celery import CeleryBackend as Backend
from .celery.settings import SETTINGS
{%- else -%}
from .threads import ThreadBackend as Backend
from .threads.settings import SETTINGS
{%- endif %}

__all__ = ["SETTINGS", "Backend"]
