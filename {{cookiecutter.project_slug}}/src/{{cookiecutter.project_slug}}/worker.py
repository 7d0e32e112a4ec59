"""The Celery worker's app: ``celery --app {{ cookiecutter.project_slug }}.worker:celery_app worker``.

Any module that makes the Flask app and names its ``app.extensions["celery"]``
can stand here, so a worker runs your own app's tasks the same way.
"""

from . import create_app
from .settings import ConfigError

try:
    flask_app = create_app()
except ConfigError as error:
    raise SystemExit(f"{__name__}: {error}") from None
celery_app = flask_app.extensions["celery"]
# The worker runs the tasks of Celery's default app: make it this one.
celery_app.set_default()
