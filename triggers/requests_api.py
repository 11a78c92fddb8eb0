"""HTTP API for operators: list requests (newest first, filtered, paged) and retry a failed or canceled one.

``GET /api/communities/requests`` reads the Durable management API (``GET instances/``) page by page with its
``x-ms-continuation-token``: the SDK's ``get_status_by`` / ``get_status_all`` return one backend page only and
drop that header, so the query is sent here, to the client's own ``rpcBaseUrl``. Only ``provision_community``
instances with a request id are rows (batches, create-try markers and the budget entity never are).

Paging is keyset paging on (created time, id), newest first: the continuation token is the last row's key,
and the next page holds only rows strictly older than it. Requests started while a caller pages are newer than
every key already handed out, so pages never repeat or skip a row; the new requests appear on a fresh first
page.

``POST /api/communities/requests/{id}/retry`` starts a Failed or Canceled request again under a new id derived
from the old one (``req-`` + SHA-256 of ``retry`` and the old id), through the intake's start-once: a repeated
retry answers the same new request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
import azure.durable_functions as df
import azure.functions as func

from provisioning.idempotency import REQUEST_ID_PREFIX, is_request_id
from provisioning.intake import StartFailedError, StartOutcome, read_status, start_once
from provisioning.logs import get_logger, ids_of
from provisioning.models import ORCHESTRATOR_NAME, RequestStatus, StatusDocument
from provisioning.problems import not_retryable, validation_problem
from provisioning.settings import get_settings
from provisioning.status import (
    RETRYABLE_STATUSES,
    RUNNING_RUNTIME_STATUSES,
    HttpAnswer,
    document_from_durable,
    input_of,
    not_found,
    parse_timestamp,
    request_summary,
    retry_of,
    utc_timestamp,
)
from triggers.answers import problem_answer, respond, retry_later
from triggers.http_api import STATUS_ROUTE_PREFIX, status_url_for

logger = get_logger(__name__)
bp = df.Blueprint()

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# Rows asked of the management API per call (its own default page is 100).
BACKEND_PAGE_SIZE = 1000
LISTED_STATUSES = (
    RequestStatus.RUNNING,
    RequestStatus.SUCCEEDED,
    RequestStatus.FAILED,
    RequestStatus.CANCELED,
)
CONTINUATION_PARAMETER = "continuationToken"


class FilterError(ValueError):
    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


class Query:
    """The validated query of a list request."""

    def __init__(self, params: Mapping[str, str]) -> None:
        self.statuses = _statuses(params.get("status"))
        name = params.get("displayName")
        self.display_name = name.strip().casefold() if name and name.strip() else None
        self.created_from = _time(params, "createdFrom")
        self.created_to = _time(params, "createdTo")
        if self.created_from and self.created_to and self.created_from > self.created_to:
            raise FilterError("createdFrom", "must not be later than createdTo")
        top = params.get("top", str(DEFAULT_PAGE_SIZE))
        if not top.strip().isdigit() or not 1 <= int(top) <= MAX_PAGE_SIZE:
            raise FilterError("top", f"must be a whole number from 1 to {MAX_PAGE_SIZE}")
        self.top = int(top)
        self.after = _decode_token(params.get(CONTINUATION_PARAMETER))
        self.params = {
            key: params[key]
            for key in ("status", "displayName", "createdFrom", "createdTo")
            if params.get(key)
        }

    def runtime_statuses(self) -> list[str] | None:
        """Durable runtime statuses to ask for: only a Running-only filter narrows them (a finished request's
        outcome is in its output, and a settled one may still be delivering its callback)."""
        if self.statuses == {RequestStatus.RUNNING}:
            return sorted(RUNNING_RUNTIME_STATUSES)
        return None

    def matches(self, document: StatusDocument) -> bool:
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
    try:
        instances = await _request_instances(client, query)
    except Exception:
        logger.exception("listing requests failed")
        return respond(retry_later("The requests could not be listed; try again."))

    rows: list[tuple[tuple[str, str], StatusDocument, dict[str, Any]]] = []
    for durable in instances:
        instance_id = str(durable.get("instanceId", ""))
        key = (_created_key(durable), instance_id)
        if query.after is not None and key >= query.after:
            continue
        document = document_from_durable(instance_id, durable)
        if document is not None and query.matches(document):
            rows.append((key, document, durable))
    rows.sort(key=lambda row: row[0], reverse=True)
    page = rows[: query.top]
    retried_by = {retry_of(durable): str(durable.get("instanceId")) for durable in instances}

    items = []
    for _, document, durable in page:
        item = request_summary(document, status_url=status_url_for(req, document.id, settings))
        if (original := retry_of(durable)) is not None:
            item["retryOf"] = original
        if document.status in RETRYABLE_STATUSES:
            retry_id = retry_id_for(document.id)
            if retry_id in retried_by.values() or await read_status(client, retry_id) is not None:
                item["retriedBy"] = retry_id
        items.append(item)
    body: dict[str, Any] = {"items": items}
    headers = {"Cache-Control": "no-store"}
    if len(rows) > query.top:
        next_link = _next_link(req, query, page[-1][0])
        body["nextLink"] = next_link
        headers["Link"] = f'<{next_link}>; rel="next"'
    return respond(HttpAnswer(200, body, headers))


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
            "created_at": utc_timestamp(datetime.now(UTC)),
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


def retry_id_for(instance_id: str) -> str:
    """The id of the retry of ``instance_id``: the same every time, so a repeated retry starts nothing."""
    digest = hashlib.sha256(f"retry\n{instance_id}".encode()).hexdigest()
    return REQUEST_ID_PREFIX + digest[:32]


async def _request_instances(client: df.DurableOrchestrationClient, query: Query) -> list[dict[str, Any]]:
    """Every request instance in the query's time range, through the management API's continuation token."""
    created_to = query.created_to
    if query.after is not None:
        cursor = parse_timestamp(query.after[0])
        if cursor is not None and (created_to is None or cursor < created_to):
            created_to = cursor
    params: dict[str, str] = {
        "instanceIdPrefix": REQUEST_ID_PREFIX,
        "showInput": "true",
        "top": str(BACKEND_PAGE_SIZE),
    }
    if query.created_from is not None:
        params["createdTimeFrom"] = query.created_from.isoformat().replace("+00:00", "Z")
    if created_to is not None:
        params["createdTimeTo"] = created_to.isoformat().replace("+00:00", "Z")
    if (runtime := query.runtime_statuses()) is not None:
        params["runtimeStatus"] = ",".join(runtime)
    base_url = client._orchestration_bindings.rpc_base_url  # the SDK has no paging call
    url = f"{base_url}instances/?{urlencode(params)}"
    found: list[dict[str, Any]] = []
    token: str | None = None
    async with aiohttp.ClientSession() as session:
        while True:
            headers = {"x-ms-continuation-token": token} if token else {}
            async with session.get(url, headers=headers) as response:
                if response.status != 200:
                    raise RuntimeError(f"listing instances answered {response.status}")
                statuses = await response.json(content_type=None)
                token = response.headers.get("x-ms-continuation-token")
            found.extend(
                status
                for status in statuses or []
                if status.get("name") == ORCHESTRATOR_NAME
                and is_request_id(str(status.get("instanceId", "")))
            )
            if not token:
                return found


def _created_key(durable: Mapping[str, Any]) -> str:
    created = parse_timestamp(durable.get("createdTime"))
    return created.astimezone(UTC).isoformat() if created else ""


def _statuses(value: str | None) -> set[RequestStatus]:
    if value is None or not value.strip():
        return set()
    known = {status.value.casefold(): status for status in LISTED_STATUSES}
    wanted = set()
    for name in value.split(","):
        status = known.get(name.strip().casefold())
        if status is None:
            allowed = ", ".join(status.value for status in LISTED_STATUSES)
            raise FilterError("status", f"{name.strip()!r} is not one of {allowed}")
        wanted.add(status)
    return wanted


def _time(params: Mapping[str, str], name: str) -> datetime | None:
    value = params.get(name)
    if value is None or not value.strip():
        return None
    # An unencoded '+' of an offset arrives as a space.
    parsed = parse_timestamp(value.strip().replace(" ", "+"))
    if parsed is None:
        raise FilterError(name, "must be an ISO-8601 date and time, e.g. 2026-01-01T00:00:00Z")
    return parsed


def _decode_token(value: str | None) -> tuple[str, str] | None:
    if not value:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(value.encode()))
        created, instance_id = key["t"], key["i"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        key = None
    if key is None or not isinstance(created, str) or not isinstance(instance_id, str):
        raise FilterError(CONTINUATION_PARAMETER, "is not a token this API returned")
    if parse_timestamp(created) is None:
        raise FilterError(CONTINUATION_PARAMETER, "is not a token this API returned")
    return created, instance_id


def _next_link(req: func.HttpRequest, query: Query, last: tuple[str, str]) -> str:
    token = base64.urlsafe_b64encode(json.dumps({"t": last[0], "i": last[1]}).encode()).decode()
    params = dict(query.params)
    params["top"] = str(query.top)
    params[CONTINUATION_PARAMETER] = token
    code = req.params.get("code")
    if code:
        params["code"] = code
    list_url = status_url_for(req, "_", get_settings()).partition("?")[0].removesuffix("/_")
    return f"{list_url}?{urlencode(params)}"
