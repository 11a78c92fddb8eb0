"""Typed, classified Graph errors and the pure parsing behind them (error bodies, ``Retry-After``)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any


class ErrorKind(StrEnum):
    """What the caller should do about a failed Graph call."""

    TRANSIENT = "transient"  # retry later (5xx, connection failures, timeouts, malformed responses)
    THROTTLED = "throttled"  # wait Retry-After (or back off), then retry
    PERMANENT = "permanent"  # retrying the same request cannot help (4xx, refused URLs)
    AMBIGUOUS = "ambiguous"  # a create was sent but its answer was lost: the community may exist


class GraphError(Exception):
    """A failed Graph call: classification plus everything Graph told us about it (never the token)."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        http_status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        client_request_id: str | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = ErrorKind(kind)
        self.message = message
        self.http_status = http_status
        self.code = code
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.retry_after_seconds = retry_after_seconds

    @property
    def is_not_found(self) -> bool:
        return self.http_status == 404

    def __str__(self) -> str:
        parts = [f"{self.kind.value} Graph error"]
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        if self.code:
            parts.append(self.code)
        text = " ".join(parts) + f": {self.message}"
        if self.request_id:
            text += f" (request-id {self.request_id})"
        return text

    def __repr__(self) -> str:
        return f"GraphError({self.to_dict()!r})"

    def __reduce__(self) -> tuple[Callable[[dict[str, Any]], GraphError], tuple[dict[str, Any]]]:
        # Keyword-only fields would be lost by the default Exception pickling.
        return (GraphError.from_dict, (self.to_dict(),))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "httpStatus": self.http_status,
            "code": self.code,
            "message": self.message,
            "requestId": self.request_id,
            "clientRequestId": self.client_request_id,
            "retryAfterSeconds": self.retry_after_seconds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GraphError:
        return cls(
            ErrorKind(data["kind"]),
            str(data.get("message") or ""),
            http_status=data.get("httpStatus"),
            code=data.get("code"),
            request_id=data.get("requestId"),
            client_request_id=data.get("clientRequestId"),
            retry_after_seconds=data.get("retryAfterSeconds"),
        )


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, or None when absent or unreadable.

    Graph sends whole seconds, fractional seconds (its own docs show ``2.128``) or, per HTTP, a date; a date
    is taken relative to ``now()``. The result is never negative: a date in the past means "retry now".
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000" zones parse naive; an HTTP-date is GMT by definition
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - now())
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def classify_status(status: int, *, non_idempotent: bool = False) -> ErrorKind:
    """The kind of a non-2xx Graph answer.

    For a non-idempotent request (the create) a 502/504 means a gateway lost the backend's answer, so the
    backend may have acted: that is ambiguous, like a read timeout, not merely transient.
    """
    if status == 429:
        return ErrorKind.THROTTLED
    if non_idempotent and status in (502, 504):
        return ErrorKind.AMBIGUOUS
    if status >= 500 or status == 408:
        return ErrorKind.TRANSIENT
    return ErrorKind.PERMANENT


@dataclass(frozen=True)
class ErrorBody:
    """What a Graph error body says; every field is optional because bodies can be empty or not JSON."""

    code: str | None = None
    message: str | None = None
    request_id: str | None = None
    client_request_id: str | None = None


def parse_error_body(text: str) -> ErrorBody:
    """Read ``{"error": {"code", "message", "innerError"|"innererror": {"request-id", ...}}}`` leniently."""
    try:
        document = json.loads(text) if text.strip() else None
    except ValueError:
        return ErrorBody()
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        return ErrorBody()
    return ErrorBody(
        code=_string(error.get("code")),
        message=_string(error.get("message")),
        request_id=_find_inner(error, ("request-id", "requestId")),
        client_request_id=_find_inner(error, ("client-request-id", "clientRequestId")),
    )


def _find_inner(error: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    # Graph's schema says "innererror", its examples "innerError"; inner errors may nest recursively.
    inner: Any = error.get("innerError", error.get("innererror"))
    depth = 0
    while isinstance(inner, dict) and depth < 10:
        for key in keys:
            found = _string(inner.get(key))
            if found:
                return found
        inner = inner.get("innerError", inner.get("innererror"))
        depth += 1
    return None


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
