"""Render a request's HTTP answer from its durable status.

The durable status (the extension's JSON: runtimeStatus, input, customStatus, output, ...) is mapped
onto the client contract of ``docs/api.md``: Running -> 202 with Location and Retry-After,
Succeeded -> 200, Failed -> 422, Canceled -> 409, unknown -> 404. Power Automate stops polling at the
first non-202 answer and retries 408/429/5xx, so terminal failures are 4xx, never 5xx.

The body is always rebuilt through ``StatusDocument``, which has no field for the callback URL, the
orchestration input or anything else not meant for the caller: unknown fields are dropped, not echoed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from provisioning.models import (
    CANCELED_MESSAGE,
    CallbackState,
    ErrorCode,
    ErrorInfo,
    ProvisioningInput,
    RequestStatus,
    StatusDocument,
    StatusRequest,
)
from provisioning.problems import PROBLEM_CONTENT_TYPE, ProblemCode, problem

JSON_CONTENT_TYPE = "application/json"
RUNNING_RUNTIME_STATUSES = frozenset({"Running", "Pending", "ContinuedAsNew", "Suspended"})
CANCELED_RUNTIME_STATUSES = frozenset({"Terminated", "Canceled"})
# What an operator may start again (POST .../retry), for a request or a batch's items.
RETRYABLE_STATUSES = frozenset({RequestStatus.FAILED, RequestStatus.CANCELED})
SETTLED_WHILE_RUNNING = frozenset({RequestStatus.SUCCEEDED, RequestStatus.FAILED, RequestStatus.CANCELED})
_HTTP_STATUS = {
    RequestStatus.RUNNING: 202,
    RequestStatus.SUCCEEDED: 200,
    RequestStatus.FAILED: 422,
    RequestStatus.CANCELED: 409,
    RequestStatus.REJECTED: 422,
}


@dataclass(frozen=True)
class HttpAnswer:
    status_code: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON_CONTENT_TYPE

    def body_bytes(self) -> bytes:
        return json.dumps(self.body, ensure_ascii=False).encode()


def utc_timestamp(moment: datetime) -> str:
    """ISO-8601 UTC with a Z suffix and whole seconds, the format of the times in a status document (but
    ``createdAt``: ``created_timestamp``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def created_timestamp(moment: datetime) -> str:
    """``createdAt``: ISO-8601 UTC with milliseconds and a Z suffix. The only time with a fraction: the lists
    order requests by it, so requests started within one second keep their order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _json_value(value: Any) -> Any:
    """The durable APIs hand back inputs and statuses either as JSON values or as JSON text."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


_INPUT_KEYS = frozenset(field.alias or name for name, field in ProvisioningInput.model_fields.items())


def instance_input(durable: Mapping[str, Any]) -> Mapping[str, Any]:
    """An instance's input as a JSON object (empty when it has none or another shape)."""
    raw = _json_value(durable.get("input"))
    return raw if isinstance(raw, Mapping) else {}


def recorded_body_hash(durable: Mapping[str, Any]) -> str | None:
    """The ``bodyHash`` in an instance's input (requests and batches both record one), or None."""
    value = instance_input(durable).get("bodyHash")
    return value if isinstance(value, str) else None


def input_of(durable: Mapping[str, Any]) -> ProvisioningInput | None:
    raw = _json_value(durable.get("input"))
    if not isinstance(raw, Mapping):
        return None
    # After continue-as-new the input also carries the orchestrator's own state: keep the request's fields.
    known = {key: value for key, value in raw.items() if key in _INPUT_KEYS}
    try:
        return ProvisioningInput.model_validate(known)
    except ValidationError:
        return None


def _document(value: Any) -> StatusDocument | None:
    raw = _json_value(value)
    if not isinstance(raw, Mapping):
        return None
    try:
        return StatusDocument.model_validate(raw)
    except ValidationError:
        return None


def running_document(provisioning_input: ProvisioningInput) -> StatusDocument:
    """The document of a request that has not published any progress yet."""
    return StatusDocument(
        id=provisioning_input.request_id,
        status=RequestStatus.RUNNING,
        created_at=provisioning_input.created_at,
        last_updated_at=provisioning_input.created_at,
        request=StatusRequest.from_spec(provisioning_input.request),
        callback=CallbackState.PENDING if provisioning_input.callback_url else CallbackState.NONE,
    )


def document_from_durable(instance_id: str, durable: Mapping[str, Any] | None) -> StatusDocument | None:
    """The status document of a durable instance, or None when the instance does not exist."""
    runtime_status = (durable or {}).get("runtimeStatus")
    if durable is None or not runtime_status:
        return None
    provisioning_input = input_of(durable)
    last_published = _document(durable.get("customStatus"))
    fallback = running_document(provisioning_input) if provisioning_input else None
    base = last_published or fallback or StatusDocument(id=instance_id, status=RequestStatus.RUNNING)
    updated_at = durable.get("lastUpdatedTime") or base.last_updated_at

    if runtime_status in RUNNING_RUNTIME_STATUSES:
        if last_published is not None and last_published.status in SETTLED_WHILE_RUNNING:
            # The outcome (a cancel included) is settled; only the callback / result message is still
            # being delivered, which can take minutes of retries. Pollers get the outcome now; it is final.
            return last_published.model_copy(update={"id": instance_id})
        return base.model_copy(update={"id": instance_id, "status": RequestStatus.RUNNING})
    if runtime_status == "Completed":
        final = _document(durable.get("output"))
        if final is not None:
            return final.model_copy(update={"id": instance_id})
        return _failed(base, instance_id, updated_at, "The request ended without a result.")
    if runtime_status in CANCELED_RUNTIME_STATUSES:
        # Terminated through Durable's management API (the operator fallback for a stuck request; DELETE
        # raises an event instead): the orchestrator never ran its notify step, so nothing was sent.
        return base.model_copy(
            update={
                "id": instance_id,
                "status": RequestStatus.CANCELED,
                "last_updated_at": updated_at,
                "callback": None,
                "error": ErrorInfo(code=ErrorCode.CANCELED, message=CANCELED_MESSAGE),
            }
        )
    # "Failed": the orchestration crashed. Its exception text is for the logs, not for the caller.
    return _failed(base, instance_id, updated_at, "The provisioning workflow failed unexpectedly.")


def _failed(base: StatusDocument, instance_id: str, updated_at: str | None, message: str) -> StatusDocument:
    return base.model_copy(
        update={
            "id": instance_id,
            "status": RequestStatus.FAILED,
            "last_updated_at": updated_at,
            "error": ErrorInfo(code=ErrorCode.INTERNAL_ERROR, message=message),
        }
    )


def retry_after_seconds(document: StatusDocument, poll_interval_seconds: int, now: datetime) -> int:
    """Seconds a poller should wait: until the next Graph check when known, within 1 .. the poll interval."""
    next_check = parse_timestamp(document.operation.next_check_at if document.operation else None)
    if next_check is None:
        return poll_interval_seconds
    remaining = math.ceil((next_check - now).total_seconds())
    return max(1, min(poll_interval_seconds, remaining))


def http_status_for(document: StatusDocument) -> int:
    return _HTTP_STATUS[document.status]


def render_status(
    instance_id: str,
    durable: Mapping[str, Any] | None,
    *,
    status_url: str,
    poll_interval_seconds: int,
    now: datetime,
) -> HttpAnswer:
    """The answer to ``GET /api/communities/requests/{id}``."""
    document = document_from_durable(instance_id, durable)
    if document is None:
        return not_found(instance_id)
    return render_document(
        document, status_url=status_url, poll_interval_seconds=poll_interval_seconds, now=now
    )


def render_document(
    document: StatusDocument, *, status_url: str, poll_interval_seconds: int, now: datetime
) -> HttpAnswer:
    headers = {"Cache-Control": "no-store"}
    if document.status is RequestStatus.RUNNING:
        headers["Location"] = status_url
        headers["Retry-After"] = str(retry_after_seconds(document, poll_interval_seconds, now))
    return HttpAnswer(http_status_for(document), document.to_json(), headers)


def not_found(instance_id: str) -> HttpAnswer:
    body = problem(ProblemCode.NOT_FOUND, f"There is no request with id {instance_id!r}.")
    return HttpAnswer(404, body, {"Cache-Control": "no-store"}, PROBLEM_CONTENT_TYPE)


def request_summary(document: StatusDocument, *, status_url: str) -> dict[str, Any]:
    """A row of ``GET /api/communities/requests``: the fields an operator scans, from the status document."""
    row: dict[str, Any] = {
        "id": document.id,
        "displayName": document.request.display_name if document.request else None,
        "status": document.status.value,
        "phase": document.phase.value if document.phase else None,
        "createdAt": document.created_at,
        "lastUpdatedAt": document.last_updated_at,
        "errorCode": document.error.code.value if document.error else None,
        "communityId": document.community.id if document.community else None,
        "statusUri": status_url,
    }
    return {key: value for key, value in row.items() if value is not None}
