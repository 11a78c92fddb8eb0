"""Workflow steps (what the activities run) over real HTTP: the Graph client against the simulator, the
callback POST against a local receiver. Checks the wire format both sides of the activity boundary use."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from azure.identity import DefaultAzureCredential

from graph_simulator import SEED_USERS, GraphSimulator
from provisioning import steps
from provisioning.callbacks import CallbackPolicy
from provisioning.graph import ErrorKind, GraphClient, OperationState
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


def test_create_then_poll_crosses_the_boundary_as_plain_json(client: GraphClient) -> None:
    created = steps.CREATE_COMMUNITY.run(client, create_request())
    status = steps.GET_OPERATION_STATUS.run(client, created["result"]["operationUrl"])
    # What an activity returns must survive JSON (the extension stores it as text) and read back typed.
    created, status = json.loads(json.dumps(created)), json.loads(json.dumps(status))
    operation = steps.CREATE_COMMUNITY.read(created).unwrap()
    assert operation.operation_url == created["result"]["operationUrl"]
    assert steps.GET_OPERATION_STATUS.read(status).unwrap().state in (
        OperationState.IN_PROGRESS,
        OperationState.SUCCEEDED,
    )


def test_retry_after_of_successful_answers_reaches_the_orchestrator(
    client: GraphClient, graph_sim: GraphSimulator
) -> None:
    graph_sim.set_scenario("operation-retry-after", retry_after=2.128, form="fractional", on="both")
    created = steps.CREATE_COMMUNITY.read(
        steps.CREATE_COMMUNITY.run(client, create_request("Patient"))
    ).unwrap()
    status = steps.GET_OPERATION_STATUS.read(steps.GET_OPERATION_STATUS.run(client, created.operation_url))
    assert created.retry_after_seconds == pytest.approx(2.128)
    assert status.unwrap().retry_after_seconds == pytest.approx(2.128)
    graph_sim.clear_scenarios()
    again = steps.GET_OPERATION_STATUS.run(client, created.operation_url)
    assert steps.GET_OPERATION_STATUS.read(again).unwrap().retry_after_seconds is None


def test_throttling_is_returned_as_data_with_retry_after(
    client: GraphClient, graph_sim: GraphSimulator
) -> None:
    graph_sim.set_scenario("throttle", retry_after=2.128, route="list")
    outcome = steps.FIND_COMMUNITIES.read(steps.FIND_COMMUNITIES.run(client, "Anything"))
    assert outcome.error is not None
    assert outcome.error.kind is ErrorKind.THROTTLED
    assert outcome.error.retry_after_seconds == pytest.approx(2.128)


def test_transient_error_is_data_too_with_graphs_request_id(
    client: GraphClient, graph_sim: GraphSimulator
) -> None:
    # Nothing structured travels in exception text, which the host rewrites (see test_sanitizer).
    graph_sim.set_scenario("server-error", status=503, route="community")
    outcome = steps.GET_COMMUNITY.read(steps.GET_COMMUNITY.run(client, "some-id"))
    assert outcome.error is not None
    assert outcome.error.kind is ErrorKind.TRANSIENT
    assert outcome.error.http_status == 503
    assert outcome.error.request_id


def test_lost_create_answer_is_ambiguous_data(client: GraphClient, graph_sim: GraphSimulator) -> None:
    graph_sim.set_scenario("connection-reset", route="create", commit=True)
    outcome = steps.CREATE_COMMUNITY.read(steps.CREATE_COMMUNITY.run(client, create_request("Lost answer")))
    assert outcome.error is not None
    assert outcome.error.kind is ErrorKind.AMBIGUOUS
    found = steps.FIND_COMMUNITIES.read(steps.FIND_COMMUNITIES.run(client, "Lost answer")).unwrap()
    assert [community.display_name for community in found] == ["Lost answer"]


def test_permanent_error_is_data_with_graphs_code(client: GraphClient, graph_sim: GraphSimulator) -> None:
    graph_sim.set_scenario("http-error", status=403, code="accessDenied", route="create")
    outcome = steps.CREATE_COMMUNITY.read(steps.CREATE_COMMUNITY.run(client, create_request()))
    assert outcome.error is not None
    assert outcome.error.kind is ErrorKind.PERMANENT
    assert outcome.error.code == "accessDenied"


def test_resolve_users_separates_unknown_users(client: GraphClient) -> None:
    answer = steps.RESOLVE_USERS.run(client, [OWNER["userPrincipalName"], "ghost@contoso.onmicrosoft.com"])
    users = steps.RESOLVE_USERS.read(json.loads(json.dumps(answer))).unwrap()
    assert users.resolved == {OWNER["userPrincipalName"]: OWNER["id"]}
    assert steps.is_user_not_found(users.not_found["ghost@contoso.onmicrosoft.com"])


def test_add_members_counts_existing_members(client: GraphClient, graph_sim: GraphSimulator) -> None:
    community = graph_sim.add_community("Members", owner_ids=[OWNER["id"]])
    batch = {"groupId": community["groupId"], "userIds": [MEMBER["id"]]}
    first = steps.ADD_MEMBERS.read(steps.ADD_MEMBERS.run(client, batch)).unwrap()
    assert first.added == [MEMBER["id"]]
    again = steps.ADD_MEMBERS.read(steps.ADD_MEMBERS.run(client, batch)).unwrap()
    assert again.already_members == [MEMBER["id"]]
    assert again.failed == []


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
