"""Workflow steps (what the activities run) over real HTTP: the Graph client against the simulator, the
callback POST against a local receiver. Checks the envelopes the orchestrator relies on."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from azure.identity import DefaultAzureCredential

from graph_simulator import SEED_USERS, GraphSimulator
from provisioning import steps, workflow
from provisioning.callbacks import CallbackPolicy
from provisioning.graph import GraphClient
from provisioning.notify import deliver_callback
from tests.e2e.workflow_env import CallbackReceiver

OWNER = SEED_USERS[0]
MEMBER = SEED_USERS[1]


@pytest.fixture
def client(graph_sim: GraphSimulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[GraphClient]:
    for name in (
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_TENANT_ID",
        "MSI_ENDPOINT",
        "IMDS_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in graph_sim.app_env().items():
        monkeypatch.setenv(name, value)
    with DefaultAzureCredential() as credential:
        yield GraphClient(graph_sim.graph_base_url, credential=credential, connect_timeout=2, read_timeout=5)


def create_request(name: str = "Steps") -> dict[str, Any]:
    return {"displayName": name, "description": None, "privacy": "private", "ownerIds": [OWNER["id"]]}


def test_create_then_poll_returns_plain_json(client: GraphClient) -> None:
    created = steps.create_community(client, create_request())
    operation_url = created["result"]["operationUrl"]
    status = steps.get_operation(client, operation_url)["result"]
    assert status["state"] in ("inProgress", "succeeded")
    json.dumps(created)
    json.dumps(status)


def test_retry_after_of_successful_answers_reaches_the_orchestrator(
    client: GraphClient, graph_sim: GraphSimulator
) -> None:
    graph_sim.set_scenario("operation-retry-after", retry_after=2.128, form="fractional", on="both")
    created = steps.create_community(client, create_request("Patient steps"))["result"]
    status = steps.get_operation(client, created["operationUrl"])["result"]
    assert created["retryAfterSeconds"] == pytest.approx(2.128)
    assert status["retryAfterSeconds"] == pytest.approx(2.128)
    graph_sim.clear_scenarios()
    assert steps.get_operation(client, created["operationUrl"])["result"]["retryAfterSeconds"] is None


def test_throttling_is_returned_as_data_with_retry_after(
    client: GraphClient, graph_sim: GraphSimulator
) -> None:
    graph_sim.set_scenario("throttle", retry_after=2.128, route="list")
    answer = steps.find_communities(client, "Anything")
    assert answer["error"]["kind"] == "throttled"
    assert answer["error"]["retryAfterSeconds"] == pytest.approx(2.128)


def test_transient_error_is_raised_with_the_error_in_its_text(
    client: GraphClient, graph_sim: GraphSimulator
) -> None:
    graph_sim.set_scenario("server-error", status=503, route="community")
    with pytest.raises(steps.TransientGraphError) as raised:
        steps.get_community(client, "some-id")
    error = workflow.graph_error_from_failure(f"Activity function failed:  {raised.value} \n {{}}")
    assert error is not None
    assert error["httpStatus"] == 503
    assert error["requestId"]


def test_lost_create_answer_is_ambiguous_data(client: GraphClient, graph_sim: GraphSimulator) -> None:
    graph_sim.set_scenario("connection-reset", route="create", commit=True)
    answer = steps.create_community(client, create_request("Lost answer"))
    assert answer["error"]["kind"] == "ambiguous"
    found = steps.find_communities(client, "Lost answer")["result"]
    assert [community["displayName"] for community in found] == ["Lost answer"]


def test_permanent_error_is_data_with_graphs_code(client: GraphClient, graph_sim: GraphSimulator) -> None:
    graph_sim.set_scenario("http-error", status=403, code="accessDenied", route="create")
    answer = steps.create_community(client, create_request())
    assert answer["error"]["kind"] == "permanent"
    assert answer["error"]["code"] == "accessDenied"


def test_resolve_users_separates_unknown_users(client: GraphClient) -> None:
    answer = steps.resolve_users(client, [OWNER["userPrincipalName"], "ghost@contoso.onmicrosoft.com"])
    result = answer["result"]
    assert result["resolved"] == {OWNER["userPrincipalName"]: OWNER["id"]}
    assert workflow.is_user_not_found(result["notFound"]["ghost@contoso.onmicrosoft.com"])


def test_add_members_counts_existing_members(client: GraphClient, graph_sim: GraphSimulator) -> None:
    community = graph_sim.add_community("Members", owner_ids=[OWNER["id"]])
    group_id = community["groupId"]
    first = steps.add_members(client, group_id, [MEMBER["id"]])["result"]
    assert first["added"] == [MEMBER["id"]]
    again = steps.add_members(client, group_id, [MEMBER["id"]])["result"]
    assert again["alreadyMembers"] == [MEMBER["id"]]
    assert again["failed"] == []


# -- callback delivery


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    with CallbackReceiver() as instance:
        yield instance


LOOPBACK_POLICY = CallbackPolicy(allowed_hosts=(), allow_loopback=True)


def test_callback_is_delivered_once(receiver: CallbackReceiver) -> None:
    answer = deliver_callback(receiver.url, {"id": "req-1", "status": "Succeeded"}, policy=LOOPBACK_POLICY)
    assert answer == {"delivered": True, "retryable": False, "detail": "HTTP 200"}
    assert receiver.bodies == [{"id": "req-1", "status": "Succeeded"}]


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (503, True), (429, True), (400, False)])
def test_failed_callback_says_whether_to_retry_and_hides_the_query(
    receiver: CallbackReceiver, status: int, retryable: bool
) -> None:
    receiver.status = status
    answer = deliver_callback(receiver.url, {"id": "req-1"}, policy=LOOPBACK_POLICY)
    assert answer["delivered"] is False
    assert answer["retryable"] is retryable
    assert "top-secret" not in answer["detail"]


def test_callback_refused_by_policy_is_not_retried(receiver: CallbackReceiver) -> None:
    answer = deliver_callback(receiver.url, {"id": "req-1"}, policy=CallbackPolicy(allowed_hosts=()))
    assert answer["delivered"] is False
    assert answer["retryable"] is False
    assert receiver.bodies == []


def test_unreachable_receiver_is_retryable_without_leaking_the_url() -> None:
    answer = deliver_callback("http://127.0.0.1:9/cb?sig=top-secret", {"id": "x"}, policy=LOOPBACK_POLICY)
    assert answer["retryable"] is True
    assert "top-secret" not in answer["detail"]


def test_callback_signature_stays_out_of_logs_even_at_debug_level(
    receiver: CallbackReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    # urllib3 logs whole request lines at DEBUG; a host running the app's loggers at Debug must not get them.
    with caplog.at_level(logging.DEBUG):
        deliver_callback(receiver.url, {"id": "req-1"}, policy=LOOPBACK_POLICY)
    assert receiver.bodies == [{"id": "req-1"}]
    assert caplog.records
    assert "top-secret" not in caplog.text
