"""`vecp create/status/list/cancel/retry` over real HTTP against the app in the dev host (Graph simulator)."""

from __future__ import annotations

import json
from pathlib import Path

from cli.api import ExitCode
from tests.cli.runner import HostClock, fields, vecp
from tests.e2e.workflow_env import MEMBER, OWNER, POLL_INTERVAL, WorkflowEnv

OWNER_UPN = OWNER["userPrincipalName"]


def create(env: WorkflowEnv, name: str, *extra: str) -> str:
    """Start a request without waiting; its id."""
    run = vecp(env, "create", "--name", name, "--owner", OWNER_UPN, "-o", "json", *extra)
    assert run.code == ExitCode.OK, run.output
    return str(run.json()["id"])


def test_create_from_a_file_and_flags_waits_to_succeeded_with_live_progress(
    env: WorkflowEnv, tmp_path: Path
) -> None:
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps({"displayName": "From the file", "description": "Made by vecp", "privacy": "public"})
    )
    clock = HostClock(env)
    run = vecp(
        env,
        "create",
        "--file",
        str(request),
        "--name",
        "CLI Community",  # flags win over the file
        "--owner",
        OWNER_UPN,
        "--member",
        MEMBER["userPrincipalName"],
        "--wait",
        "-o",
        "json",
        clock=clock,
    )

    assert run.code == ExitCode.OK, run.output
    document = run.json()
    assert document["status"] == "Succeeded"
    assert document["request"] == {
        "displayName": "CLI Community",
        "description": "Made by vecp",
        "privacy": "public",
        "ownerCount": 1,
        "memberCount": 1,
    }
    assert document["members"]["added"] == [MEMBER["id"]]
    assert len(env.graph_calls(route="create")) == 1
    # Progress went to stderr, one plain line per change (not a terminal): phase, checks, next check.
    progress = run.stderr.splitlines()
    assert progress[0] == f"{document['id']}: Running"
    assert any(
        "phase waiting-for-graph" in line and "check" in line and "next check 20" in line for line in progress
    ), progress
    assert progress[-1].startswith(f"{document['id']}: Succeeded, phase done")
    # It slept what Retry-After said, the time until Graph's next check, so it polled once after each check.
    assert clock.slept == [POLL_INTERVAL] * len(env.status_check_times())


def test_create_wait_to_failed_exits_1_with_the_error(env: WorkflowEnv) -> None:
    env.sim.set_scenario("operation-failed", status_detail="Quota exceeded")
    run = vecp(env, "create", "--name", "Doomed Community", "--owner", OWNER_UPN, "--wait")

    assert run.code == ExitCode.REQUEST_FAILED, run.output
    assert "ended Failed: OperationFailed" in run.stderr
    # The table: one aligned FIELD/VALUE line per field of the document.
    document = fields(run.stdout)
    assert document["status"] == "Failed"
    assert document["error.code"] == "OperationFailed"
    assert document["request.displayName"] == "Doomed Community"


def test_an_invalid_request_exits_2_naming_the_fields_and_starts_nothing(env: WorkflowEnv) -> None:
    run = vecp(env, "create", "--name", " ", "--owner", "bob", "--privacy", "public")

    assert run.code == ExitCode.USAGE
    assert run.stdout == ""
    assert "HTTP 400 ValidationFailed: The request is not valid" in run.stderr
    assert "  displayName: must not be empty" in run.stderr
    assert "  owners[0]: must be an Entra object id (GUID) or a user principal name" in run.stderr

    as_json = vecp(env, "create", "--owner", OWNER_UPN, "-o", "json")
    assert as_json.code == ExitCode.USAGE
    problem = as_json.json()  # the problem itself on stdout, for scripts
    assert problem["code"] == "ValidationFailed"
    assert [error["field"] for error in problem["errors"]] == ["displayName"]
    assert env.request_instances() == []


def test_usage_errors_exit_2_before_any_call(env: WorkflowEnv, tmp_path: Path) -> None:
    assert vecp(env, "create", "--privacy", "secret").code == ExitCode.USAGE
    assert vecp(env, "frobnicate").code == ExitCode.USAGE
    missing = vecp(env, "create", "--file", str(tmp_path / "missing.json"))
    assert missing.code == ExitCode.USAGE
    assert "cannot read" in missing.stderr
    (tmp_path / "list.json").write_text("[1, 2]")
    not_an_object = vecp(env, "create", "--file", str(tmp_path / "list.json"))
    assert not_an_object.code == ExitCode.USAGE
    assert "must hold a JSON object" in not_an_object.stderr
    assert env.request_instances() == []


