"""HTTP API: start a community request, read its status, cancel it (see docs/api.md).

Thin adapters: validation, idempotency and status rendering live in ``provisioning``; this module turns
HTTP into those calls and their results back into HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import quote, urlsplit

import azure.durable_functions as df
import azure.functions as func

from provisioning.idempotency import (
    IDEMPOTENCY_KEY_HEADER,
    body_hash,
    instance_id_for_key,
    is_request_id,
    new_instance_id,
    validate_idempotency_key,
)
from provisioning.intake import StartFailedError, StartOutcome, read_status, start_fresh, start_once
from provisioning.logs import get_logger, ids_of
from provisioning.models import (
    BodyTooLargeError,
    CommunityRequest,
    ProvisioningInput,
    RequestStatus,
    RequestValidationError,
    StatusDocument,
    validate_request,
)
from provisioning.problems import ProblemCode, problem, validation_problem
from provisioning.settings import Settings, get_settings
from provisioning.status import (
    HttpAnswer,
    created_timestamp,
    document_from_durable,
    not_found,
    render_document,
)
from provisioning.workflow import CANCEL_EVENT
from triggers.answers import gateway_prefix, problem_answer, respond, retry_later

logger = get_logger(__name__)
T = TypeVar("T")
bp = df.Blueprint()

STATUS_ROUTE_PREFIX = "communities/requests"
# GET <status URL>/status: the status document at once (200), beside the status URL that waits (202).
STATUS_NOW_ROUTE_SUFFIX = "status"
# DELETE waits this long for the cancel to take effect before answering 202 instead of 200.
CANCEL_CONFIRM_SECONDS = 3.0
CANCEL_CONFIRM_POLL_SECONDS = 0.1


@bp.route(route="communities", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_community_request(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """POST /api/communities: validate, then start the provisioning orchestration (once per key)."""
    settings = get_settings()

    def parse(body: bytes) -> tuple[CommunityRequest, str | None]:
        key_header = req.headers.get(IDEMPOTENCY_KEY_HEADER)
        key = validate_idempotency_key(key_header) if key_header is not None else None
        return validate_request(body, source="http"), key

    parsed = parse_body(req, parse)
    if isinstance(parsed, HttpAnswer):
        return respond(parsed)
    request, key = parsed
    instance_id = instance_id_for_key(key, "http") if key is not None else new_instance_id()
    provisioning_input = ProvisioningInput(
        request_id=instance_id,
        source="http",
        request=request.spec(),
        callback_url=request.callback_url,
        created_at=created_timestamp(datetime.now(UTC)),
        body_hash=body_hash(request),
        idempotency_key=key,
    )
    status_url = status_url_for(req, instance_id, settings)
    conflict = (
        f"The {IDEMPOTENCY_KEY_HEADER} was already used for request {instance_id} with a different body; "
        "use a new key for a new request."
    )
    started = await start_request(client, provisioning_input, status_url, conflict, fresh=key is None)
    if isinstance(started, HttpAnswer):
        return respond(started)
    if started is not None:
        # The earlier request with this key has finished: its outcome is the answer (never started twice).
        return respond(render(started, status_url, settings))
    answer = HttpAnswer(
        202,
        {"id": instance_id, "status": RequestStatus.RUNNING.value, "statusUri": status_url},
        {"Location": status_url, "Retry-After": str(settings.status_poll_interval_seconds)},
    )
    return respond(answer)


def parse_body(req: func.HttpRequest, parse: Callable[[bytes], T]) -> T | HttpAnswer:
    """The body as ``parse`` reads it, or the problem answer: 415 for a media type other than JSON, 413 for
    a body over the limits, 400 naming every bad field."""
    media_problem = _check_content_type(req.headers.get("Content-Type"))
    if media_problem is not None:
        return media_problem
    try:
        return parse(req.get_body())
    except BodyTooLargeError as err:
        return problem_answer(validation_problem(err.errors, code=ProblemCode.PAYLOAD_TOO_LARGE))
    except RequestValidationError as err:
        return problem_answer(validation_problem(err.errors))


async def start_request(
    client: df.DurableOrchestrationClient,
    provisioning_input: ProvisioningInput,
    status_url: str,
    conflict_detail: str,
    *,
    fresh: bool = False,
) -> HttpAnswer | StatusDocument | None:
    """Start the request once: None when it runs (started now or before), the document of an earlier request
    with this id that has finished, or the answer when it cannot start (409 other body, 503)."""
    instance_id = provisioning_input.request_id
    try:
        if fresh:
            result = await start_fresh(client, provisioning_input)
        else:
            result = await start_once(client, provisioning_input)
    except StartFailedError:
        logger.exception("could not start request %s", instance_id, extra=ids_of(instance_id))
        return retry_later("The request could not be started or confirmed; send it again.")
    if result.outcome is StartOutcome.CONFLICT:
        return problem_answer(problem(ProblemCode.IDEMPOTENCY_CONFLICT, conflict_detail, instance=status_url))
    if result.outcome is StartOutcome.STARTED:
        logger.info("started request %s", instance_id, extra=ids_of(instance_id))
        return None
    logger.info("request %s already exists; nothing started", instance_id, extra=ids_of(instance_id))
    document = document_from_durable(instance_id, result.durable_status)
    return document if document is not None and document.status is not RequestStatus.RUNNING else None


@bp.route(route=STATUS_ROUTE_PREFIX + "/{id}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_community_request(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """GET /api/communities/requests/{id}: the request's status document."""
    settings = get_settings()
    instance_id = req.route_params.get("id", "")
    if not is_request_id(instance_id):
        return respond(not_found(instance_id))
    document = document_from_durable(instance_id, await read_status(client, instance_id))
    if document is None:
        return respond(not_found(instance_id))
    return respond(render(document, status_url_for(req, instance_id, settings), settings))


