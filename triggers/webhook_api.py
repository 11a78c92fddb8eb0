"""HTTP Webhook action: subscribe (start a request that reports to the action's callback URL) and unsubscribe
(cancel it when the flow run is canceled or the action times out). See docs/power-automate.md, recipe 2.

* ``POST /api/communities/subscriptions`` takes the body of ``POST /api/communities`` with a required
  ``callbackUrl``. The request id is derived from the callback URL (SHA-256), which makes the URL the
  idempotency key: a retried subscribe call starts nothing new. It answers without ``Location`` and
  ``Retry-After``, so the subscribe step cannot start polling: the action waits for the callback.
* ``POST /api/communities/subscriptions/unsubscribe`` takes ``{"callbackUrl": ...}`` and cancels the request
  that this URL subscribed, and only that one: the same derivation finds its id, and the URL stored in its
  input must be the same. The cancel is DELETE's (``triggers/http_api.py``). A request that has finished is
  left as it is and answered 200: the action also unsubscribes after its callback has arrived.

The callback URL is a secret (Logic Apps signs it in its query): it is neither logged nor answered, and the
status document has no field for it.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from provisioning.idempotency import REQUEST_ID_PREFIX, body_hash
from provisioning.intake import read_status
from provisioning.logs import get_logger, ids_of
from provisioning.models import (
    CommunitySubscription,
    ProvisioningInput,
    RequestStatus,
    validate_request,
    validate_unsubscribe,
)
from provisioning.problems import ProblemCode, problem
from provisioning.settings import get_settings
from provisioning.status import (
    HttpAnswer,
    created_timestamp,
    document_from_durable,
    input_of,
)
from triggers.answers import problem_answer, respond

# The start, body and cancel rules of POST and DELETE, shared rather than written twice.
from triggers.http_api import cancel_and_wait, parse_body, render, start_request, status_url_for

logger = get_logger(__name__)
bp = df.Blueprint()

SUBSCRIPTIONS_ROUTE = "communities/subscriptions"
UNSUBSCRIBE_ROUTE = SUBSCRIPTIONS_ROUTE + "/unsubscribe"
NO_STORE = {"Cache-Control": "no-store"}


def subscription_request_id(callback_url: str) -> str:
    """The request id of the subscription made with ``callback_url`` (trimmed, as validation stores it).

    A hash, so the id shows nothing of the URL; ``subscription`` in it keeps these ids apart from the ids of
    idempotency keys (``http``/``queue`` + key) and of retries (``retry`` + id).
    """
    digest = hashlib.sha256(f"subscription\n{callback_url}".encode()).hexdigest()
    return REQUEST_ID_PREFIX + digest[:32]


@bp.route(route=SUBSCRIPTIONS_ROUTE, methods=["POST"])
@bp.durable_client_input(client_name="client")
async def subscribe_community_request(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """POST /api/communities/subscriptions: start a request for an HTTP Webhook action (once per URL)."""
    settings = get_settings()
    parsed = parse_body(req, lambda body: validate_request(body, source="http", model=CommunitySubscription))
    if isinstance(parsed, HttpAnswer):
        return respond(parsed)
    request = parsed
    assert request.callback_url is not None  # required by CommunitySubscription

    instance_id = subscription_request_id(request.callback_url)
    provisioning_input = ProvisioningInput(
        request_id=instance_id,
        source="http",
        request=request.spec(),
        callback_url=request.callback_url,
        created_at=created_timestamp(datetime.now(UTC)),
        body_hash=body_hash(request),
    )
    status_url = status_url_for(req, instance_id, settings)
    conflict = (
        f"This callback URL already subscribed request {instance_id} with a different body; a new flow "
        "run has a new callback URL."
    )
    started = await start_request(client, provisioning_input, status_url, conflict)
    if isinstance(started, HttpAnswer):
        return respond(started)
    if started is not None:
        # It has finished (its callback was sent when it did): the outcome is the answer, as for POST.
        return respond(render(started, status_url, settings))
    body = {"id": instance_id, "status": RequestStatus.RUNNING.value, "statusUri": status_url}
    # No Location and no Retry-After: the action must wait for the callback, not poll.
    return respond(HttpAnswer(202, body))


@bp.route(route=UNSUBSCRIBE_ROUTE, methods=["POST"])
@bp.durable_client_input(client_name="client")
async def unsubscribe_community_request(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    """POST /api/communities/subscriptions/unsubscribe: cancel the request this callback URL subscribed."""
    parsed = parse_body(req, validate_unsubscribe)
    if isinstance(parsed, HttpAnswer):
        return respond(parsed)
    callback_url = parsed

    instance_id = subscription_request_id(callback_url)
    durable = await read_status(client, instance_id)
    subscribed = input_of(durable) if durable is not None else None
    document = document_from_durable(instance_id, durable)
    if document is None or subscribed is None or not _same_url(subscribed.callback_url, callback_url):
        logger.info("unsubscribe matched no subscription")
        return respond(_no_subscription())
    if document.status is RequestStatus.RUNNING:
        canceled = await cancel_and_wait(client, instance_id)
        if isinstance(canceled, HttpAnswer):
            return respond(canceled)
        document = canceled
        if document is None:
            return respond(_no_subscription())
    else:
        status = document.status.value
        logger.info("unsubscribe: %s is already %s", instance_id, status, extra=ids_of(instance_id))
    # 200 once the outcome is settled, whatever it is (the action also unsubscribes after its callback);
    # 202 while the cancel is still on its way. Never Location: nothing here is to be polled.
    status_code = 202 if document.status is RequestStatus.RUNNING else 200
    return respond(HttpAnswer(status_code, document.to_json(), dict(NO_STORE)))


def _same_url(stored: str | None, given: str) -> bool:
    return stored is not None and hmac.compare_digest(stored.encode(), given.encode())


def _no_subscription() -> HttpAnswer:
    detail = "No request was subscribed with this callback URL (POST /api/communities/subscriptions)."
    return problem_answer(problem(ProblemCode.NOT_FOUND, detail))
