"""The orchestrator's pure decisions: waits, error mapping, state across continue-as-new, the document."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from provisioning import workflow
from provisioning.graph import Community, GraphError
from provisioning.models import CallbackState, ErrorCode, Phase, ProvisioningInput, RequestStatus
from provisioning.settings import Settings
from provisioning.steps import is_user_not_found
from provisioning.workflow import WorkflowSettings

NOW = datetime(2026, 1, 1, 10, 0, 0, tzinfo=UTC)


def make_input(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "requestId": "req-abc",
        "source": "http",
        "request": {
            "displayName": "Contoso Engineering",
            "description": "News",
            "privacy": "private",
            "owners": ["adele@contoso.com"],
            "members": ["alex@contoso.com", "6f1b6c0e-2b1d-4c7e-9a43-6c0f4c3d2a11"],
            "onDuplicateName": "fail",
        },
        "callbackUrl": None,
        "createdAt": "2026-01-01T09:59:58Z",
        "bodyHash": "hash",
    }
    data.update(overrides)
    return data


# -- timing


@pytest.mark.parametrize(
    ("interval", "retry_after", "expected"),
    [
        (30, None, 30.0),
        (30, 2.128, 30.0),  # a short Retry-After never shortens the poll interval
        (30, 45.5, 45.5),  # a longer one is honoured exactly
        (60, 10, 60.0),
        (30, float("inf"), 30.0),
    ],
)
def test_status_check_delay_is_the_longer_of_interval_and_retry_after(
    interval: int, retry_after: float | None, expected: float
) -> None:
    assert workflow.status_check_delay(interval, retry_after) == expected


@pytest.mark.parametrize(
    ("retry_after", "seconds_left", "expected"),
    [
        (75, 600.0, 75.0),  # well within the timeout: honoured
        (3600, 600.0, 600.0),  # past the deadline: one check at the deadline, not an hour later
        (3600, 10.0, 30.0),  # never closer than the poll interval
        (None, 5.0, 30.0),
    ],
)
def test_status_check_delay_never_waits_far_past_the_deadline(
    retry_after: float | None, seconds_left: float, expected: float
) -> None:
    assert workflow.status_check_delay(30, retry_after, seconds_left) == expected


def graph_error(kind: str = "transient", retry_after: float | None = None, **fields: Any) -> GraphError:
    return GraphError.from_dict(
        {
            "kind": kind,
            "message": "Service unavailable",
            "requestId": "rid-503",
            "retryAfterSeconds": retry_after,
        }
        | fields
    )


@pytest.mark.parametrize("kind", ["throttled", "transient"])
def test_retry_delay_is_never_shorter_than_retry_after_and_adds_at_most_the_jitter(kind: str) -> None:
    for attempt in range(5):
        delay = workflow.retry_delay(graph_error(kind, 40.0), attempt, 5.0, "req-1")
        assert 40.0 <= delay <= 40.0 * (1 + workflow.RETRY_JITTER_FRACTION)


def test_retry_delay_keeps_the_steps_own_minimum() -> None:
    assert workflow.retry_delay(graph_error(retry_after=2.128), 0, 30.0, "req-1") >= 30.0


def test_retry_delay_without_retry_after_backs_off_exponentially_and_is_capped() -> None:
    base = [workflow.retry_delay(graph_error(), n, 0.0, "req-1") for n in range(10)]
    for attempt, delay in enumerate(base):
        expected = min(workflow.RETRY_BACKOFF_BASE_SECONDS * 2**attempt, workflow.RETRY_BACKOFF_MAX_SECONDS)
        assert expected <= delay <= expected * (1 + workflow.RETRY_JITTER_FRACTION)


def test_retry_delay_of_zero_still_waits_a_moment() -> None:
    assert workflow.retry_delay(graph_error(retry_after=0.0), 0, 0.0, "req-1") >= 1.0


def test_jitter_spreads_requests_but_replays_agree() -> None:
    delays = {workflow.retry_delay(graph_error(retry_after=30.0), 0, 0.0, f"req-{n}") for n in range(50)}
    assert len(delays) == 50  # fifty throttled requests come back at fifty different moments
    assert max(delays) - min(delays) > 0.5 * 30.0 * workflow.RETRY_JITTER_FRACTION
    again = workflow.retry_delay(graph_error(retry_after=30.0), 3, 0.0, "req-7")
    assert again == workflow.retry_delay(graph_error(retry_after=30.0), 3, 0.0, "req-7")


def test_workflow_settings_come_from_app_settings_and_refuse_intervals_below_the_minimum() -> None:
    env = {"STATUS_POLL_INTERVAL_SECONDS": "45", "PROVISIONING_TIMEOUT_MINUTES": "5"}
    settings = Settings.from_mapping(env)
    assert WorkflowSettings.from_settings(settings) == WorkflowSettings(45, 5)
    # The floor is applied where the setting is read; saved state below it cannot come from this app.
    assert WorkflowSettings.from_settings(Settings.from_mapping({"STATUS_POLL_INTERVAL_SECONDS": "1"})) == (
        WorkflowSettings(30, 60)
    )
    with pytest.raises(ValueError, match="below Graph's minimum"):
        WorkflowSettings.from_dict({"pollIntervalSeconds": 1, "timeoutMinutes": 5})
    round_trip = WorkflowSettings.from_dict(WorkflowSettings(45, 5).to_dict())
    assert round_trip == WorkflowSettings(45, 5)


def test_polling_deadline_counts_from_the_start_of_polling() -> None:
    assert workflow.polling_deadline("2026-01-01T10:00:00Z", 60) == NOW + timedelta(hours=1)


def test_iso_times_use_z_and_keep_fractions_only_when_present() -> None:
    assert workflow.to_iso(NOW) == "2026-01-01T10:00:00Z"
    assert workflow.to_iso(NOW + timedelta(seconds=2.128)) == "2026-01-01T10:00:02.128Z"
    assert workflow.to_iso(NOW + timedelta(microseconds=313588)) == "2026-01-01T10:00:00.313Z"
    assert workflow.to_iso(NOW + timedelta(microseconds=999)) == "2026-01-01T10:00:00Z"
    assert workflow.from_iso("2026-01-01T10:00:02.128Z") == NOW + timedelta(seconds=2.128)


def test_member_batches_hold_at_most_twenty() -> None:
    ids = [f"u{n}" for n in range(45)]
    batches = workflow.member_batches(ids)
    assert [len(batch) for batch in batches] == [20, 20, 5]
    assert [user for batch in batches for user in batch] == ids
    assert workflow.member_batches([]) == []


# -- errors


def test_giving_up_is_graph_unavailable_with_the_last_request_id() -> None:
    failure = workflow.gave_up(graph_error(httpStatus=503), "checking status", 5)
    assert failure.code is ErrorCode.GRAPH_UNAVAILABLE
    assert failure.graph_request_id == "rid-503"
    assert "HTTP 503" in failure.message
    assert "5 attempts" in failure.message
    assert failure.to_dict() == {
        "code": "GraphUnavailable",
        "message": failure.message,
        "graphRequestId": "rid-503",
    }


def test_permanent_error_is_graph_rejected_with_graphs_code_and_request_id() -> None:
    error = graph_error("permanent", httpStatus=403, code="Authorization_RequestDenied")
    failure = workflow.rejected(error, "creating the community")
    assert failure.code is ErrorCode.GRAPH_REJECTED
    assert "Authorization_RequestDenied" in failure.message
    assert "Graph rejected the request" in failure.message
    assert failure.graph_request_id == "rid-503"


def test_a_refused_graph_url_is_graph_rejected_but_says_what_happened() -> None:
    error = graph_error(
        "permanent",
        httpStatus=202,
        code="UntrustedGraphUrl",
        message="Refusing to follow the operation URL to https://evil.example",
        requestId="rid-202",
    )
    failure = workflow.rejected(error, "creating the community")
    assert failure.code is ErrorCode.GRAPH_REJECTED
    assert failure.message.startswith(
        "creating the community: Graph's answer pointed to a host the token is never sent to ("
    )
    assert "UntrustedGraphUrl" in failure.message
    assert "Graph rejected" not in failure.message
    assert failure.graph_request_id == "rid-202"


@pytest.mark.parametrize(("status", "expected"), [(404, True), (400, True), (403, False), (500, False)])
def test_user_not_found_is_a_permanent_404_or_400(status: int, expected: bool) -> None:
    assert is_user_not_found(graph_error("permanent", httpStatus=status)) is expected


def test_owner_not_found_and_member_error_texts() -> None:
    error = graph_error("permanent", httpStatus=404, requestId="rid-404", message="not found")
    failure = workflow.owner_not_found(1, error)
    assert failure.code is ErrorCode.USER_NOT_FOUND
    assert failure.message == "owners[1] was not found in Entra ID"  # by position: a UPN is personal data
    assert failure.graph_request_id == "rid-404"
    assert workflow.member_error_text(error) == "user not found"
    assert workflow.member_error_text(
        graph_error("permanent", httpStatus=403, code="Forbidden", message="no")
    ) == ("HTTP 403 Forbidden: no")


def test_failure_messages_name_the_cause() -> None:
    assert "skipped" in workflow.operation_failed("skipped", None, "rid").message
    assert "quota" in workflow.operation_failed("failed", "quota", None).message
    timeout = workflow.timed_out(60, "running", 120)
    assert timeout.code is ErrorCode.TIMEOUT
    assert "running" in timeout.message
    assert "60 minutes" in timeout.message
    assert "no status yet" in workflow.timed_out(1, None, 0).message
    assert workflow.community_not_found("c1", 4).code is ErrorCode.COMMUNITY_NOT_FOUND
    duplicate = workflow.duplicate_name("Contoso", ["c1"])
    assert duplicate.code is ErrorCode.DUPLICATE_NAME
    assert "c1" in duplicate.message


def test_internal_error_does_not_leak_the_exception_text() -> None:
    failure = workflow.internal_error(RuntimeError("https://x/?sig=secret"))
    assert failure.code is ErrorCode.INTERNAL_ERROR
    assert "secret" not in failure.message
    assert "RuntimeError" in failure.message


def test_pick_new_community_ignores_communities_that_existed_before() -> None:
    old, new = Community.from_json({"id": "old"}), Community.from_json({"id": "new", "displayName": "X"})
    assert workflow.pick_new_community([old, new], ["old"]) == new
    assert workflow.pick_new_community([old], ["old"]) is None
    assert workflow.pick_new_community([], []) is None


# -- state and document


def test_first_execution_starts_fresh_and_marks_a_callback_pending() -> None:
    provisioning_input, state = workflow.split_input(
        make_input(callbackUrl="https://x.logic.azure.com/cb?sig=s")
    )
    assert provisioning_input.request_id == "req-abc"
    assert state.phase is Phase.RESOLVING_USERS
    assert state.callback is CallbackState.PENDING
    _, without_callback = workflow.split_input(make_input())
    assert without_callback.callback is CallbackState.NONE


def test_state_survives_continue_as_new_unchanged() -> None:
    provisioning_input, state = workflow.split_input(make_input())
    state.settings = WorkflowSettings(30, 60)
    state.phase = Phase.WAITING_FOR_GRAPH
    state.owner_ids = ["o1"]
    state.member_ids = {"alex@contoso.com": "m1"}
    state.members_failed = [{"id": "ghost@contoso.com", "error": "user not found"}]
    state.operation_url = "https://graph/op('1')?secret=1"
    state.operation_status = "running"
    state.checks = 10
    state.polling_started_at = "2026-01-01T10:00:00Z"
    state.retry_after_seconds = 75.0  # Graph's last Retry-After sets the first wait of the next execution
    next_input = workflow.continue_as_new_input(provisioning_input, state)

    resumed_input, resumed = workflow.split_input(next_input)
    assert resumed_input == provisioning_input
    assert resumed == state
    assert resumed.executions == 2
    assert resumed.document(resumed_input, NOW) == state.document(provisioning_input, NOW)


def test_running_document_shows_progress_but_never_the_operation_url() -> None:
    provisioning_input, state = workflow.split_input(
        make_input(callbackUrl="https://x.logic.azure.com/cb?sig=s")
    )
    state.phase = Phase.WAITING_FOR_GRAPH
    state.operation_url = "https://graph.microsoft.com/v1.0/op('1')?token=secret"
    state.operation_status = "unknownFutureValue"
    state.checks = 3
    state.next_check_at = "2026-01-01T10:00:30Z"
    document = state.document(provisioning_input, NOW)
    assert document == {
        "id": "req-abc",
        "status": "Running",
        "phase": "waiting-for-graph",
        "createdAt": "2026-01-01T09:59:58Z",
        "lastUpdatedAt": "2026-01-01T10:00:00Z",
        "request": {
            "displayName": "Contoso Engineering",
            "description": "News",
            "privacy": "private",
            "ownerCount": 1,
            "memberCount": 2,
        },
        "operation": {"status": "unknownFutureValue", "checks": 3, "nextCheckAt": "2026-01-01T10:00:30Z"},
        "callback": "pending",
    }
    assert "secret" not in str(document)
    assert "sig=" not in str(document)


def test_final_documents_for_success_and_failure() -> None:
    provisioning_input, state = workflow.split_input(make_input(source="queue", idempotencyKey="item-7"))
    state.phase = Phase.DONE
    state.status = RequestStatus.SUCCEEDED
    state.community = {"id": "c1", "displayName": "Contoso", "privacy": "private", "groupId": "g1"}
    state.members_added = ["6f1b6c0e-2b1d-4c7e-9a43-6c0f4c3d2a11"]
    state.members_failed = [{"index": 0, "error": "user not found"}]
    document = state.document(provisioning_input, NOW)
    assert document["status"] == "Succeeded"
    assert document["community"]["groupId"] == "g1"
    assert document["members"] == {
        "added": ["6f1b6c0e-2b1d-4c7e-9a43-6c0f4c3d2a11"],
        "failed": [{"index": 0, "error": "user not found"}],
    }
    # The request is echoed without its users: user principal names are personal data.
    assert document["request"]["ownerCount"] == 1
    assert document["request"]["memberCount"] == 2
    assert "alex@contoso.com" not in json.dumps(document)
    assert document["requestId"] == "item-7"
    assert "error" not in document

    state.fail(workflow.timed_out(60, "running", 120))
    failed = state.document(provisioning_input, NOW)
    assert failed["status"] == "Failed"
    assert failed["error"]["code"] == "Timeout"


def test_provisioning_input_shape_is_the_shared_model() -> None:
    provisioning_input, _ = workflow.split_input(make_input())
    assert isinstance(provisioning_input, ProvisioningInput)
    with pytest.raises(ValueError, match="displayName"):
        workflow.split_input(make_input(request={"owners": ["a@b.com"]}))


def test_custom_status_of_a_large_request_fits_durables_limit() -> None:
    members = [f"user{n:04d}@contoso.onmicrosoft.com" for n in range(1000)]
    provisioning_input, state = workflow.split_input(
        make_input(request={**make_input()["request"], "members": members})
    )
    state.phase = Phase.ADDING_MEMBERS
    object_ids = [str(uuid.UUID(int=n)) for n in range(1000)]
    state.members_added = object_ids[:600]
    state.members_failed = [{"index": n, "error": "user not found"} for n in range(600, 1000)]
    document = state.document(provisioning_input, NOW)
    fitted = workflow.fit_custom_status(document)

    assert len(json.dumps(fitted, ensure_ascii=False).encode("utf-16-le")) <= 16 * 1024
    assert "request" not in fitted
    assert "members" not in fitted
    assert fitted["phase"] == "adding-members"
    assert document["members"]["added"] == object_ids[:600]  # the document itself is complete


def test_result_message_of_a_large_request_fits_a_queue_message() -> None:
    members = [f"user{n:04d}@contoso.onmicrosoft.com" for n in range(1000)]
    provisioning_input, state = workflow.split_input(
        make_input(request={**make_input()["request"], "members": members})
    )
    state.phase = Phase.DONE
    state.status = RequestStatus.SUCCEEDED
    object_ids = [str(uuid.UUID(int=n)) for n in range(1000)]
    state.members_added = object_ids
    state.members_failed = [{"index": n, "error": "user not found " + "x" * 40} for n in range(1000)]
    message = workflow.fit_result_message(state.document(provisioning_input, NOW))

    assert len(base64.b64encode(json.dumps(message).encode())) <= 64 * 1024
    assert "request" not in message
    assert "members" not in message  # what does not fit is left out; the status URL has everything


def test_documents_of_normal_requests_are_not_cut() -> None:
    provisioning_input, state = workflow.split_input(make_input())
    document = state.document(provisioning_input, NOW)
    assert workflow.fit_custom_status(document) == document
    assert workflow.fit_result_message(document) == document
