"""HTTP API of batches: start one (JSON or CSV), read its progress and items, cancel it (see docs/api.md).

Thin adapters: parsing and validation live in ``provisioning.batches``, the batch's decisions and document in
``provisioning.batch_workflow``; every item is an ordinary request, readable at its own status URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import azure.durable_functions as df
import azure.functions as func

from provisioning import batch_workflow as batches
from provisioning.idempotency import IDEMPOTENCY_KEY_HEADER, retry_id_for, validate_idempotency_key
from provisioning.intake import (
    StartFailedError,
    StartOutcome,
    read_status,
    read_statuses,
    start_instance_once,
)
from provisioning.logs import get_logger, ids_of
from provisioning.models import RequestValidationError
from provisioning.problems import ProblemCode, not_retryable, problem, validation_problem
from provisioning.settings import Settings, get_settings
from provisioning.status import (
    RETRYABLE_STATUSES,
    HttpAnswer,
    created_timestamp,
    document_from_durable,
    instance_input,
)
from triggers.answers import problem_answer, respond, retry_later
from triggers.http_api import status_url_for

logger = get_logger(__name__)
bp = df.Blueprint()

BATCH_ROUTE = "communities/batches"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


@bp.route(route=BATCH_ROUTE, methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_batch(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """POST /api/communities/batches: validate every item (all or nothing), then start the batch once."""
    # Imported here, not at indexing: only this route parses batches.
    from provisioning.batches import (
        BatchTooLargeError,
        BatchValidationError,
        UnsupportedMediaTypeError,
        parse_batch,
    )

    settings = get_settings()
    try:
        batch = parse_batch(req.get_body(), req.headers.get("Content-Type"))
        key_header = req.headers.get(IDEMPOTENCY_KEY_HEADER)
        key = validate_idempotency_key(key_header) if key_header is not None else None
    except UnsupportedMediaTypeError as err:
        body = problem(ProblemCode.UNSUPPORTED_MEDIA_TYPE, str(err), errors=err.errors)
        return respond(problem_answer(body))
    except BatchTooLargeError as err:
        return respond(problem_answer(validation_problem(err.errors, code=ProblemCode.PAYLOAD_TOO_LARGE)))
    except (BatchValidationError, RequestValidationError) as err:
        return respond(problem_answer(validation_problem(err.errors)))
    if req.params.get("validateOnly", "").lower() == "true":
        return respond(
            HttpAnswer(200, {"valid": True, "items": len(batch.items), "format": batch.source_format})
        )

    batch_id = batches.batch_id_for_key(key, "http") if key is not None else batches.new_batch_id()
    batch_url = batch_url_for(req, batch_id, settings)
    orchestration_input = batches.batch_input(
        batch, batch_id, "http", key, created_timestamp(datetime.now(UTC))
    )
    try:
        result = await start_instance_once(
            client, batches.BATCH_ORCHESTRATOR, batch_id, orchestration_input, orchestration_input["bodyHash"]
        )
    except StartFailedError:
        logger.exception("could not start batch %s", batch_id, extra=ids_of(batch_id))
        return respond(retry_later("The batch was not started; send it again."))
    if result.outcome is StartOutcome.CONFLICT:
        detail = (
            f"The {IDEMPOTENCY_KEY_HEADER} was already used for batch {batch_id} with other items; "
            "use a new key for a new batch."
        )
        return respond(problem_answer(problem(ProblemCode.IDEMPOTENCY_CONFLICT, detail, instance=batch_url)))
    logger.info(
        "batch %s: %s with %s items", batch_id, result.outcome.value, len(batch.items), extra=ids_of(batch_id)
    )
    if result.outcome is StartOutcome.EXISTING and result.durable_status is not None:
        existing = batch_document_from_durable(result.durable_status)
        if existing["status"] != batches.BatchStatus.RUNNING.value:
            # The earlier batch with this key has finished: its outcome is the answer (never started twice).
            return respond(HttpAnswer(200, existing, {"Cache-Control": "no-store"}))
    body = {"id": batch_id, "status": batches.BatchStatus.RUNNING.value, "statusUri": batch_url}
    headers = {"Location": batch_url, "Retry-After": str(settings.status_poll_interval_seconds)}
    return respond(HttpAnswer(202, body, headers))


@bp.route(route=BATCH_ROUTE + "/{id}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_batch(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """GET /api/communities/batches/{id}?skip=&top=: the batch document with one page of its items."""
    settings = get_settings()
    batch_id = req.route_params.get("id", "")
    page = _page(req)
    if isinstance(page, HttpAnswer):
        return respond(page)
    durable = await read_status(client, batch_id) if batches.is_batch_id(batch_id) else None
    if durable is None:
        return respond(_not_found(batch_id))
    document = batch_document_from_durable(durable)
    if document["status"] in batches.RETRYABLE_BATCH_STATUSES:
        retry_id = batches.retry_batch_id_for(batch_id)
        if await read_status(client, retry_id) is not None:
            document["retriedBy"] = retry_id
    skip, top = page
    document["items"] = await _items(client, req, durable, document, skip, top, settings)
    if skip + top < int(document["total"]):
        document["nextLink"] = _page_url(batch_url_for(req, batch_id, settings), skip + top, top)
    headers = {"Cache-Control": "no-store"}
    status = 200
    if document["status"] == batches.BatchStatus.RUNNING.value:
        status = 202
        headers["Location"] = batch_url_for(req, batch_id, settings)
        headers["Retry-After"] = str(settings.status_poll_interval_seconds)
    return respond(HttpAnswer(status, document, headers))


@bp.route(route=BATCH_ROUTE + "/{id}", methods=["DELETE"])
@bp.durable_client_input(client_name="client")
async def cancel_batch(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """DELETE /api/communities/batches/{id}: start nothing more and cancel every item not yet settled."""
    settings = get_settings()
    batch_id = req.route_params.get("id", "")
    durable = await read_status(client, batch_id) if batches.is_batch_id(batch_id) else None
    if durable is None:
        return respond(_not_found(batch_id))
    document = batch_document_from_durable(durable)
    batch_url = batch_url_for(req, batch_id, settings)
    if document["status"] != batches.BatchStatus.RUNNING.value:
        detail = f"Batch {batch_id} has already finished with status {document['status']}; nothing to cancel."
        body = problem(ProblemCode.NOT_CANCELABLE, detail, instance=batch_url)
        body["batchStatus"] = document["status"]
        return respond(problem_answer(body))
    try:
        await client.raise_event(batch_id, batches.CANCEL_EVENT)
    except Exception:  # it finished (410) since it was read, or storage failed
        logger.info(
            "cancel event for batch %s not delivered", batch_id, exc_info=True, extra=ids_of(batch_id)
        )
        return respond(retry_later("The cancel was not delivered; send it again."))
    document["cancelRequested"] = True
    headers = {"Location": batch_url, "Retry-After": str(settings.status_poll_interval_seconds)}
    return respond(HttpAnswer(202, document, headers))


@bp.route(route=BATCH_ROUTE + "/{id}/retry", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def retry_batch(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """POST /api/communities/batches/{id}/retry: start the items of a finished batch that did not succeed
    again, as a new batch (once)."""
    settings = get_settings()
    batch_id = req.route_params.get("id", "")
    durable = await read_status(client, batch_id) if batches.is_batch_id(batch_id) else None
    if durable is None:
        return respond(_not_found(batch_id))
    document = batch_document_from_durable(durable)
    batch_url = batch_url_for(req, batch_id, settings)
    if document["status"] == batches.BatchStatus.RUNNING.value:
        detail = f"Batch {batch_id} is still running; retry it once it has finished."
        return respond(problem_answer(not_retryable(detail, batch_url, batchStatus=document["status"])))
    original = instance_input(durable)
    indexes = await _unsucceeded_items(client, batch_id, len(original.get("items") or []), document)
    if not indexes:
        detail = f"Every item of batch {batch_id} succeeded; there is nothing to retry."
        return respond(problem_answer(not_retryable(detail, batch_url, batchStatus=document["status"])))

    retry_id = batches.retry_batch_id_for(batch_id)
    retry_input = batches.retry_batch_input(original, indexes, created_timestamp(datetime.now(UTC)))
    try:
        result = await start_instance_once(
            client, batches.BATCH_ORCHESTRATOR, retry_id, retry_input, retry_input["bodyHash"]
        )
    except StartFailedError:
        logger.exception("could not start retry %s of batch %s", retry_id, batch_id, extra=ids_of(retry_id))
        return respond(retry_later("The retry could not be started or confirmed; send it again."))
    logger.info(
        "retry of batch %s: %s %s with %s items",
        batch_id,
        result.outcome.value,
        retry_id,
        len(indexes),
        extra=ids_of(retry_id),
    )
    retry_url = batch_url_for(req, retry_id, settings)
    status = batches.BatchStatus.RUNNING.value
    if result.outcome is StartOutcome.EXISTING and result.durable_status is not None:
        status = batch_document_from_durable(result.durable_status)["status"]
    body = {
        "id": retry_id,
        "status": status,
        "statusUri": retry_url,
        "retryOf": batch_id,
        "total": len(indexes),
    }
    headers = {"Location": retry_url, "Retry-After": str(settings.status_poll_interval_seconds)}
    return respond(HttpAnswer(202, body, headers))


def batch_url_for(req: func.HttpRequest, batch_id: str, settings: Settings) -> str:
    """Absolute URL of a batch (the same base and ``code`` rules as a request's status URL)."""
    request_url = status_url_for(req, "_", settings)
    base, _, query = request_url.partition("?")
    url = base.replace("/communities/requests/_", f"/{BATCH_ROUTE}/{batch_id}")
    return f"{url}?{query}" if query else url


def batch_document_from_durable(durable: Mapping[str, Any]) -> dict[str, Any]:
    output = durable.get("output")
    custom = durable.get("customStatus")
    document = output if isinstance(output, dict) and "total" in output else custom
    if not isinstance(document, dict):  # not published yet: the orchestration has not run its first step
        recorded = instance_input(durable)
        total = len(recorded.get("items") or [])
        document = {
            "id": durable.get("instanceId"),
            "status": batches.BatchStatus.RUNNING.value,
            "createdAt": recorded.get("createdAt"),
            "total": total,
            "counts": {"NotStarted": total},
            "progress": 0,
            "callback": "pending" if recorded.get("callbackUrl") else "none",
        }
    return dict(document)


async def _items(
    client: df.DurableOrchestrationClient,
    req: func.HttpRequest,
    durable: dict[str, Any],
    document: dict[str, Any],
    skip: int,
    top: int,
    settings: Settings,
) -> list[dict[str, Any]]:
    batch_id = str(document["id"])
    raw_items = instance_input(durable).get("items") or []
    names = [item["request"]["displayName"] for item in raw_items]
    not_started = int((document.get("counts") or {}).get("NotStarted", len(names)))
    rows = batches.page_of_items(batch_id, names, len(names) - not_started, skip, top)
    started = [row["requestId"] for row in rows if row["started"]]
    statuses = dict(zip(started, await read_statuses(client, started), strict=True))
    for row in rows:
        request_id = row.pop("requestId")
        del row["started"]
        row["requestId"] = request_id
        row["statusUri"] = status_url_for(req, request_id, settings)
        item = document_from_durable(request_id, statuses.get(request_id))
        if item is None:
            row["status"] = "Canceled" if document.get("cancelRequested") else "NotStarted"
            continue
        row["status"] = item.status.value
        if item.community is not None:
            row["communityId"] = item.community.id
        if item.error is not None:
            row["errorCode"] = item.error.code.value
    return rows


async def _unsucceeded_items(
    client: df.DurableOrchestrationClient, batch_id: str, total: int, document: Mapping[str, Any]
) -> list[int]:
    """Indexes of a finished batch's items that did not succeed (Failed or Canceled, or never started) and
    were not retried on their own."""
    started = total - int((document.get("counts") or {}).get("NotStarted", 0))
    request_ids = [batches.item_request_id(batch_id, index) for index in range(started)]
    items = [
        document_from_durable(request_id, status)
        for request_id, status in zip(request_ids, await read_statuses(client, request_ids), strict=True)
    ]
    unsettled = [
        index for index, item in enumerate(items) if item is None or item.status in RETRYABLE_STATUSES
    ]
    # An item already retried on its own (POST .../requests/{id}/retry) is left to that retry.
    retries = await read_statuses(client, [retry_id_for(request_ids[index]) for index in unsettled])
    return [index for index, retry in zip(unsettled, retries, strict=True) if retry is None] + list(
        range(started, total)
    )


def _page(req: func.HttpRequest) -> tuple[int, int] | HttpAnswer:
    try:
        skip = int(req.params.get("skip", "0"))
        top = int(req.params.get("top", str(DEFAULT_PAGE_SIZE)))
    except ValueError:
        skip, top = -1, -1
    if skip < 0 or not 1 <= top <= MAX_PAGE_SIZE:
        errors = [{"field": "skip/top", "message": f"skip >= 0 and 1 <= top <= {MAX_PAGE_SIZE}"}]
        return problem_answer(validation_problem(errors))
    return skip, top


def _page_url(batch_url: str, skip: int, top: int) -> str:
    separator = "&" if "?" in batch_url else "?"
    return f"{batch_url}{separator}skip={skip}&top={quote(str(top))}"


def _not_found(batch_id: str) -> HttpAnswer:
    return problem_answer(problem(ProblemCode.NOT_FOUND, f"No batch with id {batch_id!r}."))
