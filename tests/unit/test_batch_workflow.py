"""The batch orchestrator's pure decisions: ids, how many to start, the batch status, progress and ETA."""

from __future__ import annotations

from datetime import UTC, datetime

from provisioning import batch_workflow as batches
from provisioning.batch_workflow import BatchState, BatchStatus
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
