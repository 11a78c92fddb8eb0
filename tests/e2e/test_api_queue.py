"""Queue intake through Azurite: Rejected results for invalid messages, one orchestration per requestId."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from provisioning import batch_workflow as batches
from provisioning.idempotency import instance_id_for_key
from tests.e2e.workflow_env import WorkflowEnv, request_body

REQUESTS_QUEUE = "community-requests"
RESULTS_QUEUE = "community-results"

pytestmark = pytest.mark.azurite


@pytest.fixture
def env(start_env: Callable[..., WorkflowEnv]) -> WorkflowEnv:
    environment = start_env()
    for name in (REQUESTS_QUEUE, RESULTS_QUEUE, REQUESTS_QUEUE + "-poison"):
        client = environment.host.queue_client(name)
        try:
            client.create_queue()
        except Exception:  # already there from an earlier test: empty it
            client.clear_messages()
    return environment


def send(env: WorkflowEnv, message: Any) -> None:
    text = message if isinstance(message, str) else json.dumps(message)
    # host.json says messageEncoding base64, as the Functions host expects by default.
    env.host.queue_client(REQUESTS_QUEUE).send_message(base64.b64encode(text.encode()).decode())


def results(env: WorkflowEnv, queue: str = RESULTS_QUEUE) -> list[Any]:
    client = env.host.queue_client(queue)
    messages = client.peek_messages(max_messages=32)
    return [json.loads(base64.b64decode(message.content)) for message in messages]


def settle(env: WorkflowEnv) -> None:
    env.host.wait_for_queues_idle(timeout=20)
    env.host.run_until_idle()


def test_invalid_message_yields_one_rejected_result_and_is_not_retried(env: WorkflowEnv) -> None:
    message = {
        "requestId": "item-1",
        "displayName": "",
        "owners": ["bob"],
        "callbackUrl": "https://prod-1.westeurope.logic.azure.com/workflows/x/run?sig=TOP-SECRET",
    }
    send(env, message)
    settle(env)
    [rejected] = results(env)
    assert rejected["status"] == "Rejected"
    assert rejected["id"] == instance_id_for_key("item-1", "queue")
    assert rejected["requestId"] == "item-1"
    assert rejected["error"]["code"] == "ValidationFailed"
    assert [error["field"] for error in rejected["error"]["errors"]] == ["displayName", "owners[0]"]
    assert rejected["originalMessage"]["owners"] == ["<user>"]  # positions kept, users not echoed
    assert (
        rejected["originalMessage"]["callbackUrl"]
        == "https://prod-1.westeurope.logic.azure.com/workflows/x/run"
    )
    assert "TOP-SECRET" not in json.dumps(rejected)
    assert env.request_instances() == []
    assert results(env, REQUESTS_QUEUE + "-poison") == []
    assert results(env, REQUESTS_QUEUE) == []


def test_message_without_request_id_or_not_json_is_rejected(env: WorkflowEnv) -> None:
    send(env, request_body())
    send(env, "this is not json")
    settle(env)
    rejected = results(env)
    assert len(rejected) == 2
    by_kind = {isinstance(document["originalMessage"], str): document for document in rejected}
    assert by_kind[False]["error"]["errors"] == [{"field": "requestId", "message": "is required"}]
    assert by_kind[True]["originalMessage"] == "this is not json"
    assert by_kind[True]["error"]["errors"][0]["field"] == "body"
    assert all("requestId" not in document for document in rejected)
    assert env.request_instances() == []


def test_repeated_request_id_starts_one_orchestration_and_one_result(env: WorkflowEnv) -> None:
    message = {**request_body(name="Queued Community"), "requestId": "item-2"}
    send(env, message)
    send(env, message)
    settle(env)
    send(env, {**message, "owners": message["owners"] * 2})  # same request, written differently
    settle(env)
    instance_id = instance_id_for_key("item-2", "queue")
    assert [instance["instanceId"] for instance in env.request_instances()] == [instance_id]
    assert results(env) == []  # nothing written for the duplicates

    final = env.host.run_until_status(instance_id)
    assert final["runtimeStatus"] == "Completed"
    settle(env)
    [result] = results(env)
    assert result["status"] == "Succeeded"
    assert result["requestId"] == "item-2"
    assert len(env.graph_calls(route="create")) == 1


def test_request_id_reused_with_other_content_is_rejected_and_the_original_goes_on(env: WorkflowEnv) -> None:
    send(env, {**request_body(name="Original"), "requestId": "item-3"})
    settle(env)
    send(env, {**request_body(name="Impostor"), "requestId": "item-3"})
    settle(env)
    [conflict] = results(env)
    assert conflict["status"] == "Rejected"
    assert conflict["error"]["code"] == "IdempotencyConflict"
    assert conflict["error"]["errors"][0]["field"] == "requestId"
    assert conflict["originalMessage"]["displayName"] == "Impostor"

    instance_id = instance_id_for_key("item-3", "queue")
    assert env.host.run_until_status(instance_id)["runtimeStatus"] == "Completed"
    settle(env)
    final = [document for document in results(env) if document["status"] != "Rejected"]
    assert [document["request"]["displayName"] for document in final] == ["Original"]


def test_a_batch_message_provisions_its_items_and_writes_one_result(env: WorkflowEnv) -> None:
    items = [request_body(name=f"Queued batch {index}") for index in range(3)]
    message = {"requestId": "batch-7", "items": items}
    send(env, message)
    send(env, message)  # a repeat starts nothing more
    settle(env)
    batch_id = batches.batch_id_for_key("batch-7", "queue")

    final = env.host.run_until_status(batch_id)
    assert final["runtimeStatus"] == "Completed"
    settle(env)
    [result] = results(env)  # one message for the whole batch; its items write none of their own
    assert result["id"] == batch_id
    assert result["requestId"] == "batch-7"
    assert result["status"] == "Succeeded"
    assert result["counts"]["Succeeded"] == 3
    assert len(env.sim.communities()) == 3


def test_an_invalid_batch_message_is_rejected_naming_the_item_and_starts_nothing(env: WorkflowEnv) -> None:
    items = [request_body(name="Fine"), {**request_body(name="Bad"), "privacy": "secret"}]
    send(env, {"items": items})  # and no requestId
    settle(env)
    [rejected] = results(env)
    assert rejected["status"] == "Rejected"
    fields = [error["field"] for error in rejected["error"]["errors"]]
    assert fields == ["requestId", "items[1].privacy"]
    assert env.host.engine.query() == []
