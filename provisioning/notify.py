"""Deliver a finished request's status document to the caller's ``callbackUrl`` (one POST).

The orchestrator retries with backoff (durable timers) while the answer says ``retryable``. The callback URL
is a secret (Logic Apps signs it in the query string): it is checked against the callback policy again right
before sending (DNS may have changed since validation), never followed through redirects, and only ever
reported through ``origin_of``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from provisioning.callbacks import CallbackPolicy, CallbackUrlError, origin_of
from provisioning.logs import get_logger

logger = get_logger(__name__)

CONNECT_TIMEOUT_SECONDS = 5.0
# Logic Apps answers a callback within its inbound request limit (120 s); waiting longer only blocks a worker.
READ_TIMEOUT_SECONDS = 30.0
# Statuses worth another attempt: the receiver is busy, throttling, or briefly down.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def deliver_callback(
    url: str,
    document: Mapping[str, Any],
    *,
    policy: CallbackPolicy | None = None,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """POST ``document`` as JSON to ``url``: ``{"delivered", "retryable", "detail"}`` (no query in detail)."""
    policy = policy or CallbackPolicy.from_settings()
    shown = origin_of(url)
    try:
        policy.check_resolved(url)
    except CallbackUrlError as err:
        logger.warning("callback to %s refused by the callback policy: %s", shown, err)
        return {"delivered": False, "retryable": False, "detail": f"callback URL refused: {err}"}
    poster = session or requests
    try:
        response = poster.post(
            url,
            json=dict(document),
            timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
            allow_redirects=False,
        )
    except requests.RequestException as err:
        # The exception text can contain the full URL: report only its type.
        logger.warning("callback to %s failed: %s", shown, type(err).__name__)
        return {"delivered": False, "retryable": True, "detail": f"{type(err).__name__} calling {shown}"}
    if 200 <= response.status_code < 300:
        logger.info("callback to %s delivered (HTTP %s)", shown, response.status_code)
        return {"delivered": True, "retryable": False, "detail": f"HTTP {response.status_code}"}
    retryable = response.status_code in RETRYABLE_STATUSES
    logger.warning("callback to %s answered HTTP %s", shown, response.status_code)
    return {"delivered": False, "retryable": retryable, "detail": f"HTTP {response.status_code} from {shown}"}
