"""The batch orchestrator's decisions and its document, as plain Python (no Durable Functions, no I/O).

A batch is a list of ordinary requests. The batch orchestration (``orchestrators/batch.py``) starts them as
independent ``provision_community`` instances with ids derived from the batch id and the item's index, never
more than ``MAX_ITEMS_IN_FLIGHT`` at once (the app-wide Graph budget paces their calls; the bound keeps the
budget's queue short, so a request sent alone during a batch is not starved), and checks the ones in flight on
a durable timer. It continues as new every ``CHECKS_PER_EXECUTION`` checks, so its history stays bounded
however many items the batch has; what it carries over is counts and indexes, never the items' documents
(each item keeps its own at its own status URL).
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from provisioning.idempotency import REQUEST_ID_PREFIX, body_hash
from provisioning.models import CallbackState, ProvisioningInput, RequestStatus, Source
from provisioning.workflow import to_iso

if TYPE_CHECKING:
    from provisioning.batches import BatchRequest

BATCH_ORCHESTRATOR = "provision_batch"
BATCH_ID_PREFIX = "batch-"
_HASH_HEX_DIGITS = 32
_BATCH_ID = re.compile(rf"^{BATCH_ID_PREFIX}[0-9a-f]{{{_HASH_HEX_DIGITS}}}$")

# Items provisioned at once. Each spends the shared Viva Engage budget (10 requests per 30 s), so more in
# flight would not go faster, only lengthen the budget's queue.
MAX_ITEMS_IN_FLIGHT = 20
# How often (seconds) the batch looks at its items in flight.
CHECK_INTERVAL_SECONDS = 15
CHECKS_PER_EXECUTION = 20
# Viva Engage requests a community needs at least: name check, create, one status check, confirm.
MIN_REQUESTS_PER_COMMUNITY = 4
CANCEL_EVENT = "cancel"


class BatchStatus(StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    PARTIALLY_SUCCEEDED = "PartiallySucceeded"
    FAILED = "Failed"
    CANCELED = "Canceled"


# A finished batch with items that did not succeed: what POST .../batches/{id}/retry takes.
RETRYABLE_BATCH_STATUSES = frozenset(
    {BatchStatus.PARTIALLY_SUCCEEDED, BatchStatus.FAILED, BatchStatus.CANCELED}
)


def new_batch_id() -> str:
    return BATCH_ID_PREFIX + uuid.uuid4().hex


def batch_id_for_key(key: str, source: Source) -> str:
    """The batch id of a batch started with idempotency ``key`` (a different space from single requests)."""
    digest = hashlib.sha256(f"batch\n{source}\n{key}".encode()).hexdigest()
    return BATCH_ID_PREFIX + digest[:_HASH_HEX_DIGITS]


def is_batch_id(value: str) -> bool:
    return bool(_BATCH_ID.match(value))


def batch_input(
    batch: BatchRequest, batch_id: str, source: Source, key: str | None, created_at: str
) -> dict[str, Any]:
    """The batch orchestration's input: the batch and, for every item, the input of its own request. Items
    send no result message of their own (the batch sends one), so they are started as HTTP requests."""
    from provisioning.batches import batch_hash

    items = [
        ProvisioningInput(
            request_id=item_request_id(batch_id, index),
            source="http",
            request=item.spec(),
            created_at=created_at,
            body_hash=body_hash(item),
        ).to_json()
        for index, item in enumerate(batch.items)
    ]
    return {
        "batchId": batch_id,
        "source": source,
        "createdAt": created_at,
        "callbackUrl": batch.callback_url,
        "bodyHash": batch_hash(batch),
        "idempotencyKey": key,
        "items": items,
    }


def retry_batch_id_for(batch_id: str) -> str:
    """The id of the retry of batch ``batch_id``: the same every time, so a repeated retry starts nothing."""
    digest = hashlib.sha256(f"batch-retry\n{batch_id}".encode()).hexdigest()
    return BATCH_ID_PREFIX + digest[:_HASH_HEX_DIGITS]


def retry_batch_input(original: Mapping[str, Any], indexes: Sequence[int], created_at: str) -> dict[str, Any]:
    """The input of the retry of a finished batch: the items at ``indexes`` (those that did not succeed) as
    new requests, each with ``retryOf`` naming the item request it retries. Channel, callback and idempotency
    key stay the original's, as a single request's retry keeps its input."""
    batch_id = str(original["batchId"])
    retry_id = retry_batch_id_for(batch_id)
    items = [
        ProvisioningInput.model_validate(original["items"][index])
        .model_copy(
            update={
                "request_id": item_request_id(retry_id, position),
                "created_at": created_at,
                "retry_of": item_request_id(batch_id, index),
            }
        )
        .to_json()
        for position, index in enumerate(indexes)
    ]
    # The items to retry are fixed once the original has finished, so this hash is too.
    retried = ",".join(str(index) for index in indexes)
    digest = hashlib.sha256(f"{original['bodyHash']}\n{retried}".encode()).hexdigest()
    return {
        **{key: original[key] for key in ("source", "callbackUrl", "idempotencyKey") if key in original},
        "batchId": retry_id,
        "createdAt": created_at,
        "bodyHash": digest,
        "retryOf": batch_id,
        "items": items,
    }


def item_request_id(batch_id: str, index: int) -> str:
    """The request id (durable instance id) of item ``index``: a request id like any other."""
    digest = hashlib.sha256(f"{batch_id}\n{index}".encode()).hexdigest()
    return REQUEST_ID_PREFIX + digest[:_HASH_HEX_DIGITS]


@dataclass
class BatchState:
    """What the batch orchestration carries across continue-as-new."""

    next_index: int = 0  # items[next_index:] are not started yet
    in_flight: list[int] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # settled items by RequestStatus value
    cancel_requested: bool = False
    callback: CallbackState = CallbackState.NONE
    checks: int = 0

    @property
    def settled(self) -> int:
        return sum(self.counts.values())

    def record(self, index: int, status: str) -> None:
        self.in_flight.remove(index)
        self.counts[status] = self.counts.get(status, 0) + 1

    def cancel_unstarted(self, total: int) -> None:
        """Items never started end Canceled without a request of their own."""
        unstarted = total - self.next_index
        if unstarted:
            self.counts[RequestStatus.CANCELED.value] = (
                self.counts.get(RequestStatus.CANCELED.value, 0) + unstarted
            )
        self.next_index = total

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["callback"] = self.callback.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchState:
        values = {key: value for key, value in data.items() if key in _STATE_FIELDS}
        state = cls(**values)
        state.callback = CallbackState(state.callback)
        return state


_STATE_FIELDS = set(BatchState.__dataclass_fields__)
BATCH_STATE_KEY = "batchState"


def items_to_start(state: BatchState, total: int) -> range:
    """The indexes to start now: as many as the in-flight bound allows."""
    if state.cancel_requested:
        return range(0)
    room = MAX_ITEMS_IN_FLIGHT - len(state.in_flight)
    return range(state.next_index, min(total, state.next_index + max(room, 0)))


def batch_status(state: BatchState, total: int) -> BatchStatus:
    if state.settled < total:
        return BatchStatus.RUNNING
    succeeded = state.counts.get(RequestStatus.SUCCEEDED.value, 0)
    if state.cancel_requested and succeeded < total:
        return BatchStatus.CANCELED
    if succeeded == total:
        return BatchStatus.SUCCEEDED
    return BatchStatus.PARTIALLY_SUCCEEDED if succeeded else BatchStatus.FAILED


def estimated_completion(
    state: BatchState, total: int, now: datetime, budget_requests: int, budget_window_seconds: int
) -> datetime | None:
    """When the batch should be done at the budget's pace (each remaining item needs at least
    ``MIN_REQUESTS_PER_COMMUNITY`` Viva Engage requests); None once settled."""
    remaining = total - state.settled
    if remaining <= 0:
        return None
    seconds_per_item = MIN_REQUESTS_PER_COMMUNITY * budget_window_seconds / budget_requests
    return now + timedelta(seconds=math.ceil(remaining * seconds_per_item) + CHECK_INTERVAL_SECONDS)


def batch_document(
    *,
    batch_id: str,
    created_at: str,
    total: int,
    state: BatchState,
    now: datetime,
    budget_requests: int,
    budget_window_seconds: int,
    source: Source,
    request_id: str | None = None,
    retry_of: str | None = None,
) -> dict[str, Any]:
    """The batch's status document (custom status, output, callback and result message)."""
    status = batch_status(state, total)
    counts = {
        value.value: state.counts.get(value.value, 0)
        for value in RequestStatus
        if value is not RequestStatus.REJECTED
    }
    counts[RequestStatus.RUNNING.value] = len(state.in_flight)
    counts["NotStarted"] = total - state.next_index
    document: dict[str, Any] = {
        "id": batch_id,
        "status": status.value,
        "createdAt": created_at,
        "lastUpdatedAt": to_iso(now),
        "total": total,
        "counts": counts,
        "progress": math.floor(100 * state.settled / total) if total else 100,
        "callback": state.callback.value,
    }
    eta = estimated_completion(state, total, now, budget_requests, budget_window_seconds)
    if eta is not None and status is BatchStatus.RUNNING:
        document["estimatedCompletionAt"] = to_iso(eta)
    if state.cancel_requested:
        document["cancelRequested"] = True
    if source == "queue" and request_id:
        document["requestId"] = request_id
    if retry_of:
        document["retryOf"] = retry_of
    return document


def page_of_items(
    batch_id: str, display_names: Sequence[str], started: int, skip: int, top: int
) -> list[dict[str, Any]]:
    """The item rows of one page, before their statuses are read: index, display name, request id, and
    whether the item was started."""
    return [
        {
            "index": index,
            "displayName": display_names[index],
            "requestId": item_request_id(batch_id, index),
            "started": index < started,
        }
        for index in range(skip, min(len(display_names), skip + top))
    ]
