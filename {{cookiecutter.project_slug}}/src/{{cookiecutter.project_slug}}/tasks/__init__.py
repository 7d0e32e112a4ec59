"""Background tasks for Flask views: the ``async_api`` decorator and its engine."""

from .context import current_task
from .decorator import EXTENSION_KEY, async_api
from .engine import STATUS_RULE_OPTIONS, STATUS_RULES, TaskEngine, task_engine

__all__ = [
    "EXTENSION_KEY",
    "STATUS_RULE_OPTIONS",
    "STATUS_RULES",
    "TaskEngine",
    "async_api",
    "current_task",
    "task_engine",
]
