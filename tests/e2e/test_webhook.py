"""Power Automate's HTTP Webhook action, played against the dev host and the Graph simulator.

The action subscribes by POSTing the request with ``callbackUrl`` = ``listCallbackUrl()`` and then waits for
one POST to that URL. Here a loopback receiver stands in for the callback URL (``CALLBACK_ALLOW_LOOPBACK``),
and virtual time runs the workflow to its end and well beyond, so a late or repeated callback would show.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from tests.e2e.workflow_env import MEMBER, CallbackReceiver, WorkflowEnv, request_body

AFTER_THE_END_SECONDS = 6 * 3600


def subscribe(
    env: WorkflowEnv, receiver: CallbackReceiver, run_name: str, **fields: Any
) -> requests.Response:
    """The action's subscribe call: the request plus the callback URL, keyed by the flow run."""
    response = env.post(request_body(callbackUrl=receiver.url, **fields), {"Idempotency-Key": run_name})
    assert response.status_code == 202, response.text
    return response


def assert_no_secrets(env: WorkflowEnv, receiver: CallbackReceiver, body: dict[str, Any]) -> None:
    text = json.dumps(body)
    assert "callbackUrl" not in text
    assert "top-secret" not in text
    assert receiver.url.split("/workflows")[0] not in text
    assert env.sim.identity_header not in text
    assert "Bearer" not in text
    assert "engagementAsyncOperations" not in text  # Graph's operation URL stays inside


def final_status(subscribed: requests.Response) -> requests.Response:
    return requests.get(subscribed.headers["Location"], timeout=30)


def test_webhook_gets_exactly_one_callback_with_the_succeeded_document(env: WorkflowEnv) -> None:
    with CallbackReceiver() as receiver:
        subscribed = subscribe(env, receiver, "flow-run-ok", members=[MEMBER["userPrincipalName"]])
        request_id = subscribed.json()["id"]
        env.host.run_until_idle()
        assert receiver.bodies == [], "no callback before the request has finished"
        # Power Automate retries a subscribe call that timed out: the same key starts nothing new.
        again = subscribe(env, receiver, "flow-run-ok", members=[MEMBER["userPrincipalName"]])
        assert again.json()["id"] == request_id

        assert env.host.run_until_status(request_id)["runtimeStatus"] == "Completed"
        env.host.advance(AFTER_THE_END_SECONDS)

        assert len(receiver.bodies) == 1
        body = receiver.bodies[0]
        assert body["id"] == request_id
        assert body["status"] == "Succeeded"
        assert body["phase"] == "done"
        assert body["community"]["displayName"] == "Contoso Engineering"
        assert body["community"]["groupId"]
        assert body["members"]["added"] == [MEMBER["id"]]  # object ids: a UPN is personal data
        assert_no_secrets(env, receiver, body)

        status = final_status(subscribed)
        assert status.status_code == 200
        document = status.json()
        assert document["callback"] == "delivered"
        # The callback carries the final document; only the delivery state was recorded after it was sent.
        assert {key: value for key, value in body.items() if key != "callback"} == {
            key: value for key, value in document.items() if key != "callback"
        }


def test_webhook_gets_exactly_one_callback_with_the_failed_document(env: WorkflowEnv) -> None:
    env.sim.set_scenario("operation-failed", status_detail="Quota exceeded")
    with CallbackReceiver() as receiver:
        subscribed = subscribe(env, receiver, "flow-run-failed")
        request_id = subscribed.json()["id"]
        assert env.host.run_until_status(request_id)["runtimeStatus"] == "Completed"
        env.host.advance(AFTER_THE_END_SECONDS)

        assert len(receiver.bodies) == 1
        body = receiver.bodies[0]
        assert body["id"] == request_id
        assert body["status"] == "Failed"
        assert body["error"]["code"] == "OperationFailed"
        assert "community" not in body
        assert_no_secrets(env, receiver, body)

        status = final_status(subscribed)
        assert status.status_code == 422
        assert status.json()["status"] == "Failed"
        assert status.json()["callback"] == "delivered"


def test_webhook_gets_exactly_one_callback_with_the_canceled_document(env: WorkflowEnv) -> None:
    with CallbackReceiver() as receiver:
        subscribed = subscribe(env, receiver, "flow-run-canceled")
        env.host.run_until_idle()
        canceled = requests.delete(subscribed.headers["Location"], timeout=30)
        assert canceled.status_code in (200, 202)
        env.host.advance(AFTER_THE_END_SECONDS)

        # The waiting action is released by the Canceled document instead of timing out.
        assert len(receiver.bodies) == 1
        body = receiver.bodies[0]
        assert body["id"] == subscribed.json()["id"]
        assert body["status"] == "Canceled"
        assert body["phase"] == "done"
        assert body["error"]["code"] == "Canceled"
        assert_no_secrets(env, receiver, body)

        status = final_status(subscribed)
        assert status.status_code == 409
        assert status.json()["status"] == "Canceled"
        assert status.json()["callback"] == "delivered"