def test_status_of_running_finished_and_unknown_requests(env: WorkflowEnv) -> None:
    request_id = create(env, "Status Community")

    running = vecp(env, "status", request_id, "-o", "json")
    assert running.code == ExitCode.OK
    assert running.json()["status"] == "Running"

    waited = vecp(env, "status", request_id, "--wait", "-o", "json")
    assert waited.code == ExitCode.OK, waited.output
    assert waited.json()["status"] == "Succeeded"

    unknown = vecp(env, "status", "req-" + "0" * 32)
    assert unknown.code == ExitCode.NOT_FOUND
    assert "HTTP 404 NotFound" in unknown.stderr


def test_wait_timeout_exits_7_and_leaves_the_request_running(env: WorkflowEnv) -> None:
    env.sim.set_scenario("operation-never-ends")
    clock = HostClock(env)
    run = vecp(
        env, "create", "--name", "Slow Community", "--owner", OWNER_UPN, "--wait", "--timeout", "100",
        "-o", "json", clock=clock,
    )  # fmt: skip

    assert run.code == ExitCode.TIMEOUT, run.output
    document = run.json()
    assert document["status"] == "Running"
    assert f"{document['id']} is still running after 100 s" in run.stderr
    assert sum(clock.slept) == 100  # slept up to the deadline, not a whole Retry-After past it
    durable = env.host.status(document["id"])
    assert durable is not None
    assert durable["runtimeStatus"] == "Running"


def test_list_as_json_and_as_an_aligned_table_with_filters_and_paging(env: WorkflowEnv) -> None:
    first = create(env, "Listed Alpha")
    env.host.run_until_status(first)
    env.sim.set_scenario("operation-failed")
    second = create(env, "Listed Beta")
    env.host.run_until_status(second)

    listed = vecp(env, "list", "-o", "json")
    assert listed.code == ExitCode.OK, listed.output
    assert [row["id"] for row in listed.json()["items"]] == [second, first]  # newest first

    failed = vecp(env, "list", "--status", "Failed", "-o", "json").json()["items"]
    assert [(row["id"], row["errorCode"]) for row in failed] == [(second, "OperationFailed")]
    by_name = vecp(env, "list", "--name", "alpha", "-o", "json").json()["items"]
    assert [row["id"] for row in by_name] == [first]

    page = vecp(env, "list", "--top", "1", "-o", "json")
    assert [row["id"] for row in page.json()["items"]] == [second]
    assert "nextLink" in page.json()
    assert "more rows follow" in page.stderr
    everything = vecp(env, "list", "--top", "1", "--all", "-o", "json")
    assert [row["id"] for row in everything.json()["items"]] == [second, first]
    assert "nextLink" not in everything.json()

    table = vecp(env, "list", "--status", "Succeeded,Failed")
    assert table.code == ExitCode.OK
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["ID", "STATUS", "PHASE", "CREATED", "NAME", "RESULT"]
    assert [row.split()[0] for row in rows] == [second, first]
    for column, values in (("STATUS", ["Failed", "Succeeded"]), ("NAME", ["Listed Beta", "Listed Alpha"])):
        start = header.index(column)
        assert [row[start:].startswith(value) for row, value in zip(rows, values, strict=True)] == [True] * 2

    bad = vecp(env, "list", "--status", "Sleeping")
    assert bad.code == ExitCode.USAGE
    assert "status: 'Sleeping' is not one of" in bad.stderr


def test_cancel_then_retry_and_their_refusals(env: WorkflowEnv) -> None:
    env.sim.set_scenario("operation-never-ends")
    request_id = create(env, "Canceled Community")
    env.host.run_until_idle()

    canceled = vecp(env, "cancel", request_id, "-o", "json")
    assert canceled.code == ExitCode.OK, canceled.output
    assert canceled.json()["status"] == "Canceled"
    status = vecp(env, "status", request_id)
    assert status.code == ExitCode.REQUEST_FAILED  # a Canceled request is not a success
    assert "ended Canceled: Canceled" in status.stderr
    again = vecp(env, "cancel", request_id)
    assert again.code == ExitCode.CONFLICT
    assert "HTTP 409 NotCancelable" in again.stderr
    assert "requestStatus: Canceled" in again.stderr

    env.sim.clear_scenarios()
    retried = vecp(env, "retry", request_id, "--wait", "-o", "json")
    assert retried.code == ExitCode.OK, retried.output
    document = retried.json()
    assert document["status"] == "Succeeded"
    assert document["retryOf"] == request_id

    not_retryable = vecp(env, "retry", document["id"])
    assert not_retryable.code == ExitCode.CONFLICT
    assert "NotRetryable" in not_retryable.stderr
    assert vecp(env, "cancel", "req-" + "0" * 32).code == ExitCode.NOT_FOUND
