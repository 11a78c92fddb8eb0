"""Queue intake when the host runs a batch of messages at once (as the queue extension does).

The messages are on the queue before the host starts, so its first receive takes them all and runs them
concurrently. Every `DurableOrchestrationClient.start_new` waits until all of them are inside it, which makes
the race between the copies of one request deterministic instead of a matter of timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import azure.durable_functions as df
import pytest
from azure.storage.queue import QueueClient

from provisioning.idempotency import instance_id_for_key
from tests.e2e.workflow_env import WorkflowEnv, queue, request_body

pytestmark = pytest.mark.azurite

MESSAGES = 4


class StartGate:
    """Holds each `start_new` call until `parties` calls are inside at once (or `timeout` passed)."""

    def __init__(self, parties: int, timeout: float = 10.0) -> None:
        self.parties = parties
        self.timeout = timeout
        self.inside = 0
        self.peak = 0
        self._all_inside: asyncio.Event | None = None  # made on the worker's event loop, where calls run

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = df.DurableOrchestrationClient.start_new

        async def start_new(client: df.DurableOrchestrationClient, *args: Any, **kwargs: Any) -> str:
            if self._all_inside is None:
                self._all_inside = asyncio.Event()
            self.inside += 1
            self.peak = max(self.peak, self.inside)
            if self.inside >= self.parties:
                self._all_inside.set()
            try:
                with contextlib.suppress(TimeoutError):  # too few arrived: go on, `peak` tells the test
                    await asyncio.wait_for(self._all_inside.wait(), self.timeout)
                return await original(client, *args, **kwargs)
            finally:
                self.inside -= 1

        monkeypatch.setattr(df.DurableOrchestrationClient, "start_new", start_new)


def _queues(azurite: Any) -> tuple[dict[str, str], QueueClient, QueueClient]:
    suffix = uuid.uuid4().hex[:8]
    names = {"PROVISIONING_QUEUE": f"requests-{suffix}", "RESULTS_QUEUE": f"results-{suffix}"}
    requests_queue = queue(azurite.connection_string, names["PROVISIONING_QUEUE"])
    results_queue = queue(azurite.connection_string, names["RESULTS_QUEUE"])
    return names, requests_queue, results_queue


def _peek(client: QueueClient) -> list[Any]:
    return [json.loads(message.content) for message in client.peek_messages(max_messages=32)]


def _poison(azurite: Any, names: dict[str, str]) -> list[Any]:
    return _peek(queue(azurite.connection_string, names["PROVISIONING_QUEUE"] + "-poison"))


def _settle(env: WorkflowEnv) -> None:
    env.host.wait_for_queues_idle(timeout=20)
    env.host.run_until_idle()


def test_copies_of_one_request_in_one_batch_start_one_orchestration_and_one_result(
    start_env: Callable[..., WorkflowEnv], azurite: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    names, requests_queue, results_queue = _queues(azurite)
    message = json.dumps({**request_body(name="Batched Community"), "requestId": "batch-1"})
    for _ in range(MESSAGES):
        requests_queue.send_message(message)
    gate = StartGate(MESSAGES)
    gate.install(monkeypatch)

    env = start_env(settings=names)
    _settle(env)

    assert gate.peak == MESSAGES  # every copy was trying to start at the same time
    instance_id = instance_id_for_key("batch-1", "queue")
    assert [instance["instanceId"] for instance in env.request_instances()] == [instance_id]
    assert _peek(results_queue) == []  # the copies write nothing; the request reports once, when done
    assert env.host.run_until_status(instance_id)["runtimeStatus"] == "Completed"
    _settle(env)
    [result] = _peek(results_queue)
    assert (result["status"], result["requestId"]) == ("Succeeded", "batch-1")
    assert len(env.graph_calls(route="create")) == 1
    assert _poison(azurite, names) == []


def test_different_requests_in_one_batch_all_run(
    start_env: Callable[..., WorkflowEnv], azurite: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    names, requests_queue, results_queue = _queues(azurite)
    request_ids = [f"batch-{number}" for number in range(MESSAGES)]
    for request_id in request_ids:
        body = {**request_body(name=f"Community {request_id}"), "requestId": request_id}
        requests_queue.send_message(json.dumps(body))
    gate = StartGate(MESSAGES)
    gate.install(monkeypatch)

    env = start_env(settings=names)
    _settle(env)

    assert gate.peak == MESSAGES
    instance_ids = {instance_id_for_key(request_id, "queue") for request_id in request_ids}
    assert {instance["instanceId"] for instance in env.request_instances()} == instance_ids
    for instance_id in instance_ids:
        assert env.host.run_until_status(instance_id)["runtimeStatus"] == "Completed"
    _settle(env)
    results = _peek(results_queue)
    assert sorted(result["requestId"] for result in results) == request_ids
    assert {result["status"] for result in results} == {"Succeeded"}
    assert len(env.graph_calls(route="create")) == MESSAGES
    assert _poison(azurite, names) == []
