"""Rendering the HTTP answer from the durable status JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from provisioning.models import CommunitySpec, ProvisioningInput, RequestStatus
from provisioning.status import (
    document_from_durable,
    parse_timestamp,
    render_status,
    retry_after_seconds,
    running_document,
    utc_timestamp,
)

INSTANCE = "req-" + "a" * 32
STATUS_URL = f"https://app.example/api/communities/requests/{INSTANCE}?code=k"
NOW = datetime(2026, 1, 1, 10, 0, 0, tzinfo=UTC)
SECRET_CALLBACK = "https://prod-1.westeurope.logic.azure.com/workflows/1/run?sig=TOPSECRET"


def provisioning_input(**changes: Any) -> dict[str, Any]:
    value = ProvisioningInput(
        request_id=INSTANCE,
        source="http",
        request=CommunitySpec.model_validate({"displayName": "Team", "owners": ["a@contoso.com"]}),
        callback_url=SECRET_CALLBACK,
        created_at="2026-01-01T09:59:00Z",
        body_hash="sha256:abc",
    ).to_json()
    value.update(changes)
    return value


def durable(runtime_status: str, **fields: Any) -> dict[str, Any]:
    status: dict[str, Any] = {
        "name": "provision_community",
        "instanceId": INSTANCE,
        "runtimeStatus": runtime_status,
        "input": provisioning_input(),
        "createdTime": "2026-01-01T09:59:00Z",
        "lastUpdatedTime": "2026-01-01T10:00:00Z",
    }
    status.update(fields)
    return status


def render(status: dict[str, Any] | None, poll: int = 30) -> Any:
    return render_status(INSTANCE, status, status_url=STATUS_URL, poll_interval_seconds=poll, now=NOW)


def running_custom_status(next_check_at: str | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": INSTANCE,
        "status": "Running",
        "phase": "waiting-for-graph",
        "createdAt": "2026-01-01T09:59:00Z",
        "lastUpdatedAt": "2026-01-01T09:59:30Z",
        "request": {"displayName": "Team", "privacy": "private", "ownerCount": 1, "memberCount": 0},
        "operation": {"status": "running", "checks": 2},
        "callback": "pending",
    }
    if next_check_at:
        document["operation"]["nextCheckAt"] = next_check_at
    return document


def assert_no_secrets(answer: Any) -> None:
    text = json.dumps(answer.body) + json.dumps(answer.headers)
    assert "TOPSECRET" not in text
    assert "callbackUrl" not in text
    assert "bodyHash" not in text


def test_unknown_instance_is_a_404_problem() -> None:
    for status in (None, {}, {"runtimeStatus": None}):
        answer = render(status)
        assert answer.status_code == 404
        assert answer.content_type == "application/problem+json"
        assert answer.body["status"] == 404
        assert answer.body["code"] == "NotFound"
        assert "Location" not in answer.headers


@pytest.mark.parametrize("runtime_status", ["Pending", "Running", "ContinuedAsNew", "Suspended"])
def test_running_without_progress_renders_a_minimal_document_from_the_input(runtime_status: str) -> None:
    answer = render(durable(runtime_status))
    assert answer.status_code == 202
    assert answer.headers["Location"] == STATUS_URL
    assert answer.headers["Retry-After"] == "30"
    assert answer.body == {
        "id": INSTANCE,
        "status": "Running",
        "createdAt": "2026-01-01T09:59:00Z",
        "lastUpdatedAt": "2026-01-01T09:59:00Z",
        "request": {"displayName": "Team", "privacy": "private", "ownerCount": 1, "memberCount": 0},
        "callback": "pending",
    }
    assert_no_secrets(answer)


def test_input_as_json_text_is_understood() -> None:
    answer = render(durable("Running", input=json.dumps(provisioning_input(callbackUrl=None))))
    assert answer.body["callback"] == "none"


def test_input_with_orchestrator_state_after_continue_as_new_is_understood() -> None:
    answer = render(durable("Running", input=provisioning_input(workflowState={"checks": 12})))
    assert answer.body["request"]["displayName"] == "Team"


def test_running_with_progress_renders_the_custom_status() -> None:
    answer = render(durable("Running", customStatus=running_custom_status()))
    assert answer.status_code == 202
    assert answer.body["phase"] == "waiting-for-graph"
    assert answer.body["operation"] == {"status": "running", "checks": 2}
    assert_no_secrets(answer)


def test_unexpected_fields_in_the_custom_status_are_not_echoed() -> None:
    custom = {**running_custom_status(), "callbackUrl": SECRET_CALLBACK, "token": "eyJ..."}
    answer = render(durable("Running", customStatus=custom))
    assert "token" not in answer.body
    assert_no_secrets(answer)


@pytest.mark.parametrize(
    ("next_check_at", "expected"),
    [
        ("2026-01-01T10:00:12Z", 12),
        ("2026-01-01T10:00:11.200000Z", 12),  # rounded up: never poll before the check
        ("2026-01-01T09:59:00Z", 1),  # overdue: soon, but not a tight loop
        ("2026-01-01T10:05:00Z", 30),  # never longer than the poll interval
        (None, 30),
        ("not a time", 30),
    ],
)
def test_retry_after_follows_the_next_check(next_check_at: str | None, expected: int) -> None:
    answer = render(durable("Running", customStatus=running_custom_status(next_check_at)))
    assert answer.headers["Retry-After"] == str(expected)


def test_retry_after_uses_the_configured_interval() -> None:
    document = running_document(ProvisioningInput.model_validate(provisioning_input()))
    assert retry_after_seconds(document, 45, NOW) == 45


def final(status: str, **fields: Any) -> dict[str, Any]:
    return {**running_custom_status(), "status": status, "phase": "done", **fields}


@pytest.mark.parametrize(("outcome", "http_status"), [("Succeeded", 200), ("Failed", 422), ("Canceled", 409)])
def test_settled_outcome_is_final_while_the_callback_is_still_being_delivered(
    outcome: str, http_status: int
) -> None:
    custom = final(outcome, phase="notifying", callback="pending")
    answer = render(durable("Running", customStatus=custom))
    assert answer.status_code == http_status
    assert answer.body["status"] == outcome
    assert answer.body["phase"] == "notifying"
    assert "Location" not in answer.headers


def test_succeeded_is_200_with_the_community() -> None:
    community = {"id": "c1", "displayName": "Team", "description": "d", "privacy": "private", "groupId": "g1"}
    output = final(
        "Succeeded", community=community, members={"added": ["m1"], "failed": []}, callback="delivered"
    )
    answer = render(durable("Completed", output=output, customStatus=running_custom_status()))
    assert answer.status_code == 200
    assert "Location" not in answer.headers
    assert "Retry-After" not in answer.headers
    assert answer.body["status"] == "Succeeded"
    assert answer.body["community"] == community
    assert answer.body["members"] == {"added": ["m1"], "failed": []}
    assert_no_secrets(answer)


def test_failed_is_422_with_the_error() -> None:
    error = {"code": "OperationFailed", "message": "Graph said failed", "graphRequestId": "r-1"}
    answer = render(durable("Completed", output=final("Failed", error=error)))
    assert answer.status_code == 422
    assert answer.body["error"] == error
    assert "Location" not in answer.headers


def test_output_as_json_text_is_understood() -> None:
    answer = render(durable("Completed", output=json.dumps(final("Succeeded"))))
    assert answer.status_code == 200


def test_completed_without_a_usable_output_is_an_internal_failure_not_a_500() -> None:
    answer = render(durable("Completed", output="oops"))
    assert answer.status_code == 422
    assert answer.body["status"] == "Failed"
    assert answer.body["error"]["code"] == "InternalError"


def test_orchestrator_crash_is_a_422_internal_error_without_the_exception_text() -> None:
    answer = render(
        durable(
            "Failed", output="Orchestrator function 'x' failed: KeyError secret-detail", customStatus=None
        )
    )
    assert answer.status_code == 422
    assert answer.body["status"] == "Failed"
    assert answer.body["error"]["code"] == "InternalError"
    assert "secret-detail" not in json.dumps(answer.body)
    assert answer.body["request"]["displayName"] == "Team"


def test_canceled_by_the_orchestrator_is_409_with_its_final_document() -> None:
    error = {"code": "Canceled", "message": "The request was canceled."}
    answer = render(durable("Completed", output=final("Canceled", error=error, callback="delivered")))
    assert answer.status_code == 409
    assert answer.body["status"] == "Canceled"
    assert answer.body["error"] == error
    assert answer.body["callback"] == "delivered"
    assert "Location" not in answer.headers


@pytest.mark.parametrize("runtime_status", ["Terminated", "Canceled"])
def test_terminated_is_canceled_409_built_from_the_last_progress(runtime_status: str) -> None:
    # The operator's fallback (Durable's terminate API); DELETE itself lets the orchestrator end the request.
    answer = render(
        durable(runtime_status, output="Canceled by the caller", customStatus=running_custom_status())
    )
    assert answer.status_code == 409
    assert answer.body["status"] == "Canceled"
    assert answer.body["error"]["code"] == "Canceled"
    assert answer.body["phase"] == "waiting-for-graph"  # where it was when canceled
    assert answer.body["operation"]["checks"] == 2
    assert answer.body["lastUpdatedAt"] == "2026-01-01T10:00:00Z"
    assert "callback" not in answer.body  # a terminated orchestration never ran its notify step
    assert "Location" not in answer.headers
    assert_no_secrets(answer)


def test_document_id_is_always_the_instance_id() -> None:
    document = document_from_durable(
        INSTANCE, durable("Completed", output={**final("Succeeded"), "id": "other"})
    )
    assert document is not None
    assert document.id == INSTANCE
    assert document.status is RequestStatus.SUCCEEDED


def test_timestamps() -> None:
    assert utc_timestamp(datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC)) == "2026-01-02T03:04:05Z"
    assert parse_timestamp("2026-01-02T03:04:05Z") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_timestamp("2026-01-02T03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_timestamp("") is None
    assert parse_timestamp("yesterday") is None


def test_created_at_has_milliseconds_so_requests_of_one_second_keep_their_order() -> None:
    from datetime import UTC, datetime

    from provisioning.status import created_timestamp, parse_timestamp

    first = created_timestamp(datetime(2026, 1, 1, 10, 0, 0, 123456, tzinfo=UTC))
    second = created_timestamp(datetime(2026, 1, 1, 10, 0, 0, 124000, tzinfo=UTC))
    assert first == "2026-01-01T10:00:00.123Z"
    assert first < second
    assert parse_timestamp(first) == datetime(2026, 1, 1, 10, 0, 0, 123000, tzinfo=UTC)
