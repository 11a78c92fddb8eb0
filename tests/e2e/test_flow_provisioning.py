"""End to end, like Power Automate: POST /api/communities, then follow Location honouring Retry-After until a
non-202 answer. The app runs in the dev host against the Graph simulator, both on one virtual clock; the
simulator's request log proves how Graph was called (counts, at least the poll interval between checks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from graph_simulator import GraphSimulator
from provisioning.workflow import from_iso, lost_create_looks
from tests.e2e.workflow_env import (
    MEMBER,
    OTHER_MEMBER,
    OWNER,
    POLL_INTERVAL,
    WorkflowEnv,
    gaps,
    jittered,
    request_body,
)


def assert_checks_spaced(env: WorkflowEnv, minimum: float = POLL_INTERVAL) -> None:
    checks = env.status_check_times()
    assert checks, "no status check was made"
    assert all(gap >= minimum for gap in gaps(checks)), gaps(checks)


def test_success_creates_confirms_and_adds_members(env: WorkflowEnv) -> None:
    final, bodies = env.provision(request_body(members=[MEMBER["userPrincipalName"], OTHER_MEMBER["id"]]))

    assert final.status_code == 200, final.text
    document = final.json()
    assert document["status"] == "Succeeded"
    assert document["phase"] == "done"
    [community] = env.sim.communities()
    assert document["community"]["id"] == community["id"]
    assert document["community"]["groupId"] == community["groupId"]
    assert document["community"]["displayName"] == "Contoso Engineering"
    assert {MEMBER["id"], OTHER_MEMBER["id"]} <= set(env.sim.group_members(community["groupId"]))
    assert document["members"] == {"added": [MEMBER["id"], OTHER_MEMBER["id"]], "failed": []}
    assert document["callback"] == "none"
    # Progress was visible while running.
    assert any(body and body.get("phase") == "waiting-for-graph" for body in bodies)

    # Graph calls: one create, one check per simulated poll (3), one confirming read, at least 30 s apart.
    assert len(env.graph_calls("create")) == 1
    assert len(env.graph_calls("operation")) == 3
    assert len(env.graph_calls("community", "GET")) == 1
    assert len(env.graph_calls("users")) == 2  # the two UPNs; the GUID member needs no look-up
    assert_checks_spaced(env)
    create_time = env.graph_calls("create")[0]["time"]
    assert env.status_check_times()[0] - create_time >= POLL_INTERVAL


@pytest.mark.parametrize(
    ("scenario", "options"),
    [
        ("operation-in-progress-spelling", {"status": "inProgress"}),
        ("operation-in-progress-spelling", {"status": "inprogress"}),
        ("operation-location-only", {}),
        ("both-polling-headers", {}),
        ("relative-location", {}),
        ("segment-id-location", {}),
        ("slow", {"seconds": 0.3, "route": "operation"}),
    ],
)
def test_graph_variations_still_succeed(env: WorkflowEnv, scenario: str, options: dict[str, Any]) -> None:
    env.sim.set_scenario(scenario, **options)
    final, _ = env.provision(request_body())

    assert final.status_code == 200, final.text
    assert len(env.graph_calls("create")) == 1
    assert len(env.graph_calls("operation")) == 3
    assert_checks_spaced(env)
    [community] = env.sim.communities()
    assert final.json()["community"]["id"] == community["id"]


@pytest.mark.parametrize(
    ("scenario", "options", "status_text"),
    [
        ("operation-failed", {"status_detail": "Quota exceeded"}, "Quota exceeded"),
        ("operation-skipped", {}, "skipped"),
        ("operation-failed", {"status": "invalid"}, "invalid"),
    ],
)
def test_operation_failure_is_a_4xx_operation_failed(
    env: WorkflowEnv, scenario: str, options: dict[str, Any], status_text: str
) -> None:
    env.sim.set_scenario(scenario, **options)
    final, _ = env.provision(request_body())

    assert final.status_code == 422
    error = final.json()["error"]
    assert error["code"] == "OperationFailed"
    assert status_text in error["message"]
    assert env.graph_calls("community", "GET") == []


def test_unknown_status_stays_in_progress_and_is_shown(env: WorkflowEnv) -> None:
    env.sim.set_scenario("operation-unknown-status", status="unknownFutureValue", polls=4)
    final, bodies = env.provision(request_body())

    assert final.status_code == 200
    shown = {
        body["operation"]["status"] for body in bodies if body and body.get("operation", {}).get("status")
    }
    assert "unknownFutureValue" in shown
    assert final.json()["operation"]["status"] == "succeeded"
    assert len(env.graph_calls("operation")) == 4
    assert_checks_spaced(env)


def test_operation_that_never_ends_times_out(
    start_env: Callable[..., WorkflowEnv],
) -> None:
    env = start_env(settings={"PROVISIONING_TIMEOUT_MINUTES": "6"})
    env.sim.set_scenario("operation-never-ends")
    final, _ = env.provision(request_body())

    assert final.status_code == 422
    document = final.json()
    assert document["error"]["code"] == "Timeout"
    assert "running" in document["error"]["message"]
    # 6 minutes at 30 s: 12 checks, crossing a continue-as-new, never closer than the interval.
    assert len(env.graph_calls("operation")) == 12
    assert document["operation"]["checks"] == 12
    assert_checks_spaced(env)


def test_succeeded_without_community_is_community_not_found(env: WorkflowEnv) -> None:
    env.sim.set_scenario("operation-succeeded-without-community")
    final, _ = env.provision(request_body())

    assert final.status_code == 422
    assert final.json()["error"]["code"] == "CommunityNotFound"
    reads = env.graph_calls("community", "GET")
    assert len(reads) == 4  # first read + 3 re-checks
    assert all(gap >= POLL_INTERVAL for gap in gaps([entry["time"] for entry in reads]))


@pytest.mark.parametrize("status", [500, 503, 504])
def test_server_errors_on_status_checks_are_retried(env: WorkflowEnv, status: int) -> None:
    env.sim.set_scenario("server-error", status=status, route="operation", times=2)
    final, _ = env.provision(request_body())

    assert final.status_code == 200, final.text
    checks = env.graph_calls("operation")
    assert [entry["status"] for entry in checks][:2] == [status, status]
    assert len(checks) == 2 + 3
    assert_checks_spaced(env)  # Durable retries of a check wait a full interval too
    assert len(env.sim.communities()) == 1


@pytest.mark.parametrize("status", [500, 503, 504])
def test_server_errors_on_create_are_retried_without_duplicates(env: WorkflowEnv, status: int) -> None:
    # 500/503 are transient (Durable retry after 5 s); a 504 on a create is ambiguous (look up, create again).
    env.sim.set_scenario("server-error", status=status, route="create", times=1)
    final, _ = env.provision(request_body())

    assert final.status_code == 200, final.text
    creates = env.graph_calls("create")
    assert [entry["status"] for entry in creates] == [status, 202]
    assert len(env.sim.communities()) == 1


def test_malformed_json_is_retried(env: WorkflowEnv) -> None:
    env.sim.set_scenario("malformed-json", route="operation", times=1)
    final, _ = env.provision(request_body())

    assert final.status_code == 200, final.text
    # The truncated answer is a check that failed transiently: the next one came an interval later.
    checks = env.graph_calls("operation")
    assert len(checks) == 3
    assert final.json()["operation"]["checks"] == 3
    assert_checks_spaced(env)


def test_create_without_polling_header_adopts_the_created_community(env: WorkflowEnv) -> None:
    env.sim.set_scenario("no-polling-header", times=1)
    final, _ = env.provision(request_body())

    assert final.status_code == 200, final.text
    [community] = env.sim.communities()
    assert final.json()["community"]["id"] == community["id"]
    assert len(env.graph_calls("create")) == 1


def test_throttled_create_waits_fractional_retry_after(env: WorkflowEnv) -> None:
    env.sim.set_scenario("throttle", retry_after=2.128, form="fractional", route="create", times=2)
    final, _ = env.provision(request_body())

    assert final.status_code == 200, final.text
    creates = env.graph_calls("create")
    assert [entry["status"] for entry in creates] == [429, 429, 202]
    assert all(gap >= 2.128 - 1e-6 for gap in gaps([entry["time"] for entry in creates]))
    assert len(env.sim.communities()) == 1


@pytest.mark.parametrize("retry_after", [75, 2.5])
def test_throttled_status_check_waits_the_longer_of_interval_and_retry_after(
    env: WorkflowEnv, retry_after: float
) -> None:
    env.sim.set_scenario("throttle", retry_after=retry_after, route="operation", times=1)
    final, _ = env.provision(request_body())

    assert final.status_code == 200, final.text
    checks = env.graph_calls("operation")
    assert [entry["status"] for entry in checks] == [429, 200, 200, 200]
    # The throttled requests' Retry-After is jittered so that they do not all come back at once.
    first_gap = gaps([entry["time"] for entry in checks])[0]
    assert max(POLL_INTERVAL, retry_after) <= first_gap <= max(POLL_INTERVAL, retry_after * 1.2)
    assert_checks_spaced(env)


@pytest.mark.parametrize(
    ("retry_after", "on", "expected_gaps"),
    [
        (
            75,
            "both",
            [75.0, 75.0, 75.0],
        ),  # longer than the interval: honoured after the create and each check
        (5, "both", [30.0, 30.0, 30.0]),  # shorter: never shortens the 30 s interval
        (75, "create", [75.0, 30.0, 30.0]),  # only the 202 asked: only the first check is later
        (75, "operation", [30.0, 75.0, 75.0]),
    ],
)
def test_retry_after_on_successful_answers_spaces_the_status_checks(
    env: WorkflowEnv, retry_after: float, on: str, expected_gaps: list[float]
) -> None:
    env.sim.set_scenario("operation-retry-after", retry_after=retry_after, on=on)
    final, bodies = env.provision(request_body())

    assert final.status_code == 200, final.text
    creates = env.graph_calls("create")
    checks = env.graph_calls("operation")
    assert [entry["status"] for entry in creates + checks] == [202, 200, 200, 200]
    # Virtual times from the simulator's request log: the create, then every status check.
    assert gaps([entry["time"] for entry in creates + checks]) == expected_gaps
    # What the caller was shown as the next check time is when the checks really happened.
    announced = {
        from_iso(body["operation"]["nextCheckAt"]).timestamp()
        for body in bodies
        if body and body.get("operation", {}).get("nextCheckAt")
    }
    assert announced
    assert announced <= {entry["time"] for entry in checks}


def test_throttling_without_retry_after_backs_off(env: WorkflowEnv) -> None:
    env.sim.set_scenario("throttle", form="none", route="users", times=2)
    final, _ = env.provision(request_body())

    assert final.status_code == 200, final.text
    lookups = env.graph_calls("users")
    assert [entry["status"] for entry in lookups] == [429, 429, 200]
    assert gaps([entry["time"] for entry in lookups]) == [
        jittered(5.0),
        jittered(10.0),
    ]  # exponential backoff


def test_viva_engage_rate_limit_is_waited_out(env: WorkflowEnv) -> None:
    env.sim.set_scenario("rate-limit", limit=1, window=30)
    final, _ = env.provision(request_body())

    assert final.status_code == 200, final.text
    assert any(entry["status"] == 429 for entry in env.graph_calls())
    assert len(env.sim.communities()) == 1
    assert_checks_spaced(env)


@pytest.mark.parametrize(
    ("commit", "creates", "lookups"),
    [
        (True, 1, 1),  # the lost create's community is found at the first look and adopted
        # Nothing appeared: looked for on the poll cadence for the whole bound, then created again.
        (False, 2, lost_create_looks(POLL_INTERVAL, 60)),
    ],
)
def test_lost_create_answer_never_duplicates(
    env: WorkflowEnv, commit: bool, creates: int, lookups: int
) -> None:
    env.sim.set_scenario("connection-reset", route="create", commit=commit, times=1)
    final, _ = env.provision(request_body())

    assert final.status_code == 200, final.text
    assert len(env.graph_calls("create")) == creates
    [community] = env.sim.communities()
    assert final.json()["community"]["id"] == community["id"]
    # The duplicate-name check, the look-ups after the lost answer, and the duplicate check at the end.
    times = [entry["time"] for entry in env.graph_calls("list")]
    assert len(times) == 1 + lookups + 1
    first_create = env.graph_calls("create")[0]["time"]
    assert all(gap >= POLL_INTERVAL for gap in gaps([first_create, *times[1 : 1 + lookups]]))
    assert "possibleDuplicates" not in final.json()


def test_polling_url_on_another_host_fails_clearly_without_sending_the_token_there(env: WorkflowEnv) -> None:
    with GraphSimulator() as elsewhere:
        env.sim.set_scenario("foreign-location", origin=elsewhere.url)
        final, _ = env.provision(request_body())
        assert elsewhere.requests() == []  # not a token request, not a Graph call

    assert final.status_code == 422
    document = final.json()
    assert (document["status"], document["phase"]) == ("Failed", "done")
    error = document["error"]
    assert error["code"] == "GraphRejected"
    assert "pointed to a host the token is never sent to" in error["message"]
    assert "UntrustedGraphUrl" in error["message"]
    assert "may still be created" in error["message"]
    [create] = env.graph_calls("create")  # permanent: not retried
    assert error["graphRequestId"] == create["requestId"]
    assert env.graph_calls("operation") == []
    # The known cost of refusing: Graph accepted the create, so the community exists without us following it.
    assert len(env.sim.communities()) == 1


def test_next_page_link_on_another_host_fails_clearly_without_sending_the_token_there(
    env: WorkflowEnv,
) -> None:
    for _ in range(21):  # more than one page of communities with the requested name
        env.sim.add_community("Contoso Engineering", owner_ids=[OWNER["id"]])
    with GraphSimulator() as elsewhere:
        env.sim.set_scenario("foreign-next-link", origin=elsewhere.url)
        final, _ = env.provision(request_body(onDuplicateName="create"))
        assert elsewhere.requests() == []

    assert final.status_code == 422
    document = final.json()
    assert document["status"] == "Failed"
    error = document["error"]
    assert error["code"] == "GraphRejected"
    assert error["message"].startswith(
        "looking for communities with the same name: Graph's answer pointed to"
    )
    assert "next page link" in error["message"]
    [page] = env.graph_calls("list")
    assert error["graphRequestId"] == page["requestId"]
    assert env.graph_calls("create") == []
    assert len(env.sim.communities()) == 21


def test_duplicate_name_fail_policy(env: WorkflowEnv) -> None:
    existing = env.sim.add_community("Contoso Engineering", owner_ids=[OWNER["id"]])
    final, _ = env.provision(request_body(onDuplicateName="fail"))

    assert final.status_code == 422
    error = final.json()["error"]
    assert error["code"] == "DuplicateName"
    assert existing["id"] in error["message"]
    assert env.graph_calls("create") == []


def test_duplicate_name_adopt_policy(env: WorkflowEnv) -> None:
    existing = env.sim.add_community("Contoso Engineering", owner_ids=[OWNER["id"]])
    final, _ = env.provision(request_body(onDuplicateName="adopt", members=[MEMBER["userPrincipalName"]]))

    assert final.status_code == 200, final.text
    assert final.json()["community"]["id"] == existing["id"]
    assert env.graph_calls("create") == []
    assert MEMBER["id"] in env.sim.group_members(existing["groupId"])
    assert len(env.sim.communities()) == 1


def test_create_refused_as_duplicate_by_graph_is_graph_rejected(env: WorkflowEnv) -> None:
    # FastTrack's reading of Graph: 409 nameAlreadyExists on create. Permanent: no retry, no second create.
    env.sim.add_community("Contoso Engineering", owner_ids=[OWNER["id"]])
    env.sim.set_scenario("duplicate-name-conflict")
    final, _ = env.provision(request_body(onDuplicateName="create"))

    assert final.status_code == 422
    error = final.json()["error"]
    assert error["code"] == "GraphRejected"
    assert "nameAlreadyExists" in error["message"]
    assert len(env.graph_calls("create")) == 1


def test_duplicate_name_create_policy(env: WorkflowEnv) -> None:
    existing = env.sim.add_community("Contoso Engineering", owner_ids=[OWNER["id"]])
    final, _ = env.provision(request_body(onDuplicateName="create"))

    assert final.status_code == 200, final.text
    assert final.json()["community"]["id"] != existing["id"]
    assert len(env.sim.communities()) == 2


def test_members_already_member_and_unknown(env: WorkflowEnv) -> None:
    existing = env.sim.add_community("Contoso Engineering", owner_ids=[OWNER["id"]])
    first, _ = env.provision(request_body(onDuplicateName="adopt", members=[MEMBER["id"]]))
    assert first.status_code == 200

    final, _ = env.provision(
        request_body(
            onDuplicateName="adopt",
            members=[
                MEMBER["userPrincipalName"],
                OTHER_MEMBER["userPrincipalName"],
                "ghost@contoso.onmicrosoft.com",
            ],
        )
    )

    assert final.status_code == 200, final.text
    members = final.json()["members"]
    # Members by object id, a failed one by its position in the request: never by user principal name.
    assert members["added"] == [MEMBER["id"], OTHER_MEMBER["id"]]
    assert members["failed"] == [{"index": 2, "error": "user not found"}]
    # Owners are group members too.
    assert sorted(env.sim.group_members(existing["groupId"])) == sorted(
        [OWNER["id"], MEMBER["id"], OTHER_MEMBER["id"]]
    )


def test_unknown_owner_fails_before_creating(env: WorkflowEnv) -> None:
    final, _ = env.provision(request_body(owners=["ghost@contoso.onmicrosoft.com"]))

    assert final.status_code == 422
    error = final.json()["error"]
    assert error["code"] == "UserNotFound"
    assert error["message"] == "owners[0] was not found in Entra ID"  # by position: a UPN is personal data
    assert error["graphRequestId"] == env.graph_calls("users")[-1]["requestId"]
    assert env.graph_calls("create") == []


def test_permanent_graph_error_is_graph_rejected_with_request_id(env: WorkflowEnv) -> None:
    env.sim.set_scenario("http-error", status=403, code="accessDenied", route="create")
    final, _ = env.provision(request_body())

    assert final.status_code == 422
    error = final.json()["error"]
    assert error["code"] == "GraphRejected"
    assert "accessDenied" in error["message"]
    assert error["graphRequestId"] == env.graph_calls("create")[0]["requestId"]
    assert len(env.graph_calls("create")) == 1  # permanent: not retried


def test_an_accepted_create_survives_a_run_of_unavailable_status_checks(env: WorkflowEnv) -> None:
    # Graph accepted the create: three 503s in a row are no reason to give up before the deadline.
    env.sim.set_scenario("server-error", status=503, route="operation", times=3)
    final, _ = env.provision(request_body())

    assert final.status_code == 200, final.text
    checks = env.graph_calls("operation")
    assert [entry["status"] for entry in checks] == [503, 503, 503, 200, 200, 200]
    assert final.json()["operation"]["checks"] == 6
    assert len(env.sim.communities()) == 1
    assert_checks_spaced(env)


def test_retry_after_on_a_503_is_honoured_by_one_shot_steps(env: WorkflowEnv) -> None:
    env.sim.set_scenario("server-error", status=503, retry_after=40, route="list", times=1)
    final, _ = env.provision(request_body())

    assert final.status_code == 200, final.text
    lookups = env.graph_calls("list")
    assert [entry["status"] for entry in lookups[:2]] == [503, 200]
    assert gaps([entry["time"] for entry in lookups[:2]]) == [jittered(40.0)]
