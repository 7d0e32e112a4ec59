"""The threads backend's settings, over the ones every project has (``settings.py``)."""

from ....settings import Rule, Settings, positive, whole

SETTINGS = Settings(
    defaults={
        # Tasks running at once.
        "TASK_MAX_WORKERS": 8,
        # Tasks waiting for a worker; a submit beyond that answers 503.
        "TASK_MAX_QUEUED": 64,
        # Seconds running tasks get to finish when the service stops.
        "TASK_SHUTDOWN_TIMEOUT": 30,
    },
    rules={
        "TASK_MAX_WORKERS": Rule(whole(1), "a whole number >= 1"),
        "TASK_MAX_QUEUED": Rule(whole(0), "a whole number >= 0"),
        "TASK_SHUTDOWN_TIMEOUT": Rule(positive, "a number > 0"),
    },
)
