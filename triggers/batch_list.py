"""HTTP API for operators: ``GET /api/communities/batches`` lists batches newest first, filtered, paged.

The same machinery as the requests list (``triggers.listing``: the instance query read in created-time
windows, keyset paging on creation time and id). Only ``provision_batch`` instances with a batch id are rows.
A row is the batch's document as ``GET /api/communities/batches/{id}`` answers it, without items, plus its
URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from provisioning import batch_workflow as batches
from provisioning.intake import read_status
from provisioning.logs import get_logger
from provisioning.problems import validation_problem
from provisioning.settings import get_settings
from provisioning.status import RUNNING_RUNTIME_STATUSES
from triggers.answers import problem_answer, respond, retry_later

# The document GET answers, so a row and the batch's own URL never disagree.
from triggers.batch_api import BATCH_ROUTE, batch_document_from_durable, batch_url_for
from triggers.listing import (
    CONTINUATION_PARAMETER,
    FilterError,
    decode_token,
    list_url_of,
    newest_page,
    page_answer,
    parse_statuses,
    parse_top,
)

logger = get_logger(__name__)
bp = df.Blueprint()

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class BatchQuery:
    """The validated query of a batch list request."""

    def __init__(self, params: Mapping[str, str]) -> None:
        self.statuses = parse_statuses(params.get("status"), list(batches.BatchStatus))
        self.top = parse_top(params, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        self.after = decode_token(params.get(CONTINUATION_PARAMETER))
        self.params = {key: params[key] for key in ("status",) if params.get(key)}

    def runtime_statuses(self) -> frozenset[str] | None:
        """Only a Running-only filter narrows the runtime statuses asked for (a settled batch may still be
        delivering its callback while its instance runs)."""
        return RUNNING_RUNTIME_STATUSES if self.statuses == {batches.BatchStatus.RUNNING} else None

    def matches(self, document: Mapping[str, Any]) -> bool:
        return not self.statuses or document.get("status") in {status.value for status in self.statuses}


@bp.route(route=BATCH_ROUTE, methods=["GET"])
@bp.durable_client_input(client_name="client")
async def list_community_batches(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """GET /api/communities/batches: batches newest first, filtered by status, one page at a time."""
    settings = get_settings()
    try:
        query = BatchQuery(req.params)
    except FilterError as err:
        return respond(problem_answer(validation_problem([{"field": err.parameter, "message": err.message}])))

    def document_of(durable: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        document = batch_document_from_durable(durable)
        return document.get("createdAt"), document

    try:
        page = await newest_page(
            client,
            id_prefix=batches.BATCH_ID_PREFIX,
            orchestrator=batches.BATCH_ORCHESTRATOR,
            is_id=batches.is_batch_id,
            document_of=document_of,
            matches=query.matches,
            top=query.top,
            after=query.after,
            created_from=None,
            created_to=None,
            runtime_statuses=query.runtime_statuses(),
            now=datetime.now(UTC),
        )
    except Exception:
        logger.exception("listing batches failed")
        return respond(retry_later("The batches could not be listed; try again."))

    items = []
    for listed in page.rows:
        document = listed.document
        batch_id = str(document["id"])
        row = {**document, "statusUri": batch_url_for(req, batch_id, settings)}
        if document.get("status") in batches.RETRYABLE_BATCH_STATUSES:
            # Retries are newer than the batch, so a later page may not have read it: then one read.
            retry_id = batches.retry_batch_id_for(batch_id)
            if retry_id in page.seen or await read_status(client, retry_id) is not None:
                row["retriedBy"] = retry_id
        items.append(row)
    list_url = list_url_of(batch_url_for(req, "_", settings))
    return respond(page_answer(list_url, query.params, query.top, page, items))
