"""The marshmallow schemas of what the service answers about tasks.

The engine writes these answers itself; the schemas describe them in the
OpenAPI document, where clients and Swagger UI read them.
"""

from collections.abc import Mapping
from typing import Any

import marshmallow as ma

from .tasks.backend import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED

TASK_STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)


class WholeNumber(ma.fields.Integer):
    """A whole number as JSON and the OpenAPI document mean it: ``3`` or ``3.0``.

    The document says ``integer``, and JSON Schema's ``integer`` admits
    ``3.0`` (clients in JavaScript cannot even tell the two apart), so
    schemathesis sends it as a valid value. ``Integer(strict=True)`` would
    refuse it with a 422, and ``Integer()`` would truncate ``2.5`` to ``2``
    and take the string ``"3"``: this takes what the document admits and
    refuses the rest with "Not a valid integer.".
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return super()._deserialize(value, attr, data, **kwargs)


class ProblemSchema(ma.Schema):
    """An error, as RFC 9457 problem details (``application/problem+json``)."""

    type = ma.fields.String(required=True, metadata={"example": "about:blank"})
    title = ma.fields.String(required=True, metadata={"description": "The status code's phrase."})
    status = ma.fields.Integer(required=True, strict=True)
    detail = ma.fields.String(required=True)
    errors = ma.fields.Dict(
        metadata={"description": "What was wrong with each part of the request, by location."}
    )


class ProgressSchema(ma.Schema):
    """What a task last reported: ``current_task.report(12.5, "...")``."""

    percent = ma.fields.Float(
        required=True,
        validate=ma.validate.Range(0, 100),
        metadata={"description": "How much is done, from 0 to 100 (fractions too)."},
    )
    message = ma.fields.String(required=True, allow_none=True)


class TaskMonitorSchema(ma.Schema):
    """Where a task stands: what a poll answers while the task works."""

    id = ma.fields.String(required=True)
    status = ma.fields.String(required=True, validate=ma.validate.OneOf(TASK_STATUSES))
    status_url = ma.fields.String(
        required=True, metadata={"description": "Where to poll: the same as `Location`."}
    )
    created_at = ma.fields.DateTime(required=True)
    updated_at = ma.fields.DateTime(required=True)
    progress = ma.fields.Nested(
        ProgressSchema,
        required=True,
        allow_none=True,
        metadata={"description": "What the task last reported; null until it reports."},
    )
    cancel_requested = ma.fields.Boolean(
        metadata={"description": "Present while a running task has been asked to stop."}
    )
    error = ma.fields.Nested(
        ProblemSchema,
        metadata={"description": "Why a failed task failed, or that a cancelled task was."},
    )


class HealthSchema(ma.Schema):
    status = ma.fields.String(required=True, validate=ma.validate.OneOf(("ok", "unavailable")))
    detail = ma.fields.String()
