"""End to end: how the caller learns the outcome (callback POST, results queue) and what cancel stops."""

from __future__ import annotations

import json

import requests

from provisioning.idempotency import instance_id_for_key
from tests.e2e.workflow_env import (
    MEMBER,
    POLL_INTERVAL,
    CallbackReceiver,
    QueueEnv,
    WorkflowEnv,
    request_body,
)


def test_callback_receives_the_final_document_once(env: WorkflowEnv) -> None:
    with CallbackReceiver() as receiver:
        final, bodies = env.provision(request_body(callbackUrl=receiver.url, members=[MEMBER["id"]]))
        env.host.run_until_status(final.json()["id"])
        done = requests.get(final.url, timeout=30)

    assert final.status_code == 200, final.text
    document = done.json()
    assert document["callback"] == "delivered"
    progress = [body for body in bodies if body and body.get("phase") and body["status"] == "Running"]
    assert progress
    assert all(body["callback"] == "pending" for body in progress)
    [posted] = receiver.bodies
    assert posted["status"] == "Succeeded"
    assert posted["phase"] == "done"
    assert posted["callback"] == "pending"  # delivery was under way when it was sent
    same_fields = ("id", "status", "createdAt", "request", "community", "members", "operation")
    assert {key: posted.get(key) for key in same_fields} == {key: document.get(key) for key in same_fields}
    # The callback URL (a secret) is never echoed.
    assert "top-secret" not in json.dumps(posted)
    assert "top-secret" not in final.text


def test_failing_callback_is_retried_then_recorded_without_changing_the_outcome(env: WorkflowEnv) -> None:
    with CallbackReceiver(status=500) as receiver:
        final, _ = env.provision(request_body(callbackUrl=receiver.url))

        # The outcome is settled before the callback retries end: pollers get it at once.
        assert final.status_code == 200, final.text
        assert final.json()["status"] == "Succeeded"
        assert final.json()["callback"] == "pending"
        env.host.run_until_status(final.json()["id"])
        done = requests.get(final.url, timeout=30)

    assert done.status_code == 200
    document = done.json()
    assert document["status"] == "Succeeded"
    assert document["phase"] == "done"
    assert document["callback"] == "failed"
    assert len(receiver.bodies) == 5  # first attempt + 4 retries with backoff
    assert "error" not in document


def test_callback_for_a_failed_request_carries_the_error(env: WorkflowEnv) -> None:
    env.sim.set_scenario("operation-failed", status_detail="Policy violation")
    with CallbackReceiver() as receiver:
        final, _ = env.provision(request_body(callbackUrl=receiver.url))

        env.host.run_until_status(final.json()["id"])
        done = requests.get(final.url, timeout=30)

    assert final.status_code == 422
    [posted] = receiver.bodies
    assert posted["status"] == "Failed"
    assert posted["error"]["code"] == "OperationFailed"
    assert done.json()["callback"] == "delivered"


def test_cancel_stops_the_workflow(env: WorkflowEnv) -> None:
    with CallbackReceiver() as receiver:
        started = env.post(request_body(callbackUrl=receiver.url))
        assert started.status_code == 202
        status_url = started.headers["Location"]
        env.host.advance(POLL_INTERVAL + 1)  # created, one status check made
        checks_before = len(env.graph_calls("operation"))
        assert checks_before == 1

        canceled = requests.delete(status_url, timeout=30)
        assert canceled.status_code < 300, canceled.text
        env.host.advance(10 * POLL_INTERVAL)

        final = requests.get(status_url, timeout=30)
        assert final.status_code == 409
        assert final.json()["status"] == "Canceled"
        assert final.json()["error"]["code"] == "Canceled"
        assert len(env.graph_calls("operation")) == checks_before  # no more Graph calls after cancel
        # The caller waiting for the callback gets one, with the Canceled document.
        [posted] = receiver.bodies
        assert posted["status"] == "Canceled"
        assert posted["error"]["code"] == "Canceled"
        assert final.json()["callback"] == "delivered"


def test_queue_request_ends_in_exactly_one_result_message(queues: QueueEnv) -> None:
    env = queues.env
    queues.send("item-1")
    instance_id = instance_id_for_key("item-1", "queue")
    status = env.host.run_until_status(instance_id)
    assert status["runtimeStatus"] == "Completed"

    [document] = queues.results()
    assert document["status"] == "Succeeded"
    assert document["requestId"] == "item-1"
    assert document["id"] == instance_id
    assert document["community"]["id"] == env.sim.communities()[0]["id"]


def test_failed_queue_request_with_callback_gets_both_channels_once(queues: QueueEnv) -> None:
    env = queues.env
    with CallbackReceiver() as receiver:
        env.sim.set_scenario("operation-skipped")
        queues.send("item-1", callbackUrl=receiver.url)
        env.host.run_until_status(instance_id_for_key("item-1", "queue"))

    [result] = queues.results()
    assert result["status"] == "Failed"
    assert result["error"]["code"] == "OperationFailed"
    assert result["callback"] == "delivered"
    [posted] = receiver.bodies
    assert posted["status"] == "Failed"
    assert posted["id"] == result["id"]
