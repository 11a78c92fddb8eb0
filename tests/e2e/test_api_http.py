"""The HTTP API over real HTTP: validation, limits, idempotency under concurrency, status URLs, 404, cancel.

The app runs in the dev host against the Graph simulator on one manual clock: an accepted request stays
Running (waiting on a durable timer) until a test advances virtual time, which makes "what is running now"
observable without sleeping.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from devhost.host import HOST_KEYS_SETTING
from devhost.testing import DevHost
from provisioning.idempotency import instance_id_for_key
from tests.e2e.workflow_env import OWNER, WorkflowEnv, request_body, workflow_env

JSON = {"Content-Type": "application/json"}


def post_raw(env: WorkflowEnv, data: bytes, headers: dict[str, str], query: str = "") -> requests.Response:
    return requests.post(f"{env.api}/communities{query}", data=data, headers=headers, timeout=30)


def instances(env: WorkflowEnv) -> list[dict[str, Any]]:
    return env.request_instances()


def creates(env: WorkflowEnv) -> list[dict[str, Any]]:
    return env.graph_calls(route="create")


def assert_nothing_started(env: WorkflowEnv) -> None:
    env.host.run_until_idle()
    assert instances(env) == []
    assert env.graph_calls() == []


def assert_problem(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["title"]
    assert body["type"].endswith(code)
    return body


# ------------------------------------------------------------------------------------------------ validation


def test_invalid_body_is_400_naming_every_field_and_starts_nothing(env: WorkflowEnv) -> None:
    body = {"displayName": "  ", "owners": [OWNER["id"], "bob"], "privacy": "secret", "colour": "red"}
    problem = assert_problem(env.post(body), 400, "ValidationFailed")
    assert sorted(error["field"] for error in problem["errors"]) == [
        "colour",
        "displayName",
        "owners[1]",
        "privacy",
    ]
    assert "owners[1]" in problem["detail"]
    assert_nothing_started(env)


def test_wrong_types_and_non_object_bodies_are_400(env: WorkflowEnv) -> None:
    problem = assert_problem(
        env.post({"displayName": 5, "owners": {"id": OWNER["id"]}}), 400, "ValidationFailed"
    )
    assert {error["field"]: error["message"] for error in problem["errors"]} == {
        "displayName": "must be a string",
        "owners": "must be an array of strings or one string of users separated by ; or ,",
    }
    assert_problem(post_raw(env, b"[1]", JSON), 400, "ValidationFailed")
    assert_problem(post_raw(env, b"{broken", JSON), 400, "ValidationFailed")
    assert_nothing_started(env)


def test_body_over_64_kib_is_413_and_starts_nothing(env: WorkflowEnv) -> None:
    body = request_body(description="x" * (64 * 1024))
    problem = assert_problem(env.post(body), 413, "PayloadTooLarge")
    assert problem["errors"][0]["field"] == "body"
    assert_nothing_started(env)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_non_json_content_type_is_415_and_starts_nothing(env: WorkflowEnv, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = post_raw(env, json.dumps(request_body()).encode(), headers)
    assert_problem(response, 415, "UnsupportedMediaType")
    assert_nothing_started(env)


def test_callback_url_outside_the_policy_is_400(env: WorkflowEnv) -> None:
    response = env.post(request_body(callbackUrl="https://attacker.example/hook?sig=SECRET"))
    problem = assert_problem(response, 400, "ValidationFailed")
    assert problem["errors"][0]["field"] == "callbackUrl"
    assert "SECRET" not in response.text
    assert_nothing_started(env)


# ------------------------------------------------------------------------------------------ accepted answer


def test_accepted_answer_and_running_status(env: WorkflowEnv) -> None:
    response = env.post(request_body())
    assert response.status_code == 202, response.text
    body = response.json()
    request_id = body["id"]
    location = response.headers["Location"]
    assert location == f"{env.api}/communities/requests/{request_id}"
    assert body == {"id": request_id, "status": "Running", "statusUri": location}
    assert response.headers["Retry-After"] == "30"

    env.host.run_until_idle()
    status = requests.get(location, timeout=30)
    assert status.status_code == 202
    assert status.headers["Location"] == location
    assert 1 <= int(status.headers["Retry-After"]) <= 30
    document = status.json()
    assert document["id"] == request_id
    assert document["status"] == "Running"
    assert document["request"]["displayName"] == "Contoso Engineering"
    assert document["phase"] == "waiting-for-graph"
    assert document["operation"]["checks"] == 0


def test_code_query_key_is_carried_into_location_but_header_keys_are_never_echoed(env: WorkflowEnv) -> None:
    data = json.dumps(request_body()).encode()
    with_code = post_raw(env, data, JSON, query="?code=abc%2Bdef%3D%3D")
    assert with_code.status_code == 202
    location = with_code.headers["Location"]
    assert location.endswith("?code=abc%2Bdef%3D%3D")
    assert with_code.json()["statusUri"] == location
    assert requests.get(location, timeout=30).headers["Location"] == location

    with_header = post_raw(env, data, {**JSON, "x-functions-key": "HEADER-KEY-123"})
    assert with_header.status_code == 202
    assert "?" not in with_header.headers["Location"]
    status = requests.get(
        with_header.headers["Location"], headers={"x-functions-key": "HEADER-KEY-123"}, timeout=30
    )
    for response in (with_header, status):
        assert "HEADER-KEY-123" not in response.text
        assert "HEADER-KEY-123" not in json.dumps(dict(response.headers))


def test_with_enforced_keys_the_location_authorises_itself_with_the_code_key(
    devhost_factory: Callable[..., DevHost], monkeypatch: pytest.MonkeyPatch, azurite: Any
) -> None:
    def keyed_factory(**kwargs: Any) -> DevHost:
        return devhost_factory(enforce_keys=True, **kwargs)

    key = "host-key-1"  # a host key: the status function must accept the code the start call carried
    with workflow_env(
        keyed_factory, monkeypatch, azurite.connection_string, settings={HOST_KEYS_SETTING: key}
    ) as env:
        data = json.dumps(request_body()).encode()
        assert post_raw(env, data, JSON).status_code == 401
        started = post_raw(env, data, JSON, query=f"?code={key}")
        assert started.status_code == 202, started.text
        # Power Automate follows Location as-is, without adding anything.
        final, _ = env.follow(started)
        assert final.status_code == 200
        assert final.json()["status"] == "Succeeded"

        other = json.dumps(request_body(name="Second Community")).encode()
        by_header = post_raw(env, other, {**JSON, "x-functions-key": key})
        assert by_header.status_code == 202
        location = by_header.headers["Location"]
        assert key not in location
        assert key not in by_header.text
        assert requests.get(location, timeout=30).status_code == 401
        assert requests.get(location, headers={"x-functions-key": key}, timeout=30).status_code == 202


def test_status_never_echoes_the_callback_url(env: WorkflowEnv) -> None:
    callback = "http://127.0.0.1:9/workflows/run?sig=TOP-SECRET-SIG"
    response = env.post(request_body(callbackUrl=callback))
    assert response.status_code == 202
    assert "TOP-SECRET" not in response.text
    env.host.run_until_idle()
    status = requests.get(response.headers["Location"], timeout=30)
    assert status.json()["callback"] == "pending"
    assert "TOP-SECRET" not in status.text
    assert "127.0.0.1:9" not in status.text


# -------------------------------------------------------------------------------------------- idempotency


def test_same_key_same_body_returns_the_same_request_and_starts_nothing(env: WorkflowEnv) -> None:
    first = env.post(request_body(), {"Idempotency-Key": "run-1"})
    assert first.status_code == 202
    assert first.json()["id"] == instance_id_for_key("run-1")
    env.host.run_until_idle()
    # Re-serialised differently (key order, spaces, duplicate owner): still the same request.
    again = request_body(displayName="  Contoso Engineering ", owners=[OWNER["userPrincipalName"]] * 2)
    second = env.post(dict(reversed(list(again.items()))), {"Idempotency-Key": "run-1"})
    assert second.status_code == 202
    assert second.json() == first.json()
    assert second.headers["Location"] == first.headers["Location"]
    env.host.run_until_idle()
    assert len(instances(env)) == 1
    assert len(creates(env)) == 1


def test_same_key_different_body_is_409_and_leaves_the_first_request_alone(env: WorkflowEnv) -> None:
    first = env.post(request_body(), {"Idempotency-Key": "run-2"})
    assert first.status_code == 202
    conflict = env.post(request_body(privacy="public"), {"Idempotency-Key": "run-2"})
    problem = assert_problem(conflict, 409, "IdempotencyConflict")
    assert problem["instance"] == first.headers["Location"]
    env.host.run_until_idle()
    assert len(instances(env)) == 1
    final, _ = env.follow(first)
    assert final.status_code == 200
    assert final.json()["request"]["privacy"] == "private"


def test_ten_concurrent_identical_starts_start_exactly_one_orchestration(env: WorkflowEnv) -> None:
    body = request_body(name="Concurrent Community")

    def start(_: int) -> requests.Response:
        return env.post(body, {"Idempotency-Key": "concurrent-key"})

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(start, range(10)))
    assert [response.status_code for response in responses] == [202] * 10, [r.text for r in responses]
    assert {response.json()["id"] for response in responses} == {instance_id_for_key("concurrent-key")}
    assert len({response.headers["Location"] for response in responses}) == 1
    env.host.run_until_idle()
    assert len(instances(env)) == 1
    assert len(creates(env)) == 1
    final, _ = env.follow(responses[0])
    assert final.status_code == 200
    assert len(env.sim.communities()) == 1
    assert len(creates(env)) == 1


def test_same_key_after_the_request_finished_returns_its_outcome_and_never_reruns(env: WorkflowEnv) -> None:
    first = env.post(request_body(), {"Idempotency-Key": "run-3"})
    final, _ = env.follow(first)
    assert final.status_code == 200
    graph_calls_before = len(env.graph_calls())
    repeat = env.post(request_body(), {"Idempotency-Key": "run-3"})
    assert repeat.status_code == 200
    assert repeat.json() == final.json()
    env.host.run_until_idle()
    assert len(env.graph_calls()) == graph_calls_before
    assert len(env.sim.communities()) == 1
    assert (env.host.status(first.json()["id"]) or {}).get("runtimeStatus") == "Completed"


def test_without_a_key_every_post_is_a_new_request(env: WorkflowEnv) -> None:
    first = env.post(request_body(name="One"))
    second = env.post(request_body(name="Two"))
    assert first.json()["id"] != second.json()["id"]
    env.host.run_until_idle()
    assert len(instances(env)) == 2


def test_invalid_idempotency_key_is_400(env: WorkflowEnv) -> None:
    problem = assert_problem(
        env.post(request_body(), {"Idempotency-Key": "x" * 300}), 400, "ValidationFailed"
    )
    assert problem["errors"][0]["field"] == "Idempotency-Key"
    assert_nothing_started(env)


# ------------------------------------------------------------------------------------------- 404 and cancel


@pytest.mark.parametrize("request_id", ["req-" + "0" * 32, "not-a-request-id", "req-abc"])
def test_unknown_request_is_404_for_get_and_delete(env: WorkflowEnv, request_id: str) -> None:
    for method in ("GET", "DELETE"):
        response = requests.request(method, f"{env.api}/communities/requests/{request_id}", timeout=30)
        assert_problem(response, 404, "NotFound")


def test_cancel_running_request_then_status_is_canceled_409(env: WorkflowEnv) -> None:
    started = env.post(request_body(members=[OWNER["id"]]))
    assert started.status_code == 202
    env.host.run_until_idle()
    location = started.headers["Location"]
    canceled = requests.delete(location, timeout=30)
    if canceled.status_code == 202:  # the cancel event is still queued: it is processed by the engine
        env.host.run_until_idle()
    else:
        assert canceled.status_code == 200, canceled.text
        assert canceled.json()["status"] == "Canceled"
    status = requests.get(location, timeout=30)
    assert status.status_code == 409
    document = status.json()
    assert document["status"] == "Canceled"
    assert document["error"]["code"] == "Canceled"
    assert "Graph" in document["error"]["message"]
    # The orchestrator ended the request itself (no termination); the progress reached is kept.
    assert document["phase"] == "done"
    assert document["operation"]["checks"] == 0
    assert "Location" not in status.headers
    assert (env.host.status(started.json()["id"]) or {}).get("runtimeStatus") == "Completed"
    # Nothing more happens for a canceled request, however much time passes.
    calls = len(env.graph_calls())
    env.host.advance(600)
    assert len(env.graph_calls()) == calls

    again = requests.delete(location, timeout=30)
    body = assert_problem(again, 409, "NotCancelable")
    assert body["requestStatus"] == "Canceled"


def test_cancel_of_a_finished_request_is_409(env: WorkflowEnv) -> None:
    final, _ = env.provision(request_body())
    assert final.status_code == 200
    response = requests.delete(f"{env.api}/communities/requests/{final.json()['id']}", timeout=30)
    body = assert_problem(response, 409, "NotCancelable")
    assert body["requestStatus"] == "Succeeded"
    assert requests.get(f"{env.api}/communities/requests/{final.json()['id']}", timeout=30).status_code == 200
