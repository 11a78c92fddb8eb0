"""Power Automate's HTTP Webhook action, played against the dev host and the Graph simulator.

The action subscribes by POSTing the request with ``callbackUrl`` = ``listCallbackUrl()`` and then waits for
one POST to that URL; it unsubscribes when the run is canceled, when it times out and after the callback.
Here a loopback receiver stands in for the callback URL (``CALLBACK_ALLOW_LOOPBACK``), and virtual time runs
the workflow to its end and well beyond, so a late or repeated callback would show. The first tests send the
callback URL with a plain ``POST /api/communities``; the later ones play the recipe's subscribe and
unsubscribe routes (``triggers/webhook_api.py``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
import requests

from devhost.host import HOST_KEYS_SETTING
from devhost.testing import DevHost
from provisioning.idempotency import instance_id_for_key, is_request_id
from tests.e2e.workflow_env import (
    MEMBER,
    POLL_INTERVAL,
    CallbackReceiver,
    WorkflowEnv,
    request_body,
    workflow_env,
)
from triggers.webhook_api import subscription_request_id

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
        # The callback carries the final document; only the delivery state and the timeline's last entry (the
        # request done, once the delivery ended) were recorded after it was sent.
        assert {key: value for key, value in body.items() if key not in ("callback", "timeline")} == {
            key: value for key, value in document.items() if key not in ("callback", "timeline")
        }
        assert document["timeline"][:-1] == body["timeline"]
        assert document["timeline"][-1]["event"] == "phase"
        assert document["timeline"][-1]["phase"] == "done"


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


# ------------------------------------------------------------------------------- subscribe and unsubscribe
# The recipe's HTTP Webhook action: subscribe to POST /api/communities/subscriptions, unsubscribe (run
# canceled, action timed out, or after the callback) with POST .../unsubscribe and {"callbackUrl": ...}.


def subscriptions(env: WorkflowEnv) -> str:
    return f"{env.api}/communities/subscriptions"


def subscribe_hook(env: WorkflowEnv, callback_url: str, **fields: Any) -> requests.Response:
    return requests.post(
        subscriptions(env), json=request_body(callbackUrl=callback_url, **fields), timeout=30
    )


def unsubscribe(env: WorkflowEnv, callback_url: str) -> requests.Response:
    return requests.post(f"{subscriptions(env)}/unsubscribe", json={"callbackUrl": callback_url}, timeout=30)


def status_of(subscribed: requests.Response) -> requests.Response:
    return requests.get(subscribed.json()["statusUri"], timeout=30)


def test_subscribe_answers_202_without_location_and_starts_once(env: WorkflowEnv) -> None:
    with CallbackReceiver() as receiver:
        subscribed = subscribe_hook(env, receiver.url, name="Webhook Subscribed")
        assert subscribed.status_code == 202, subscribed.text
        # Nothing to follow: the subscribe step must not start polling; the action waits for the callback.
        assert "Location" not in subscribed.headers
        assert "Retry-After" not in subscribed.headers
        body = subscribed.json()
        assert body == {"id": body["id"], "status": "Running", "statusUri": body["statusUri"]}
        assert body["statusUri"].endswith(f"/api/communities/requests/{body['id']}")
        assert_no_secrets(env, receiver, body)

        # A subscribe call retried by the action's retry policy carries the same callback URL: same request.
        again = subscribe_hook(env, receiver.url, name="Webhook Subscribed")
        assert again.status_code == 202
        assert "Location" not in again.headers
        assert again.json()["id"] == body["id"]
        # The same URL with another body is another request's business: refused, nothing started.
        other = subscribe_hook(env, receiver.url, name="Something Else")
        assert other.status_code == 409
        assert other.json()["code"] == "IdempotencyConflict"
        assert [instance["instanceId"] for instance in env.request_instances()] == [body["id"]]

        assert env.host.run_until_status(body["id"])["runtimeStatus"] == "Completed"
        env.host.advance(AFTER_THE_END_SECONDS)
        assert [callback["status"] for callback in receiver.bodies] == ["Succeeded"]
        assert len(env.graph_calls(route="create")) == 1

        # Retried once more after the end: the outcome, as POST /api/communities answers a finished key.
        late = subscribe_hook(env, receiver.url, name="Webhook Subscribed")
        assert late.status_code == 200
        assert "Location" not in late.headers
        assert late.json()["status"] == "Succeeded"
        assert len(receiver.bodies) == 1


def test_subscribe_requires_a_callback_url_and_starts_nothing_without_one(env: WorkflowEnv) -> None:
    for body in (request_body(), request_body(callbackUrl=""), request_body(callbackUrl=None)):
        refused = requests.post(subscriptions(env), json=body, timeout=30)
        assert refused.status_code == 400, refused.text
        assert [error["field"] for error in refused.json()["errors"]] == ["callbackUrl"]
    outside = subscribe_hook(env, "https://attacker.example/hook?sig=SECRET")
    assert outside.status_code == 400
    assert "SECRET" not in outside.text
    env.host.run_until_idle()
    assert env.request_instances() == []


def test_unsubscribe_cancels_the_request_of_that_callback_url_and_no_other(env: WorkflowEnv) -> None:
    with CallbackReceiver() as canceled_run, CallbackReceiver() as other_run:
        doomed = subscribe_hook(env, canceled_run.url, name="Webhook Canceled")
        spared = subscribe_hook(env, other_run.url, name="Webhook Spared")
        assert doomed.status_code == spared.status_code == 202
        env.host.run_until_idle()

        # The flow run is canceled: Power Automate calls unsubscribe with listCallbackUrl() in the body.
        answer = unsubscribe(env, canceled_run.url)
        assert answer.status_code in (200, 202), answer.text
        assert "Location" not in answer.headers
        assert answer.json()["id"] == doomed.json()["id"]
        assert_no_secrets(env, canceled_run, answer.json())
        env.host.advance(AFTER_THE_END_SECONDS)

        assert [body["status"] for body in canceled_run.bodies] == ["Canceled"]
        assert canceled_run.bodies[0]["error"]["code"] == "Canceled"
        assert status_of(doomed).json()["status"] == "Canceled"
        # The other subscription ran to its end, with its one callback.
        assert [body["status"] for body in other_run.bodies] == ["Succeeded"]
        spared_status = status_of(spared)
        assert spared_status.status_code == 200
        assert spared_status.json()["community"]["displayName"] == "Webhook Spared"


def test_unsubscribe_with_an_unknown_callback_url_is_404_and_cancels_nothing(env: WorkflowEnv) -> None:
    with CallbackReceiver() as subscribed_run, CallbackReceiver() as posted_run:
        subscribed = subscribe_hook(env, subscribed_run.url, name="Webhook Unknown")
        # A request started by POST /api/communities with a callback URL is no subscription.
        posted = env.post(request_body(name="Posted With Callback", callbackUrl=posted_run.url))
        assert posted.status_code == 202
        env.host.run_until_idle()

        for unknown in (
            subscribed_run.url.replace("top-secret", "other-secret"),
            subscribed_run.url + "&x=1",
            posted_run.url,
        ):
            answer = unsubscribe(env, unknown)
            assert answer.status_code == 404, answer.text
            assert answer.json()["code"] == "NotFound"
            assert "secret" not in answer.text
        assert requests.post(
            f"{subscriptions(env)}/unsubscribe", json={"callbackUrl": ""}, timeout=30
        ).json()["errors"] == [{"field": "callbackUrl", "message": "must not be empty"}]

        env.host.advance(AFTER_THE_END_SECONDS)
        assert [body["status"] for body in subscribed_run.bodies] == ["Succeeded"]
        assert [body["status"] for body in posted_run.bodies] == ["Succeeded"]
        assert status_of(subscribed).json()["status"] == "Succeeded"


def test_unsubscribe_after_the_callback_is_harmless(env: WorkflowEnv) -> None:
    env.sim.set_scenario("operation-failed", status_detail="Quota exceeded")
    with CallbackReceiver() as receiver:
        subscribed = subscribe_hook(env, receiver.url, name="Webhook Finished")
        request_id = subscribed.json()["id"]
        assert env.host.run_until_status(request_id)["runtimeStatus"] == "Completed"
        env.host.advance(AFTER_THE_END_SECONDS)
        assert [body["status"] for body in receiver.bodies] == ["Failed"]

        # The action unsubscribes after its callback too (and may do it twice): nothing changes.
        for _ in range(2):
            answer = unsubscribe(env, receiver.url)
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "Failed"
            assert answer.json()["error"]["code"] == "OperationFailed"
        env.host.advance(AFTER_THE_END_SECONDS)
        assert len(receiver.bodies) == 1
        final = status_of(subscribed)
        assert final.status_code == 422
        assert final.json()["status"] == "Failed"
        assert final.json()["callback"] == "delivered"


def test_no_callback_url_in_any_answer_or_log_line(
    env: WorkflowEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with CallbackReceiver() as receiver, CallbackReceiver() as stranger:
        secret_parts = ("top-secret", receiver.url, receiver.url.split("?")[0], stranger.url.split("?")[0])
        answers = [subscribe_hook(env, receiver.url, name="Webhook Quiet")]
        answers.append(subscribe_hook(env, receiver.url, name="Webhook Quiet"))
        answers.append(subscribe_hook(env, receiver.url, name="Webhook Loud"))  # 409
        env.host.run_until_idle()
        answers.append(status_of(answers[0]))
        answers.append(unsubscribe(env, stranger.url))  # 404
        answers.append(unsubscribe(env, receiver.url))  # canceled
        env.host.advance(AFTER_THE_END_SECONDS)
        answers.append(unsubscribe(env, receiver.url))  # after the end
        answers.append(status_of(answers[0]))
        answers.append(requests.get(f"{env.api}/communities/requests", timeout=30))

    assert [answer.status_code for answer in answers] == [202, 202, 409, 202, 404, 200, 200, 409, 200]
    assert [body["status"] for body in receiver.bodies] == ["Canceled"]
    lines = [record.getMessage() + (record.exc_text or "") for record in caplog.records]
    assert any("unsubscribe" in line for line in lines)  # the capture saw the app's lines
    for part in secret_parts:
        for answer in answers:
            assert part not in answer.text
            assert part not in json.dumps(dict(answer.headers))
        for line in lines:
            assert part not in line


def test_subscribe_and_unsubscribe_need_a_key(
    devhost_factory: Callable[..., DevHost], monkeypatch: pytest.MonkeyPatch, azurite: Any
) -> None:
    def keyed_factory(**kwargs: Any) -> DevHost:
        return devhost_factory(enforce_keys=True, **kwargs)

    settings = {HOST_KEYS_SETTING: "flows-host-key"}
    with (
        workflow_env(keyed_factory, monkeypatch, azurite.connection_string, settings=settings) as env,
        CallbackReceiver() as receiver,
    ):
        body = request_body(callbackUrl=receiver.url)
        assert requests.post(subscriptions(env), json=body, timeout=30).status_code == 401
        keyed = f"{subscriptions(env)}?code=flows-host-key"
        subscribed = requests.post(keyed, json=body, timeout=30)
        assert subscribed.status_code == 202
        assert subscribed.json()["statusUri"].endswith("?code=flows-host-key")
        env.host.run_until_idle()

        without_key = unsubscribe(env, receiver.url)
        assert without_key.status_code == 401
        wrong_key = requests.post(
            f"{subscriptions(env)}/unsubscribe",
            json={"callbackUrl": receiver.url},
            headers={"x-functions-key": "not-the-key"},
            timeout=30,
        )
        assert wrong_key.status_code == 401
        env.host.advance(POLL_INTERVAL)
        assert status_of(subscribed).json()["status"] == "Running"  # not canceled by either call
        answer = requests.post(
            f"{subscriptions(env)}/unsubscribe",
            json={"callbackUrl": receiver.url},
            headers={"x-functions-key": "flows-host-key"},
            timeout=30,
        )
        assert answer.status_code in (200, 202)
        env.host.advance(AFTER_THE_END_SECONDS)
        assert [callback["status"] for callback in receiver.bodies] == ["Canceled"]


def test_subscription_ids_are_request_ids_that_show_nothing_of_the_url() -> None:
    url = "https://prod-1.westeurope.logic.azure.com/workflows/w/runs/r/actions/a/run?sig=S"
    request_id = subscription_request_id(url)
    assert is_request_id(request_id)
    assert request_id == subscription_request_id(url)
    # Another URL (another action run), or the URL as an Idempotency-Key or queue requestId: other ids.
    assert request_id != subscription_request_id(url.replace("sig=S", "sig=T"))
    assert request_id not in (instance_id_for_key(url, "http"), instance_id_for_key(url, "queue"))
    assert "sig" not in request_id
