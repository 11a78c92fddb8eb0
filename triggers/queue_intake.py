"""Queue intake: a message on ``%PROVISIONING_QUEUE%`` starts a request, at most once per ``requestId``.

A message with ``items`` (and a ``requestId``) starts a batch instead, with the same rules as
``POST /api/communities/batches`` (JSON), and the batch writes one result message when it has settled.

* Invalid message: not retried (retrying cannot fix it). A ``Rejected`` status document with the field errors
  and the original message goes to ``%RESULTS_QUEUE%``, and the function succeeds.
* Same ``requestId`` again with the same content: nothing is started or written; the running (or finished)
  request writes its own single result message.
* Same ``requestId`` with different content: ``Rejected`` with ``IdempotencyConflict``; the original request
  goes on untouched. Two such messages processed at the same moment (several workers) start one request: the
  one whose start the extension recorded first; the other is rejected.
* The start fails (storage, extension): the function raises, the host retries the message and finally moves
  it to ``<queue>-poison``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from provisioning import batch_workflow as batches
from provisioning.callbacks import redact_url
from provisioning.idempotency import body_hash, instance_id_for_key, new_instance_id
from provisioning.intake import StartOutcome, start_instance_once, start_once
from provisioning.logs import get_logger, ids_of
from provisioning.models import (
    MAX_REQUEST_ID_LENGTH,
    ErrorCode,
    ErrorInfo,
    FieldError,
    ProvisioningInput,
    QueueCommunityRequest,
    RequestStatus,
    RequestValidationError,
    StatusDocument,
    parse_json_body,
    validate_request,
)
from provisioning.status import created_timestamp

logger = get_logger(__name__)
bp = df.Blueprint()

STORAGE_CONNECTION = "AzureWebJobsStorage"
# A queue message holds 64 KiB of base64, so 48 KiB of UTF-8 JSON: a Rejected document that does not fit fails
# the output binding, and the message would be retried into the poison queue without any result. The margin
# covers the difference between json.dumps and pydantic's encoder in sizing the echo.
MAX_RESULT_BYTES = 46 * 1024
MAX_ECHOED_MESSAGE_CHARS = 16 * 1024
_TRUNCATED = "... (truncated)"
_URL = re.compile(r"https?://[^\s\"'<>]+", re.IGNORECASE)
# What a user looks like in free text (a UPN or mail address), and what the echo shows instead.
_UPN = re.compile(r"[^\s\"'<>@,;]+@[^\s\"'<>@,;]+")
HIDDEN_USER = "<user>"


@bp.queue_trigger(arg_name="message", queue_name="%PROVISIONING_QUEUE%", connection=STORAGE_CONNECTION)
@bp.queue_output(arg_name="results", queue_name="%RESULTS_QUEUE%", connection=STORAGE_CONNECTION)
@bp.durable_client_input(client_name="client")
async def intake_community_request(
    message: func.QueueMessage, results: func.Out[str], client: df.DurableOrchestrationClient
) -> None:
    body = message.get_body()
    now = created_timestamp(datetime.now(UTC))
    batch_message = _batch_message(body)
    if batch_message is not None:
        await _start_batch(batch_message, body, now, results, client)
        return
    try:
        request = validate_request(body, source="queue")
    except RequestValidationError as err:
        logger.warning("rejected queue message %s: %s", message.id, _fields(err.errors))
        results.set(_rejected(body, now, err.errors).model_dump_json(by_alias=True, exclude_none=True))
        return
    assert isinstance(request, QueueCommunityRequest)
    instance_id = instance_id_for_key(request.request_id, "queue")
    provisioning_input = ProvisioningInput(
        request_id=instance_id,
        source="queue",
        request=request.spec(),
        callback_url=request.callback_url,
        created_at=now,
        body_hash=body_hash(request),
        idempotency_key=request.request_id,
    )
    # StartFailedError propagates: the host retries the message, then poisons it.
    result = await start_once(client, provisioning_input)
    if result.outcome is StartOutcome.STARTED:
        logger.info("queue message %s started request %s", message.id, instance_id, extra=ids_of(instance_id))
    elif result.outcome is StartOutcome.EXISTING:
        logger.info(
            "queue message %s repeats request %s; nothing started",
            message.id,
            instance_id,
            extra=ids_of(instance_id),
        )
    else:
        logger.warning(
            "queue message %s reuses requestId of %s with other content",
            message.id,
            instance_id,
            extra=ids_of(instance_id),
        )
        conflict = [
            {"field": "requestId", "message": "was already used for a request with different content"}
        ]
        document = _rejected(body, now, conflict, code=ErrorCode.IDEMPOTENCY_CONFLICT)
        results.set(document.model_dump_json(by_alias=True, exclude_none=True))


def _batch_message(body: bytes) -> dict[str, Any] | None:
    """The message as a JSON object when it is a batch (it has ``items``), else None."""
    try:
        parsed = parse_json_body(body)
    except RequestValidationError:
        return None  # the single-request path reports what is wrong with it
    return parsed if isinstance(parsed, dict) and "items" in parsed else None


async def _start_batch(
    data: dict[str, Any], body: bytes, now: str, results: func.Out[str], client: df.DurableOrchestrationClient
) -> None:
    from provisioning.batches import BatchValidationError, parse_batch

    request_id = data.get("requestId")
    errors: list[dict[str, str]] = []
    if not isinstance(request_id, str) or not 0 < len(request_id.strip()) <= MAX_REQUEST_ID_LENGTH:
        errors.append(
            {"field": "requestId", "message": f"is required: 1 to {MAX_REQUEST_ID_LENGTH} characters"}
        )
    batch = None
    try:
        rest = {key: value for key, value in data.items() if key != "requestId"}
        batch = parse_batch(json.dumps(rest).encode(), "application/json")
    except BatchValidationError as err:
        errors.extend(err.errors)
    if errors or batch is None or not isinstance(request_id, str):
        logger.warning("rejected batch message: %s", _fields(errors))
        results.set(_rejected(body, now, errors).model_dump_json(by_alias=True, exclude_none=True))
        return
    key = request_id.strip()
    batch_id = batches.batch_id_for_key(key, "queue")
    orchestration_input = batches.batch_input(batch, batch_id, "queue", key, now)
    # StartFailedError propagates: the host retries the message, then poisons it.
    result = await start_instance_once(
        client, batches.BATCH_ORCHESTRATOR, batch_id, orchestration_input, orchestration_input["bodyHash"]
    )
    logger.info(
        "batch message: batch %s %s with %s items",
        batch_id,
        result.outcome.value,
        len(batch.items),
        extra=ids_of(batch_id),
    )
    if result.outcome is StartOutcome.CONFLICT:
        conflict = [{"field": "requestId", "message": "was already used for a batch with different items"}]
        document = _rejected(body, now, conflict, code=ErrorCode.IDEMPOTENCY_CONFLICT, document_id=batch_id)
        results.set(document.model_dump_json(by_alias=True, exclude_none=True))


def _fields(errors: list[dict[str, str]]) -> str:
    return ", ".join(error["field"] for error in errors)


def _rejected(
    body: bytes,
    now: str,
    errors: list[dict[str, str]],
    *,
    code: ErrorCode = ErrorCode.VALIDATION_FAILED,
    document_id: str | None = None,
) -> StatusDocument:
    parsed = _parsed(body)
    raw_request_id = parsed.get("requestId") if isinstance(parsed, dict) else None
    # Only a requestId that could be valid is echoed: a 40 KB one would not fit the result.
    request_id = (
        raw_request_id.strip()
        if isinstance(raw_request_id, str) and 0 < len(raw_request_id.strip()) <= MAX_REQUEST_ID_LENGTH
        else None
    )
    message = "; ".join(f"{error['field']}: {error['message']}" for error in errors)
    document = StatusDocument(
        id=document_id or (instance_id_for_key(request_id, "queue") if request_id else new_instance_id()),
        status=RequestStatus.REJECTED,
        created_at=now,
        last_updated_at=now,
        request_id=request_id,
        error=ErrorInfo(
            code=code,
            message=message,
            errors=[FieldError(field=error["field"], message=error["message"]) for error in errors],
        ),
    )
    room = MAX_RESULT_BYTES - len(document.model_dump_json(by_alias=True, exclude_none=True).encode())
    original = _original_message(body, max_bytes=room - len(',"originalMessage":'))
    return document.model_copy(update={"original_message": original})


def _parsed(body: bytes) -> Any:
    """The message as JSON if it parses, else its text; a URL in the text may be a signed callback URL."""
    try:
        return parse_json_body(body)
    except RequestValidationError:
        return _URL.sub(lambda match: redact_url(match.group(0)), body.decode("utf-8", errors="replace"))


def _original_message(body: bytes, max_bytes: int = MAX_RESULT_BYTES) -> Any:
    """The message for the Rejected document: JSON if it parses, else text; callback URL redacted; at most
    ``MAX_ECHOED_MESSAGE_CHARS`` characters and ``max_bytes`` bytes as JSON, else a truncated text."""
    original = _parsed(body)
    if isinstance(original, dict) and isinstance(original.get("callbackUrl"), str):
        original = {**original, "callbackUrl": redact_url(original["callbackUrl"])}
    if isinstance(original, dict):
        # User principal names are personal data: the echo keeps each user's position, not the user.
        original = {
            **original,
            **{key: _hidden_users(original[key]) for key in ("owners", "members") if key in original},
        }
    elif isinstance(original, str):
        original = _UPN.sub(HIDDEN_USER, original)
    text = original if isinstance(original, str) else json.dumps(original, ensure_ascii=False)
    if len(text) <= MAX_ECHOED_MESSAGE_CHARS and _json_size(original) <= max_bytes:
        return original
    keep = min(len(text), MAX_ECHOED_MESSAGE_CHARS)
    # Escapes and multi-byte characters make bytes outnumber characters: shrink until the JSON fits.
    while keep and (size := _json_size(text[:keep] + _TRUNCATED)) > max_bytes:
        keep = min(keep - 1, keep * max_bytes // size)
    return text[:keep] + _TRUNCATED


def _hidden_users(value: Any) -> Any:
    if isinstance(value, list):
        return [HIDDEN_USER for _ in value]
    return HIDDEN_USER if value is not None else None


def _json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode())
