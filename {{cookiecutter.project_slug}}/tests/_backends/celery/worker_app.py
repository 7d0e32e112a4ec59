"""A Celery worker for the tests' own views: ``celery --app worker_app:celery_app worker``."""

from served_app import app

celery_app = app.extensions["celery"]
# The worker runs the tasks of Celery's default app: make it this one.
celery_app.set_default()
