"""The batch orchestrator's pure decisions: ids, how many to start, the batch status, progress and ETA."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from provisioning import batch_workflow as batches
from provisioning.batch_workflow import BatchState, BatchStatus
from provisioning.batches import parse_batch
from provisioning.idempotency import is_request_id
from provisioning.models import RequestStatus

NOW = datetime(2026, 1, 1, 10, 0, 0, tzinfo=UTC)


def test_item_ids_are_request_ids_fixed_by_batch_and_index() -> None:
    batch_id = batches.new_batch_id()
    assert batches.is_batch_id(batch_id)
    ids = [batches.item_request_id(batch_id, index) for index in range(1000)]
    assert all(is_request_id(request_id) for request_id in ids)
    assert len(set(ids)) == 1000
    assert ids[7] == batches.item_request_id(batch_id, 7)
    assert batches.batch_id_for_key("k", "http") != batches.batch_id_for_key("k", "queue")
    assert not batches.is_batch_id("req-" + "0" * 32)


def test_never_more_than_the_bound_in_flight_and_nothing_after_a_cancel() -> None:
    state = BatchState()
    first = batches.items_to_start(state, 50)
    assert first == range(batches.MAX_ITEMS_IN_FLIGHT)
    state.in_flight.extend(first)
    state.next_index = first.stop
    assert batches.items_to_start(state, 50) == range(first.stop, first.stop)
    state.record(3, RequestStatus.SUCCEEDED.value)
    assert batches.items_to_start(state, 50) == range(first.stop, first.stop + 1)
    state.cancel_requested = True
    assert batches.items_to_start(state, 50) == range(0)


def test_status_follows_the_items() -> None:
    def settled(**counts: int) -> BatchState:
        return BatchState(next_index=sum(counts.values()), counts=dict(counts))

    assert batches.batch_status(BatchState(), 2) is BatchStatus.RUNNING
    assert batches.batch_status(settled(Succeeded=2), 2) is BatchStatus.SUCCEEDED
    assert batches.batch_status(settled(Succeeded=1, Failed=1), 2) is BatchStatus.PARTIALLY_SUCCEEDED
    assert batches.batch_status(settled(Failed=2), 2) is BatchStatus.FAILED
    canceled = settled(Succeeded=1, Canceled=1)
    canceled.cancel_requested = True
    assert batches.batch_status(canceled, 2) is BatchStatus.CANCELED


def test_cancel_settles_every_item_never_started() -> None:
    state = BatchState(next_index=5, in_flight=[3, 4], counts={"Succeeded": 3})
    state.cancel_unstarted(10)
    assert state.counts == {"Succeeded": 3, "Canceled": 5}
    assert state.next_index == 10


def test_document_shows_counts_progress_and_an_eta_from_the_budget() -> None:
    state = BatchState(next_index=30, in_flight=list(range(10, 30)), counts={"Succeeded": 8, "Failed": 2})
    document = batches.batch_document(
        batch_id="batch-x",
        created_at="2026-01-01T09:00:00Z",
        total=100,
        state=state,
        now=NOW,
        budget_requests=10,
        budget_window_seconds=30,
        source="http",
    )
    assert document["status"] == "Running"
    assert document["progress"] == 10
    assert document["counts"]["Running"] == 20
    assert document["counts"]["NotStarted"] == 70
    # 90 items left, 4 requests each at 10 per 30 s: 1,080 s, plus one check interval.
    assert document["estimatedCompletionAt"] == "2026-01-01T10:18:15Z"


def test_state_round_trips_through_continue_as_new() -> None:
    state = BatchState(
        next_index=3, in_flight=[1, 2], counts={"Succeeded": 1}, cancel_requested=True, checks=7
    )
    assert BatchState.from_dict(state.to_dict()) == state


def test_a_retry_batch_carries_only_the_chosen_items_as_new_requests_that_name_the_old_ones() -> None:
    body = {
        "items": [{"displayName": f"Team {n}", "owners": ["owner@contoso.example"]} for n in range(4)],
        "callbackUrl": "https://prod-00.westeurope.logic.azure.com/workflows/x/triggers/manual/run",
    }
    batch_id = batches.new_batch_id()
    original = batches.batch_input(
        parse_batch(json.dumps(body).encode(), "application/json"),
        batch_id,
        "queue",
        "key-1",
        "2026-01-01T10:00:00Z",
    )
    # What the durable input looks like after continue-as-new: state and settings ride along.
    durable_input = {**original, batches.BATCH_STATE_KEY: {"next_index": 4}, "settings": {"x": 1}}

    retry = batches.retry_batch_input(durable_input, [1, 3], "2026-01-02T10:00:00Z")

    retry_id = batches.retry_batch_id_for(batch_id)
    assert retry["batchId"] == retry_id
    assert batches.is_batch_id(retry_id)
    assert retry["retryOf"] == batch_id
    assert {key: retry[key] for key in ("source", "callbackUrl", "idempotencyKey")} == {
        "source": "queue",
        "callbackUrl": body["callbackUrl"],
        "idempotencyKey": "key-1",
    }
    assert batches.BATCH_STATE_KEY not in retry
    assert "settings" not in retry
    assert [item["request"]["displayName"] for item in retry["items"]] == ["Team 1", "Team 3"]
    assert [item["requestId"] for item in retry["items"]] == [
        batches.item_request_id(retry_id, 0),
        batches.item_request_id(retry_id, 1),
    ]
    assert [item["retryOf"] for item in retry["items"]] == [
        batches.item_request_id(batch_id, 1),
        batches.item_request_id(batch_id, 3),
    ]
    assert {item["createdAt"] for item in retry["items"]} == {"2026-01-02T10:00:00Z"}
    assert retry["bodyHash"] == batches.retry_batch_input(durable_input, [1, 3], "later")["bodyHash"]
    assert retry["bodyHash"] != batches.retry_batch_input(durable_input, [1], "later")["bodyHash"]
