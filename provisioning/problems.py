"""RFC 9457 problem details: the body of every error answer of the HTTP API."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

PROBLEM_CONTENT_TYPE = "application/problem+json"
_TYPE_BASE = "urn:community-provisioner:problem:"


class ProblemCode(StrEnum):
    VALIDATION_FAILED = "ValidationFailed"
    PAYLOAD_TOO_LARGE = "PayloadTooLarge"
    UNSUPPORTED_MEDIA_TYPE = "UnsupportedMediaType"
    IDEMPOTENCY_CONFLICT = "IdempotencyConflict"
    NOT_FOUND = "NotFound"
    NOT_CANCELABLE = "NotCancelable"
    NOT_RETRYABLE = "NotRetryable"
    SERVICE_UNAVAILABLE = "ServiceUnavailable"


_TITLES = {
    ProblemCode.VALIDATION_FAILED: (400, "The request is not valid"),
    ProblemCode.PAYLOAD_TOO_LARGE: (413, "The request body is too large"),
    ProblemCode.UNSUPPORTED_MEDIA_TYPE: (415, "The request body must be JSON"),
    ProblemCode.IDEMPOTENCY_CONFLICT: (409, "The idempotency key was used with a different request"),
    ProblemCode.NOT_FOUND: (404, "No such request"),
    ProblemCode.NOT_CANCELABLE: (409, "The request has already finished"),
    ProblemCode.NOT_RETRYABLE: (409, "Only what failed or was canceled can be retried"),
    ProblemCode.SERVICE_UNAVAILABLE: (503, "The request could not be started; try again"),
}


def problem_status(code: ProblemCode) -> int:
    return _TITLES[code][0]


def problem(
    code: ProblemCode,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    """A problem details body; ``code`` doubles as a machine-readable member for flows to branch on."""
    status, title = _TITLES[code]
    body: dict[str, Any] = {
        "type": _TYPE_BASE + code.value,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code.value,
    }
    if instance is not None:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return body


def not_retryable(detail: str, instance: str, **state: str) -> dict[str, Any]:
    """409 NotRetryable, with the state that forbids it (``requestStatus`` or ``batchStatus``)."""
    return {**problem(ProblemCode.NOT_RETRYABLE, detail, instance=instance), **state}


def validation_problem(
    errors: list[dict[str, str]], *, code: ProblemCode = ProblemCode.VALIDATION_FAILED
) -> dict[str, Any]:
    """A 400/413 problem whose detail lists every field error, so a human reading only the detail can act."""
    detail = "; ".join(f"{error['field']}: {error['message']}" for error in errors)
    return problem(code, detail, errors=errors)
