"""HTTP API for operators: list requests (newest first, filtered, paged) and retry a failed or canceled one.

``GET /api/communities/requests`` reads the Durable management API through ``triggers.listing`` (created-time
windows, keyset paging on creation time and id, newest first: pages never repeat or skip a row). Only
``provision_community`` instances with a request id are rows (batches, create-try markers and the budget
entity never are). ``batchId`` narrows the list to the items of one batch: the batch is read once, for its
size (item ids derive from the batch id and the index) and its creation time (its items share it).

``POST /api/communities/requests/{id}/retry`` starts a Failed or Canceled request again under a new id derived
from the old one (``req-`` + SHA-256 of ``retry`` and the old id), through the intake's start-once: a repeated
retry answers the same new request.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from provisioning.batch_workflow import is_batch_id, item_request_id
from provisioning.idempotency import REQUEST_ID_PREFIX, is_request_id, retry_id_for
from provisioning.intake import StartFailedError, StartOutcome, read_status, start_once
from provisioning.logs import get_logger, ids_of
from provisioning.models import ORCHESTRATOR_NAME, RequestStatus, StatusDocument
from provisioning.problems import not_retryable, validation_problem
from provisioning.settings import get_settings
from provisioning.status import (
    RETRYABLE_STATUSES,
    RUNNING_RUNTIME_STATUSES,
    HttpAnswer,
    created_timestamp,
    document_from_durable,
    input_of,
    instance_input,
    not_found,
    parse_timestamp,
    request_summary,
)
from triggers.answers import problem_answer, respond, retry_later
from triggers.http_api import STATUS_ROUTE_PREFIX, status_url_for
from triggers.listing import (
    CONTINUATION_PARAMETER,
    FilterError,
    Page,
    decode_token,
    list_url_of,
    newest_page,
    page_answer,
    parse_statuses,
    parse_time,
    parse_top,
)

logger = get_logger(__name__)
bp = df.Blueprint()

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
LISTED_STATUSES = (
    RequestStatus.RUNNING,
    RequestStatus.SUCCEEDED,
    RequestStatus.FAILED,
    RequestStatus.CANCELED,
)


class Query:
    """The validated query of a list request."""

    def __init__(self, params: Mapping[str, str]) -> None:
        self.statuses = parse_statuses(params.get("status"), LISTED_STATUSES)
        name = params.get("displayName")
        self.display_name = name.strip().casefold() if name and name.strip() else None
        self.created_from = parse_time(params, "createdFrom")
        self.created_to = parse_time(params, "createdTo")
        if self.created_from and self.created_to and self.created_from > self.created_to:
            raise FilterError("createdFrom", "must not be later than createdTo")
        self.batch_id = _batch_id(params.get("batchId"))
        self.batch_items: frozenset[str] | None = None  # set from the batch when batch_id is given
        self.top = parse_top(params, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        self.after = decode_token(params.get(CONTINUATION_PARAMETER))
        self.params = {
            key: params[key]
            for key in ("status", "displayName", "createdFrom", "createdTo", "batchId")
            if params.get(key)
        }

    def runtime_statuses(self) -> list[str] | None:
        """Durable runtime statuses to ask for: only a Running-only filter narrows them (a finished request's
        outcome is in its output, and a settled one may still be delivering its callback)."""
        if self.statuses == {RequestStatus.RUNNING}:
            return sorted(RUNNING_RUNTIME_STATUSES)
        return None

    def matches(self, document: StatusDocument) -> bool:
        if self.batch_items is not None and document.id not in self.batch_items:
            return False
        if self.statuses and document.status not in self.statuses:
            return False
        if self.display_name is not None:
            name = document.request.display_name if document.request else ""
            return self.display_name in name.casefold()
        return True


@bp.route(route=STATUS_ROUTE_PREFIX, methods=["GET"])
@bp.durable_client_input(client_name="client")
async def list_community_requests(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """GET /api/communities/requests: requests newest first, filtered, one page at a time."""
    settings = get_settings()
    try:
        query = Query(req.params)
    except FilterError as err:
        return respond(problem_answer(validation_problem([{"field": err.parameter, "message": err.message}])))

    if query.batch_id is not None and not await _narrow_to_batch(client, query):
        return respond(page_answer("", query.params, query.top, Page([], False, frozenset()), []))

    def document_of(durable: dict[str, Any]) -> tuple[str | None, StatusDocument] | None:
        document = document_from_durable(str(durable.get("instanceId", "")), durable)
        return (document.created_at, document) if document is not None else None

    try:
        page = await newest_page(
            client,
            id_prefix=REQUEST_ID_PREFIX,
            orchestrator=ORCHESTRATOR_NAME,
            is_id=is_request_id,
            document_of=document_of,
            matches=query.matches,
            top=query.top,
            after=query.after,
            created_from=query.created_from,
            created_to=query.created_to,
            runtime_statuses=query.runtime_statuses(),
            now=datetime.now(UTC),
        )
    except Exception:
        logger.exception("listing requests failed")
        return respond(retry_later("The requests could not be listed; try again."))

    items = []
    for row in page.rows:
        document = row.document
        item = request_summary(document, status_url=status_url_for(req, document.id, settings))
        if document.retry_of is not None:
            item["retryOf"] = document.retry_of
        if document.status in RETRYABLE_STATUSES:
            retry_id = retry_id_for(document.id)
            if retry_id in page.seen or await read_status(client, retry_id) is not None:
                item["retriedBy"] = retry_id
        items.append(item)
    list_url = list_url_of(status_url_for(req, "_", settings))
    return respond(page_answer(list_url, query.params, query.top, page, items))


@bp.route(route=STATUS_ROUTE_PREFIX + "/{id}/retry", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def retry_community_request(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """POST /api/communities/requests/{id}/retry: start a Failed or Canceled request again (once)."""
    settings = get_settings()
    instance_id = req.route_params.get("id", "")
    if not is_request_id(instance_id):
        return respond(not_found(instance_id))
    durable = await read_status(client, instance_id)
    document = document_from_durable(instance_id, durable)
    original = input_of(durable) if durable is not None else None
    if document is None or original is None:
        return respond(not_found(instance_id))
    status_url = status_url_for(req, instance_id, settings)
    if document.status not in RETRYABLE_STATUSES:
        detail = f"Request {instance_id} is {document.status.value}; only Failed or Canceled can be retried."
        return respond(problem_answer(not_retryable(detail, status_url, requestStatus=document.status.value)))

    retry_id = retry_id_for(instance_id)
    retry_input = original.model_copy(
        update={
            "request_id": retry_id,
            "created_at": created_timestamp(datetime.now(UTC)),
            "retry_of": instance_id,
        }
    )
    try:
        result = await start_once(client, retry_input)
    except StartFailedError:
        logger.exception("could not start retry %s of %s", retry_id, instance_id, extra=ids_of(retry_id))
        return respond(retry_later("The retry could not be started or confirmed; send it again."))
    logger.info("retry of %s: %s %s", instance_id, result.outcome.value, retry_id, extra=ids_of(retry_id))
    retry_url = status_url_for(req, retry_id, settings)
    status = RequestStatus.RUNNING.value
    if result.outcome is StartOutcome.EXISTING and result.durable_status is not None:
        existing = document_from_durable(retry_id, result.durable_status)
        status = existing.status.value if existing is not None else status
    body = {"id": retry_id, "status": status, "statusUri": retry_url, "retryOf": instance_id}
    headers = {"Location": retry_url, "Retry-After": str(settings.status_poll_interval_seconds)}
    return respond(HttpAnswer(202, body, headers))


def _batch_id(batch_id: str | None) -> str | None:
    if batch_id is None or not batch_id.strip():
        return None
    if not is_batch_id(batch_id.strip()):
        raise FilterError("batchId", "must be a batch id (batch- and 32 hexadecimal digits)")
    return batch_id.strip()


async def _narrow_to_batch(client: df.DurableOrchestrationClient, query: Query) -> bool:
    """Narrow ``query`` to the items of its batch (their ids, and the batch's creation time, which its items
    share); False when there is no such batch."""
    assert query.batch_id is not None
    durable = await read_status(client, query.batch_id)
    if durable is None:
        return False
    recorded = instance_input(durable)
    total = len(recorded.get("items") or [])
    query.batch_items = frozenset(item_request_id(query.batch_id, index) for index in range(total))
    created = parse_timestamp(recorded.get("createdAt"))
    if created is not None and (query.created_from is None or query.created_from < created):
        query.created_from = created
    return True