@bp.route(route=STATUS_ROUTE_PREFIX + "/{id}/" + STATUS_NOW_ROUTE_SUFFIX, methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_community_request_now(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """GET /api/communities/requests/{id}/status: the request's status document at once, whatever its status.

    Always 200 for a known request (Running, Succeeded, Failed, Canceled) and without ``Location``, so that a
    flow reads the phase or branches on the outcome without waiting; the status URL is the one that waits.
    """
    instance_id = req.route_params.get("id", "")
    if not is_request_id(instance_id):
        return respond(not_found(instance_id))
    document = document_from_durable(instance_id, await read_status(client, instance_id))
    if document is None:
        return respond(not_found(instance_id))
    return respond(HttpAnswer(200, document.to_json(), {"Cache-Control": "no-store"}))


@bp.route(route=STATUS_ROUTE_PREFIX + "/{id}", methods=["DELETE"])
@bp.durable_client_input(client_name="client")
async def cancel_community_request(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """DELETE /api/communities/requests/{id}: cancel a running request.

    Raises the orchestrator's cancel event rather than terminating it, so the orchestrator itself ends as
    Canceled and sends the one callback / result message; a cancel that loses the race against the outcome is
    ignored there, and the answer is then 409 NotCancelable.
    """
    settings = get_settings()
    instance_id = req.route_params.get("id", "")
    if not is_request_id(instance_id):
        return respond(not_found(instance_id))
    status_url = status_url_for(req, instance_id, settings)
    document = document_from_durable(instance_id, await read_status(client, instance_id))
    if document is None:
        return respond(not_found(instance_id))
    if document.status is RequestStatus.RUNNING:
        canceled = await cancel_and_wait(client, instance_id)
        if isinstance(canceled, HttpAnswer):
            return respond(canceled)
        document = canceled
        if document is None:
            return respond(not_found(instance_id))
        if document.status is RequestStatus.CANCELED:
            return respond(replace(render(document, status_url, settings), status_code=200))
        if document.status is RequestStatus.RUNNING:
            # The orchestrator sees the cancel at its next step or wait: the status URL shows Canceled then.
            return respond(render(document, status_url, settings))
    detail = (
        f"Request {instance_id} has already finished with status {document.status.value}; nothing to cancel."
    )
    body = problem(ProblemCode.NOT_CANCELABLE, detail, instance=status_url)
    body["requestStatus"] = document.status.value
    return respond(problem_answer(body))


async def cancel_and_wait(
    client: df.DurableOrchestrationClient, instance_id: str
) -> StatusDocument | HttpAnswer | None:
    """Cancel a running request and wait a little for its outcome: its document (settled, or still running
    when the cancel is on its way), None when it vanished, or 503 when the cancel could not be delivered."""
    if await _request_cancel(client, instance_id):
        logger.info("cancel requested for %s", instance_id, extra=ids_of(instance_id))
        # An event raised while the orchestrator continues as new is carried over to the next execution
        # (DTFx), so one raise is enough.
        return await _wait_until_settled(client, instance_id)
    # It finished (410) or vanished (404) since it was read, or storage failed.
    document = document_from_durable(instance_id, await read_status(client, instance_id))
    if document is not None and document.status is RequestStatus.RUNNING:
        return retry_later("The cancel was not delivered; send it again.")
    return document


async def _request_cancel(client: df.DurableOrchestrationClient, instance_id: str) -> bool:
    try:
        await client.raise_event(instance_id, CANCEL_EVENT)
    except Exception:  # the SDK raises a plain Exception for 410 (finished) and 404 (unknown)
        logger.info(
            "cancel event for %s not delivered", instance_id, exc_info=True, extra=ids_of(instance_id)
        )
        return False
    return True


async def _wait_until_settled(
    client: df.DurableOrchestrationClient, instance_id: str
) -> StatusDocument | None:
    """The request's document once its outcome is settled, or its running document after a few seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CANCEL_CONFIRM_SECONDS
    while True:
        document = document_from_durable(instance_id, await read_status(client, instance_id))
        if document is None or document.status is not RequestStatus.RUNNING or loop.time() >= deadline:
            return document
        await asyncio.sleep(CANCEL_CONFIRM_POLL_SECONDS)


def status_url_for(req: func.HttpRequest, instance_id: str, settings: Settings) -> str:
    """Absolute URL of a request's status.

    Through a Power Platform connector (a valid ``X-MS-APIM-Referrer-Prefix``, see ``gateway_prefix``) the
    URL is on the connection's gateway prefix, without ``code``: the engine's polls then go through the
    connection, which authorises them as it did the call. Otherwise the base is ``PUBLIC_BASE_URL`` when set
    (API Management, Front Door), else the scheme, host and route prefix of the incoming request.
    ``X-Forwarded-*`` headers are not trusted: any client can send them. A ``code`` query parameter
    (function key) is carried over so that Power Automate, which follows ``Location`` as-is, stays
    authorised; a key sent in the ``x-functions-key`` header is never copied.
    """
    gateway = gateway_prefix(req.headers)
    if gateway is not None:
        return f"{gateway}/{STATUS_ROUTE_PREFIX}/{instance_id}"
    if settings.public_base_url:
        base = settings.public_base_url
    else:
        parts = urlsplit(req.url)
        path = parts.path
        marker = path.rfind("/communities")
        prefix = path[:marker] if marker >= 0 else "/api"
        base = f"{parts.scheme}://{parts.netloc}{prefix}"
    url = f"{base}/{STATUS_ROUTE_PREFIX}/{instance_id}"
    code = req.params.get("code")
    if code:
        url += "?code=" + quote(code, safe="")
    return url


def _check_content_type(content_type: str | None) -> HttpAnswer | None:
    media_type, _, parameters = (content_type or "").partition(";")
    media_type = media_type.strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        shown = media_type or "none"
        return problem_answer(
            problem(
                ProblemCode.UNSUPPORTED_MEDIA_TYPE,
                f"Content-Type must be application/json, got {shown}.",
                errors=[{"field": "Content-Type", "message": "must be application/json"}],
            )
        )
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return problem_answer(
                problem(
                    ProblemCode.UNSUPPORTED_MEDIA_TYPE,
                    "The body must be UTF-8 encoded JSON.",
                    errors=[{"field": "Content-Type", "message": "charset must be utf-8"}],
                )
            )
    return None


def render(document: StatusDocument, status_url: str, settings: Settings) -> HttpAnswer:
    """The HTTP answer of a status document (202 while running, else its final status)."""
    return render_document(
        document,
        status_url=status_url,
        poll_interval_seconds=settings.status_poll_interval_seconds,
        now=datetime.now(UTC),
    )
