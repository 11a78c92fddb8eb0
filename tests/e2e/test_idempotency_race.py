"""One idempotency key, two requests at the same moment: one orchestration, and the other caller told so.

On Azure Storage both starts can succeed (the extension checks the instance, then writes it; the first write
runs and the other start is discarded), so the app reads the instance back after its start. The dev host
does the same; `engine.start_hook` holds the first start between its duplicate check and its instance write
until the other request has been answered, so the race happens on every run (`start_hook` sees both starts).
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from devhost.testing import HoldFirstStart
from provisioning.idempotency import body_hash, instance_id_for_key, is_request_id
from provisioning.models import ORCHESTRATOR_NAME, ProvisioningInput, validate_request
from tests.e2e.workflow_env import QueueEnv, WorkflowEnv, request_body


def post_together(env: WorkflowEnv, bodies: list[dict[str, Any]], key: str) -> list[requests.Response]:
    """POST every body with one Idempotency-Key from its own thread, all released at once."""
    hold = HoldFirstStart(is_request_id)
    env.host.engine.start_hook = hold
    barrier = threading.Barrier(len(bodies))

    def post(body: dict[str, Any]) -> requests.Response:
        barrier.wait(timeout=10)
        try:
            return env.post(body, {"Idempotency-Key": key})
        finally:
            hold.release.set()  # an answered request lets the held start go on

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        responses = list(pool.map(post, bodies))
    env.host.engine.start_hook = None
    assert hold.calls == len(bodies), "not every request reached start_new: no race"
    return responses


def test_different_bodies_with_one_key_at_once_start_one_request_and_409_the_other(env: WorkflowEnv) -> None:
    bodies = [request_body(name="Alpha Community"), request_body(name="Beta Community")]

    responses = post_together(env, bodies, "race-key")

    assert sorted(response.status_code for response in responses) == [202, 409], [r.text for r in responses]
    [(won_body, accepted)] = [(b, r) for b, r in zip(bodies, responses, strict=True) if r.status_code == 202]
    [conflict] = [r for r in responses if r.status_code == 409]
    assert conflict.json()["code"] == "IdempotencyConflict"
    assert conflict.json()["instance"] == accepted.headers["Location"]
    assert accepted.json()["id"] == instance_id_for_key("race-key")

    env.host.run_until_idle()
    assert len(env.request_instances()) == 1
    final, _ = env.follow(accepted)
    assert final.status_code == 200, final.text
    assert final.json()["request"]["displayName"] == won_body["displayName"]
    assert [community["displayName"] for community in env.sim.communities()] == [won_body["displayName"]]
    assert len(env.graph_calls(route="create")) == 1


def test_one_body_twice_with_one_key_at_once_is_one_request_and_two_202(env: WorkflowEnv) -> None:
    body = request_body(name="Twin Community")

    first, second = post_together(env, [body, body], "twin-key")

    assert (first.status_code, second.status_code) == (202, 202), [first.text, second.text]
    assert first.json() == second.json()
    assert first.headers["Location"] == second.headers["Location"]
    env.host.run_until_idle()
    assert len(env.request_instances()) == 1
    final, _ = env.follow(first)
    assert final.status_code == 200, final.text
    assert len(env.sim.communities()) == 1
    assert len(env.graph_calls(route="create")) == 1


@pytest.mark.azurite
def test_queue_message_whose_start_loses_to_another_worker_is_rejected_as_conflict(queues: QueueEnv) -> None:
    env = queues.env
    hold = HoldFirstStart(is_request_id)
    env.host.engine.start_hook = hold
    queues.requests_queue.send_message(
        json.dumps({**request_body(name="Queue Alpha"), "requestId": "race-1"})
    )
    assert hold.held.wait(20), "the queue intake never reached start_new"

    # A second worker took a message with the same requestId and other content at the same moment: its
    # durable client posts that request's start to the extension (the dev host runs one queue message at a
    # time, so the test plays that worker).
    other = validate_request(
        json.dumps({**request_body(name="Queue Beta"), "requestId": "race-1"}).encode(), source="queue"
    )
    instance_id = instance_id_for_key("race-1", "queue")
    other_input = ProvisioningInput(
        request_id=instance_id,
        source="queue",
        request=other.spec(),
        callback_url=None,
        created_at="2026-01-01T00:00:00Z",
        body_hash=body_hash(other),
        idempotency_key="race-1",
    )
    started = requests.post(
        f"{env.host.base_url}/runtime/webhooks/durabletask/orchestrators/{ORCHESTRATOR_NAME}/{instance_id}",
        params={"code": env.host.system_key},
        json=json.dumps(other_input.to_json()),  # the Python client posts the input's JSON as a JSON string
        timeout=20,
    )
    assert started.status_code == 202, started.text
    hold.release.set()
    env.host.wait_for_queues_idle(timeout=20)
    env.host.engine.start_hook = None
    assert hold.calls == 2

    [rejected] = queues.results()
    assert rejected["status"] == "Rejected"
    assert rejected["error"]["code"] == "IdempotencyConflict"
    assert rejected["originalMessage"]["displayName"] == "Queue Alpha"
    assert len(env.request_instances()) == 1
    assert env.host.run_until_status(instance_id)["runtimeStatus"] == "Completed"
    assert [community["displayName"] for community in env.sim.communities()] == ["Queue Beta"]
