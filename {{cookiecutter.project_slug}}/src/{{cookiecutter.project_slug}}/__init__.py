"""A Flask service whose views can run as background tasks."""

from .app import create_app
from .tasks import async_api, current_task

__all__ = ["async_api", "create_app", "current_task"]
