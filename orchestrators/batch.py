"""The ``provision_batch`` orchestrator: provision a list of communities as fast as the Graph budget allows.

It starts the items as ordinary requests (``provision_community`` instances with ids derived from the batch),
never more than ``MAX_ITEMS_IN_FLIGHT`` at once, looks at the ones in flight on a durable timer, and continues
as new every few checks so that its history stays bounded whatever the batch size. Cancel (``DELETE``) is the
external event ``cancel``: nothing more is started, the items in flight get their own cancel, and the items
never started end as ``Canceled``. When every item has settled it sends the batch's one callback (and, for a
queue-started batch, its one result message). Deterministic: its decisions live in
``provisioning.batch_workflow``.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from orchestrators import notify
from orchestrators.provision import LOAD_SETTINGS
from provisioning import batch_workflow as batches
from provisioning.batch_workflow import BatchState
from provisioning.logs import get_logger
from provisioning.models import CallbackState
from provisioning.workflow import WorkflowSettings, fit_custom_status

logger = get_logger(__name__)

bp = df.Blueprint()

START_BATCH_ITEMS = "start_batch_items"
CHECK_BATCH_ITEMS = "check_batch_items"
CANCEL_BATCH_ITEMS = "cancel_batch_items"
# Storage faults while starting, checking or cancelling items: retried by Durable.
ITEMS_RETRY = df.RetryOptions(5_000, 5)


@bp.orchestration_trigger(context_name="context")
def provision_batch(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any] | None]:
    return (yield from _Batch(context).run())


class _Batch:
    def __init__(self, context: df.DurableOrchestrationContext) -> None:
        self.context = context
        self.input = dict(context.get_input())
        saved = self.input.pop(batches.BATCH_STATE_KEY, None)
        self.state = BatchState.from_dict(saved) if saved else BatchState()
        if saved is None and self.input.get("callbackUrl"):
            self.state.callback = CallbackState.PENDING
        self.items: list[dict[str, Any]] = self.input["items"]
        self.total = len(self.items)
        self.settings = (
            WorkflowSettings.from_dict(self.input["settings"]) if self.input.get("settings") else None
        )

    @property
    def batch_id(self) -> str:
        return str(self.input["batchId"])

    def log(self, level: int, message: str, *args: Any) -> None:
        if not self.context.is_replaying:
            logger.log(level, "%s: " + message, self.batch_id, *args, extra={"batchId": self.batch_id})

    def document(self) -> dict[str, Any]:
        settings = self.settings or WorkflowSettings()
        return batches.batch_document(
            batch_id=self.batch_id,
            created_at=self.input["createdAt"],
            total=self.total,
            state=self.state,
            now=self.context.current_utc_datetime,
            budget_requests=settings.budget_requests,
            budget_window_seconds=settings.budget_window_seconds,
            source=self.input["source"],
            request_id=self.input.get("idempotencyKey"),
            retry_of=self.input.get("retryOf"),
        )

    def publish(self) -> dict[str, Any]:
        document = self.document()
        self.context.set_custom_status(fit_custom_status(document))
        return document

    def ids(self, indexes: list[int]) -> list[str]:
        return [batches.item_request_id(self.batch_id, index) for index in indexes]

    def run(self) -> Generator[Any, Any, dict[str, Any] | None]:
        state, context = self.state, self.context
        if self.settings is None:
            self.settings = WorkflowSettings.from_dict((yield context.call_activity(LOAD_SETTINGS, None)))
            self.input["settings"] = self.settings.to_dict()
        cancel = context.wait_for_external_event(batches.CANCEL_EVENT)
        checks_here = 0
        while True:
            starting = batches.items_to_start(state, self.total)
            if starting:
                items = [self.items[index] for index in starting]
                yield context.call_activity_with_retry(START_BATCH_ITEMS, ITEMS_RETRY, {"items": items})
                state.in_flight.extend(starting)
                state.next_index = starting.stop
            self.publish()
            if state.settled >= self.total:
                break
            timer = context.create_timer(
                context.current_utc_datetime + timedelta(seconds=batches.CHECK_INTERVAL_SECONDS)
            )
            if state.cancel_requested:
                yield timer
            else:
                winner = yield context.task_any([timer, cancel])
                if winner is not timer:
                    timer.cancel()
                    yield from self.cancel()
            if state.in_flight:
                answer = yield context.call_activity_with_retry(
                    CHECK_BATCH_ITEMS, ITEMS_RETRY, {"requestIds": self.ids(state.in_flight)}
                )
                settled: dict[str, str] = answer["settled"]
                for index in list(state.in_flight):
                    status = settled.get(batches.item_request_id(self.batch_id, index))
                    if status is not None:
                        state.record(index, status)
            state.checks += 1
            checks_here += 1
            if checks_here >= batches.CHECKS_PER_EXECUTION and state.settled < self.total:
                context.continue_as_new({**self.input, batches.BATCH_STATE_KEY: state.to_dict()})
                return None
        self.log(logging.INFO, "settled: %s", state.counts)
        callback_url = self.input.get("callbackUrl")
        if callback_url:
            state.callback = yield from notify.deliver_callback(
                context, callback_url, self.document(), self.log
            )
        document = self.publish()
        if self.input["source"] == "queue":
            yield from notify.publish_result(context, document, self.log)
        return document

    def cancel(self) -> Generator[Any, Any, None]:
        state = self.state
        state.cancel_requested = True
        state.cancel_unstarted(self.total)
        self.log(logging.INFO, "canceled by the caller; %s items in flight", len(state.in_flight))
        if state.in_flight:
            yield self.context.call_activity_with_retry(
                CANCEL_BATCH_ITEMS, ITEMS_RETRY, {"requestIds": self.ids(state.in_flight)}
            )
