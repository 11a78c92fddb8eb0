"""The callback and result-message steps every orchestrator ends with (single requests and batches)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from provisioning import workflow
from provisioning.models import CallbackState

DELIVER_CALLBACK = "deliver_callback"
PUBLISH_RESULT = "publish_result"
PUBLISH_RETRY = df.RetryOptions(
    workflow.PUBLISH_RETRY_FIRST_INTERVAL_SECONDS * 1000, workflow.PUBLISH_RETRY_MAX_ATTEMPTS
)

Log = Callable[..., None]


def deliver_callback(
    context: df.DurableOrchestrationContext, url: str, document: dict[str, Any], log: Log
) -> Generator[Any, Any, CallbackState]:
    """POST ``document`` to ``url``: at once, then after each backoff delay while the answer is retryable."""
    for delay in (0, *workflow.CALLBACK_RETRY_DELAYS_SECONDS):
        if delay:
            yield context.create_timer(context.current_utc_datetime + timedelta(seconds=delay))
        try:
            answer = yield context.call_activity(DELIVER_CALLBACK, {"url": url, "document": document})
        except Exception as exc:
            answer = {"delivered": False, "retryable": True, "detail": type(exc).__name__}
        if answer.get("delivered"):
            return CallbackState.DELIVERED
        log(logging.WARNING, "callback not delivered: %s", answer.get("detail"))
        if not answer.get("retryable"):
            break
    return CallbackState.FAILED


def publish_result(
    context: df.DurableOrchestrationContext, document: dict[str, Any], log: Log
) -> Generator[Any, Any, None]:
    """Write the final document to the results queue (queue-started work only)."""
    try:
        yield context.call_activity_with_retry(
            PUBLISH_RESULT, PUBLISH_RETRY, workflow.fit_result_message(document)
        )
    except Exception as exc:
        # Nothing else can carry the result; the durable output still holds it.
        log(logging.ERROR, "could not write the result message: %s", type(exc).__name__)
