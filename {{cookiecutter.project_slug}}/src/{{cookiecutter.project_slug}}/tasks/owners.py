"""Who a task belongs to, and which submits are the same request.

Owners are kept only as a keyed hash (HMAC-SHA256 with the app's
``SECRET_KEY``), compared in constant time. An ``Idempotency-Key`` is held per
owner, with a digest of the request it came with.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import Request

from .snapshot import RequestSnapshot

MAX_IDEMPOTENCY_KEY_LENGTH = 255


def authorization_owner(request: Request) -> str | None:
    """The default owner of a task: the credentials that submitted it.

    The scheme is compared without regard to case (RFC 9110), the
    credentials exactly: ``bearer alice`` is ``Bearer alice``. A scheme with
    no credentials (``Bearer ``, an empty token) is no credentials, so no
    owner: else every client sending an empty token would share its tasks.
    """
    parts = request.headers.get("Authorization", "").split(maxsplit=1)
    if len(parts) < 2:
        return None
    scheme, credentials = parts
    return f"{scheme.lower()} {credentials.rstrip()}"


def owner_hash(secret_key: str | bytes, owner: object | None) -> bytes | None:
    """The keyed hash of ``owner``, or None for no owner."""
    if owner is None:
        return None
    if isinstance(secret_key, str):
        secret_key = secret_key.encode()
    return hmac.new(secret_key, str(owner).encode(), hashlib.sha256).digest()


def may_see(task_owner: bytes | None, requester: bytes | None) -> bool:
    """Whether ``requester`` may see a task of ``task_owner`` (no owner: anyone)."""
    if task_owner is None:
        return True
    return requester is not None and hmac.compare_digest(task_owner, requester)


def valid_idempotency_key(key: str) -> bool:
    """Whether ``key`` is an ``Idempotency-Key`` this service takes."""
    return 0 < len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH


def fingerprint(snapshot: RequestSnapshot) -> bytes:
    """What makes two submits the same request, for ``Idempotency-Key``."""
    environ = snapshot.environ
    digest = hashlib.sha256()
    for part in (
        environ["REQUEST_METHOD"],
        environ.get("PATH_INFO", ""),
        environ.get("QUERY_STRING", ""),
    ):
        digest.update(part.encode("latin-1") + b"\0")
    digest.update(snapshot.body)
    return digest.digest()


def same_request(task_fingerprint: bytes | None, submitted: bytes) -> bool:
    """Whether a task's request digest and a submit's are the same."""
    return task_fingerprint is not None and hmac.compare_digest(task_fingerprint, submitted)
