"""The real ``provision_community`` orchestrator replayed by the dev host's Durable engine on a manual clock,
with its real activities calling the Graph simulator (which shares the clock). No real waiting: a 30-minute
Graph operation takes a few real seconds."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from provisioning.workflow import CHECKS_PER_EXECUTION, MAX_TRANSIENT_RETRIES
from tests.e2e.workflow_env import POLL_INTERVAL, WorkflowEnv, gaps, jittered, provisioning_input

TIMER_CREATED = 10


def parse_time(text: str) -> datetime:
    # .NET writes 7 fractional digits; datetime keeps 6.
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00"))


def timer_fire_times(history: list[dict[str, Any]]) -> list[datetime]:
    return [parse_time(str(event["FireAt"])) for event in history if event["EventType"] == TIMER_CREATED]


def execution_input(history: list[dict[str, Any]]) -> dict[str, Any]:
    started = next(event for event in history if event["EventType"] == 0)
    value = json.loads(started["Input"])
    return json.loads(value) if isinstance(value, str) else value


def test_thirty_minute_operation_completes_fast_with_bounded_history(env: WorkflowEnv) -> None:
    began = time.monotonic()
    instance_id = env.host.start_new("provision_community", provisioning_input("req-long"))
    status = env.host.run_until_status(instance_id)
    elapsed = time.monotonic() - began

    assert status["runtimeStatus"] == "Completed"
    document = status["output"]
    assert document["status"] == "Succeeded"
    assert document["phase"] == "done"
    assert document["createdAt"] == "2026-01-01T00:00:00Z"  # unchanged across continue-as-new
    assert document["operation"]["checks"] == 60
    assert document["operation"]["status"] == "succeeded"
    assert document["community"]["id"] == env.sim.communities()[0]["id"]
    assert elapsed < 60, f"60 virtual status checks took {elapsed:.1f} real seconds"

    # 60 checks at least one interval apart: 30 virtual minutes.
    checks = env.status_check_times()
    assert len(checks) == 60
    assert min(gaps(checks)) >= POLL_INTERVAL
    assert checks[-1] - checks[0] >= 59 * POLL_INTERVAL

    # Continue-as-new every CHECKS_PER_EXECUTION checks: the last execution holds only its own few checks.
    history = env.host.history(instance_id)
    carried = execution_input(history)["workflowState"]
    continued = (60 - 1) // CHECKS_PER_EXECUTION  # the last check ends the request instead
    assert carried["executions"] == 1 + continued
    assert carried["checks"] == continued * CHECKS_PER_EXECUTION
    fire_times = timer_fire_times(history)
    assert 0 < len(fire_times) <= CHECKS_PER_EXECUTION
    assert min(gaps([moment.timestamp() for moment in fire_times])) >= POLL_INTERVAL
    assert len(history) < 120


def test_custom_status_shows_progress_and_survives_continue_as_new(env: WorkflowEnv) -> None:
    instance_id = env.host.start_new("provision_community", provisioning_input("req-progress"))
    env.host.advance(POLL_INTERVAL * 15 + 5)  # past the first continue-as-new

    status = env.host.status(instance_id)
    assert status is not None
    assert status["runtimeStatus"] in ("Running", "ContinuedAsNew", "Pending")
    progress = status["customStatus"]
    assert progress["status"] == "Running"
    assert progress["phase"] == "waiting-for-graph"
    assert progress["createdAt"] == "2026-01-01T00:00:00Z"
    assert progress["operation"]["checks"] == 15
    assert progress["operation"]["status"] == "running"
    assert progress["operation"]["nextCheckAt"].endswith("Z")
    assert "engagementAsyncOperations" not in json.dumps(progress)


def test_timeout_reports_the_last_status(
    start_env: Callable[..., WorkflowEnv],
) -> None:
    env = start_env(settings={"PROVISIONING_TIMEOUT_MINUTES": "3"})
    env.sim.set_scenario("operation-never-ends")
    instance_id = env.host.start_new("provision_community", provisioning_input("req-timeout"))
    document = env.host.run_until_status(instance_id)["output"]

    assert document["status"] == "Failed"
    assert document["error"]["code"] == "Timeout"
    assert "running" in document["error"]["message"]
    assert document["operation"]["checks"] == 6  # 3 minutes at 30 s


def test_transient_errors_exhausted_become_graph_unavailable_with_the_request_id(env: WorkflowEnv) -> None:
    env.sim.set_scenario("server-error", status=503, route="list", times=10)
    instance_id = env.host.start_new("provision_community", provisioning_input("req-unavailable"))
    document = env.host.run_until_status(instance_id)["output"]

    assert document["error"]["code"] == "GraphUnavailable"
    lists = env.graph_calls("list")
    assert len(lists) == 1 + MAX_TRANSIENT_RETRIES
    assert document["error"]["graphRequestId"] == lists[-1]["requestId"]
    # No Retry-After: exponential backoff on durable timers, each wait jittered.
    assert gaps([entry["time"] for entry in lists]) == [
        jittered(5.0 * 2**n) for n in range(MAX_TRANSIENT_RETRIES)
    ]
    assert env.graph_calls("create") == []


def test_throttling_waits_retry_after_plus_jitter_in_durable_timers(env: WorkflowEnv) -> None:
    env.sim.set_scenario("throttle", retry_after=2.128, form="fractional", route="create", times=2)
    instance_id = env.host.start_new("provision_community", provisioning_input("req-throttled"))
    env.host.advance(10)

    creates = env.graph_calls("create")
    assert [entry["status"] for entry in creates][:2] == [429, 429]
    assert gaps([entry["time"] for entry in creates]) == [jittered(2.128)] * 2
    assert env.host.run_until_status(instance_id)["output"]["status"] == "Succeeded"


def test_retry_after_of_successful_answers_spaces_checks_across_continue_as_new(env: WorkflowEnv) -> None:
    env.sim.set_scenario("operation-in-progress-spelling", status="running", polls=12)
    env.sim.set_scenario("operation-retry-after", retry_after=75, on="both")
    instance_id = env.host.start_new("provision_community", provisioning_input("req-patient"))
    document = env.host.run_until_status(instance_id)["output"]

    assert document["status"] == "Succeeded"
    create_time = env.graph_calls("create")[0]["time"]
    checks = env.status_check_times()
    assert len(checks) == 12
    # The 202's Retry-After sets the first wait, each poll's the next; check 11 follows a continue-as-new.
    assert gaps([create_time, *checks]) == [75.0] * 12
    carried = execution_input(env.host.history(instance_id))["workflowState"]
    assert (carried["executions"], carried["retry_after_seconds"]) == (2, 75.0)


def test_a_retry_after_beyond_the_timeout_is_cut_to_the_deadline(
    start_env: Callable[..., WorkflowEnv],
) -> None:
    env = start_env(settings={"PROVISIONING_TIMEOUT_MINUTES": "3"})
    env.sim.set_scenario("operation-never-ends")
    env.sim.set_scenario("operation-retry-after", retry_after=3600, on="operation")
    instance_id = env.host.start_new("provision_community", provisioning_input("req-far"))
    document = env.host.run_until_status(instance_id)["output"]
    checks = env.status_check_times()
    create_time = env.graph_calls("create")[0]["time"]

    assert document["error"]["code"] == "Timeout"
    # First check one interval after the create; an hour-long Retry-After is cut to the 3-minute deadline.
    assert gaps([create_time, *checks]) == [POLL_INTERVAL, 180.0 - POLL_INTERVAL]
    assert document["operation"]["checks"] == 2


def test_logs_are_written_once_despite_replays(env: WorkflowEnv, caplog: pytest.LogCaptureFixture) -> None:
    env.sim.clear_scenarios()
    with caplog.at_level(logging.INFO, logger="orchestrators.provision"):
        instance_id = env.host.start_new("provision_community", provisioning_input("req-logs"))
        env.host.run_until_status(instance_id)
    ready = [record for record in caplog.records if "is ready" in record.getMessage()]
    assert len(ready) == 1


def test_unexpected_failure_still_ends_with_a_document(
    start_env: Callable[..., WorkflowEnv],
) -> None:
    invalid = {"PROVISIONING_TIMEOUT_MINUTES": "0"}
    env = start_env(settings=invalid)
    instance_id = env.host.start_new("provision_community", provisioning_input("req-misconfigured"))
    status = env.host.run_until_status(instance_id)

    # The settings activity fails (0 is not a valid timeout): the caller gets a Failed document, not a crash.
    assert status["runtimeStatus"] == "Completed"
    document = status["output"]
    assert document["status"] == "Failed"
    assert document["error"]["code"] == "InternalError"
    assert "PROVISIONING_TIMEOUT_MINUTES" not in document["error"]["message"]
    assert env.graph_calls() == []


def test_a_host_restart_mid_wait_resumes_from_durable_state(env: WorkflowEnv) -> None:
    instance_id = env.host.start_new("provision_community", provisioning_input("req-restart"))
    env.host.advance(POLL_INTERVAL * 12 + 5)  # past a continue-as-new, between two checks
    checks_before = len(env.graph_calls("operation"))
    assert checks_before == 12

    env.restart_host()
    document = env.host.run_until_status(instance_id)["output"]

    assert document["status"] == "Succeeded"
    assert document["operation"]["checks"] == 60
    assert len(env.graph_calls("create")) == 1  # nothing was redone by the restart
    assert len(env.graph_calls("operation")) == 60
    assert min(gaps(env.status_check_times())) >= POLL_INTERVAL
