"""Queue intake: a message on ``%PROVISIONING_QUEUE%`` starts a request, at most once per ``requestId``.

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
import logging
import re
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from provisioning.callbacks import redact_url
from provisioning.idempotency import body_hash, instance_id_for_key, new_instance_id
from provisioning.intake import StartOutcome, start_once
from provisioning.models import (
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
from provisioning.status import utc_timestamp

logger = logging.getLogger(__name__)
bp = df.Blueprint()

STORAGE_CONNECTION = "AzureWebJobsStorage"
# A result message must fit the 64 KiB queue limit after base64 (x4/3) with room for the rest of the document.
MAX_ECHOED_MESSAGE_CHARS = 16 * 1024
_URL = re.compile(r"https?://[^\s\"'<>]+", re.IGNORECASE)


@bp.queue_trigger(arg_name="message", queue_name="%PROVISIONING_QUEUE%", connection=STORAGE_CONNECTION)
@bp.queue_output(arg_name="results", queue_name="%RESULTS_QUEUE%", connection=STORAGE_CONNECTION)
@bp.durable_client_input(client_name="client")
async def intake_community_request(
    message: func.QueueMessage, results: func.Out[str], client: df.DurableOrchestrationClient
) -> None:
    body = message.get_body()
    now = utc_timestamp(datetime.now(UTC))
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
        logger.info("queue message %s started request %s", message.id, instance_id)
    elif result.outcome is StartOutcome.EXISTING:
        logger.info("queue message %s repeats request %s; nothing started", message.id, instance_id)
    else:
        logger.warning("queue message %s reuses requestId of %s with other content", message.id, instance_id)
        conflict = [
            {"field": "requestId", "message": "was already used for a request with different content"}
        ]
        document = _rejected(body, now, conflict, code=ErrorCode.IDEMPOTENCY_CONFLICT)
        results.set(document.model_dump_json(by_alias=True, exclude_none=True))


def _fields(errors: list[dict[str, str]]) -> str:
    return ", ".join(error["field"] for error in errors)


def _rejected(
    body: bytes,
    now: str,
    errors: list[dict[str, str]],
    *,
    code: ErrorCode = ErrorCode.VALIDATION_FAILED,
) -> StatusDocument:
    original = _original_message(body)
    raw_request_id = original.get("requestId") if isinstance(original, dict) else None
    request_id = (
        raw_request_id.strip() if isinstance(raw_request_id, str) and raw_request_id.strip() else None
    )
    message = "; ".join(f"{error['field']}: {error['message']}" for error in errors)
    return StatusDocument(
        id=instance_id_for_key(request_id, "queue") if request_id else new_instance_id(),
        status=RequestStatus.REJECTED,
        created_at=now,
        last_updated_at=now,
        request_id=request_id,
        error=ErrorInfo(
            code=code,
            message=message,
            errors=[FieldError(field=error["field"], message=error["message"]) for error in errors],
        ),
        original_message=original,
    )


def _original_message(body: bytes) -> Any:
    """The message for the Rejected document: JSON if it parses, else text; callback URL redacted; bounded."""
    try:
        original: Any = parse_json_body(body)
    except RequestValidationError:
        # Not JSON: echo the text, but a URL in it may be a signed callback URL.
        original = _URL.sub(lambda match: redact_url(match.group(0)), body.decode("utf-8", errors="replace"))
    if isinstance(original, dict) and isinstance(original.get("callbackUrl"), str):
        original = {**original, "callbackUrl": redact_url(original["callbackUrl"])}
    text = original if isinstance(original, str) else json.dumps(original, ensure_ascii=False)
    if len(text) > MAX_ECHOED_MESSAGE_CHARS:
        return text[:MAX_ECHOED_MESSAGE_CHARS] + "... (truncated)"
    return original
