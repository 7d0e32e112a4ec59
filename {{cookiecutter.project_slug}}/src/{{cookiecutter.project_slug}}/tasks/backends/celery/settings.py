"""The Celery backend's settings, over the ones every project has (``settings.py``)."""

from urllib.parse import urlsplit

from ....settings import Rule, Settings, positive, text, whole


def redis_url(value: object) -> bool:
    """A ``redis://``, ``rediss://`` or ``unix://`` URL that ``urlsplit`` can read whole."""
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        return False
    return parts.scheme in ("redis", "rediss", "unix")


SETTINGS = Settings(
    defaults={
        # Tasks each Celery worker runs at once (its default concurrency).
        "TASK_MAX_WORKERS": 8,
        # Tasks waiting for a worker, across every process; a submit beyond that
        # answers 503. Each waiting task holds its request body in Redis.
        "TASK_MAX_QUEUED": 64,
        # Redis for task state and, unless CELERY names another, the broker.
        "TASK_REDIS_URL": "redis://localhost:6379/0",
        # Seconds a worker holds a running task without renewing its lease; a task
        # whose worker stopped ends failed within this plus TASK_CLEANUP_INTERVAL.
        "TASK_LEASE": 30,
        # Celery's own settings (lower case, as Celery names them), applied over
        # the ones the service derives from the keys above.
        "CELERY": {},
    },
    rules={
        "TASK_MAX_WORKERS": Rule(whole(1), "a whole number >= 1"),
        # A task waits in the queue until a worker takes it: 0 would refuse all.
        "TASK_MAX_QUEUED": Rule(whole(1), "a whole number >= 1"),
        "TASK_REDIS_URL": Rule(redis_url, "a redis://, rediss:// or unix:// URL"),
        "TASK_LEASE": Rule(positive, "a number > 0"),
        "CELERY": Rule(lambda value: isinstance(value, dict), "a mapping of Celery settings"),
        # Every process must hash task owners with the same key.
        "SECRET_KEY": Rule(text, "set (FLASK_SECRET_KEY), the same in every process"),
    },
    text_keys=frozenset({"TASK_REDIS_URL"}),
)
