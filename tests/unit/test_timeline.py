"""The request's timeline in the workflow state and the status document: what is noted, the bound, and that
it travels across continue-as-new and fits the custom status."""

from __future__ import annotations

import json
from datetime import timedelta

from provisioning import workflow
from provisioning.graph import ErrorKind, GraphError
from provisioning.models import Phase, StatusDocument
from tests.unit.test_workflow import NOW, make_input


def test_phases_are_noted_once_each_and_checks_errors_carry_graphs_details() -> None:
    provisioning_input, state = workflow.split_input(make_input())
    state.note_phase(NOW)
    state.note_phase(NOW + timedelta(seconds=1))  # published again in the same phase: nothing new
    state.phase = Phase.CREATING
    state.note_phase(NOW + timedelta(seconds=2))
    throttled = GraphError(
        ErrorKind.THROTTLED, "slow down", http_status=429, code="TooManyRequests", request_id="rid-429"
    )
    state.note_graph_error(NOW + timedelta(seconds=3), "retry", throttled)
    state.phase = Phase.WAITING_FOR_GRAPH
    state.note(NOW + timedelta(seconds=33, milliseconds=250), "check", graphStatus="running", code=None)
    state.fail(workflow.operation_failed("failed", "no group", "rid-op"), NOW + timedelta(seconds=63))

    document = state.document(provisioning_input, NOW + timedelta(seconds=63))
    assert document["timeline"] == [
        {"at": "2026-01-01T10:00:00Z", "event": "phase", "phase": "resolving-users"},
        {"at": "2026-01-01T10:00:02Z", "event": "phase", "phase": "creating"},
        {
            "at": "2026-01-01T10:00:03Z",
            "event": "retry",
            "phase": "creating",
            "httpStatus": 429,
            "code": "TooManyRequests",
            "graphRequestId": "rid-429",
        },
        {
            "at": "2026-01-01T10:00:33.250Z",
            "event": "check",
            "phase": "waiting-for-graph",
            "graphStatus": "running",
        },
        {
            "at": "2026-01-01T10:01:03Z",
            "event": "error",
            "phase": "waiting-for-graph",
            "code": "OperationFailed",
            "graphRequestId": "rid-op",
        },
    ]
    # The shared model reads it back unchanged (it is part of every channel's document).
    assert StatusDocument.model_validate(document).to_json()["timeline"] == document["timeline"]


def test_the_timeline_is_bounded_and_gives_up_old_checks_before_phases_and_errors() -> None:
    provisioning_input, state = workflow.split_input(make_input())
    state.note_phase(NOW)
    state.phase = Phase.WAITING_FOR_GRAPH
    state.note_phase(NOW)
    checks = workflow.MAX_TIMELINE_ENTRIES * 3
    for n in range(checks):
        state.note(NOW + timedelta(seconds=30 * (n + 1)), "check", graphStatus="running", code="x" * 500)
    state.fail(workflow.timed_out(60, "running", checks), NOW + timedelta(hours=2))

    timeline = state.timeline
    assert len(timeline) == workflow.MAX_TIMELINE_ENTRIES
    assert [entry["event"] for entry in timeline[:2]] == ["phase", "phase"]
    assert timeline[-1]["event"] == "error"
    kept = [entry for entry in timeline if entry["event"] == "check"]
    assert len(kept) == workflow.MAX_TIMELINE_ENTRIES - 3
    assert kept[-1]["at"] == workflow.to_iso(NOW + timedelta(seconds=30 * checks))  # the newest checks stay
    assert all(len(entry["code"]) == workflow.MAX_TIMELINE_CODE_LENGTH for entry in kept)
    # Full, it still leaves the custom status room for the rest of the document.
    document = state.document(provisioning_input, NOW)
    assert workflow.fit_custom_status(document) == document


def test_the_timeline_survives_continue_as_new_and_is_left_out_first_when_too_large() -> None:
    provisioning_input, state = workflow.split_input(make_input())
    state.note_phase(NOW)
    _, resumed = workflow.split_input(workflow.continue_as_new_input(provisioning_input, state))
    assert resumed.timeline == state.timeline
    resumed.note_phase(NOW + timedelta(seconds=1))  # the next execution publishes the same phase first
    assert len(resumed.timeline) == 1

    for n in range(workflow.MAX_TIMELINE_ENTRIES):
        state.note(NOW + timedelta(seconds=n), "check", graphStatus="running", graphRequestId=f"{n:036d}")
    document = state.document(provisioning_input, NOW)

    def size(fitted: dict[str, object]) -> int:
        return len(json.dumps(fitted, ensure_ascii=False).encode("utf-16-le"))

    # Members up to the point where the document fits only without its timeline.
    added: list[str] = []
    while size(document) <= workflow.CUSTOM_STATUS_BUDGET_BYTES:
        added.append(f"{len(added):036d}")
        document["members"] = {"added": added, "failed": []}
    without_timeline = {key: value for key, value in document.items() if key != "timeline"}
    assert size(without_timeline) <= workflow.CUSTOM_STATUS_BUDGET_BYTES
    assert workflow.fit_custom_status(document) == without_timeline


def test_a_state_saved_before_the_timeline_existed_resumes_with_an_empty_one() -> None:
    provisioning_input, state = workflow.split_input(make_input())
    saved = state.to_dict()
    del saved["timeline"]
    _, resumed = workflow.split_input({**provisioning_input.to_json(), workflow.WORKFLOW_STATE_KEY: saved})
    assert resumed.timeline == []
    assert "timeline" not in resumed.document(provisioning_input, NOW)
