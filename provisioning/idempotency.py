"""Request ids and idempotency.

A request started with an idempotency key (HTTP ``Idempotency-Key`` header, queue ``requestId``) gets a
durable instance id derived from the key, so a repeated or concurrent start lands on the same instance: the
Durable extension refuses to start an id that is Pending or Running, which makes the instance id the lock. The
body hash, stored in the orchestration input, tells a harmless retry (same body) from a conflicting reuse.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Literal

from provisioning.models import MAX_REQUEST_ID_LENGTH, CommunityRequest, RequestValidationError

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
REQUEST_ID_PREFIX = "req-"
# 32 hex digits = 128 bits of SHA-256: collisions are out of reach, and ids stay as long as uuid4-based ones.
_HASH_HEX_DIGITS = 32
_REQUEST_ID = re.compile(rf"^{REQUEST_ID_PREFIX}[0-9a-f]{{{_HASH_HEX_DIGITS}}}$")


def instance_id_for_key(key: str, source: Literal["http", "queue"] = "http") -> str:
    """The durable instance id of the request started with idempotency ``key`` on channel ``source``.

    The channel is part of the hash: an HTTP caller's key and a queue sender's requestId are chosen by
    different systems and must not collide by accident.
    """
    digest = hashlib.sha256(f"{source}\n{key}".encode()).hexdigest()
    return REQUEST_ID_PREFIX + digest[:_HASH_HEX_DIGITS]


def new_instance_id() -> str:
    """The id of a request started without an idempotency key."""
    return REQUEST_ID_PREFIX + uuid.uuid4().hex


def is_request_id(value: str) -> bool:
    """True when ``value`` has the shape of an id this app hands out (anything else is unknown: 404)."""
    return bool(_REQUEST_ID.match(value))


def validate_idempotency_key(value: str) -> str:
    """The trimmed header value, or ``RequestValidationError`` naming the header."""
    key = value.strip()
    if not key:
        message = "must not be empty"
    elif len(key) > MAX_REQUEST_ID_LENGTH:
        message = f"must be at most {MAX_REQUEST_ID_LENGTH} characters"
    elif not key.isprintable():
        message = "must not contain control characters"
    else:
        return key
    raise RequestValidationError([{"field": IDEMPOTENCY_KEY_HEADER, "message": message}])


def body_hash(request: CommunityRequest) -> str:
    """SHA-256 of the validated request in canonical form (the queue's requestId excluded).

    Hashing the validated model rather than the raw bytes makes formatting, key order, surrounding spaces and
    duplicate owners irrelevant: a retry is recognised even when a client re-serialises the body.
    """
    canonical = request.model_dump(by_alias=True, mode="json", exclude={"request_id"})
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def retry_id_for(instance_id: str) -> str:
    """The id of the retry of ``instance_id``: the same every time, so a repeated retry starts nothing."""
    digest = hashlib.sha256(f"retry\n{instance_id}".encode()).hexdigest()
    return REQUEST_ID_PREFIX + digest[:32]
