"""Batches end to end: started over HTTP (JSON and CSV), followed like Power Automate, canceled, restarted;
against the Graph simulator, with Viva Engage's rate limit on where the app-wide budget is the point."""

from __future__ import annotations

import json
from typing import Any

import requests

from provisioning import batch_workflow as batches
from tests.e2e.workflow_env import OWNER, WorkflowEnv

JSON = {"Content-Type": "application/json"}
CSV = {"Content-Type": "text/csv; charset=utf-8"}


def items(count: int, prefix: str = "Batch community") -> list[dict[str, Any]]:
    return [
        {"displayName": f"{prefix} {index}", "owners": [OWNER["userPrincipalName"]], "privacy": "private"}
        for index in range(count)
    ]


def post_batch(env: WorkflowEnv, body: bytes, headers: dict[str, str], query: str = "") -> requests.Response:
    return requests.post(f"{env.api}/communities/batches{query}", data=body, headers=headers, timeout=30)


def test_a_json_batch_creates_every_community_within_the_rate_limit(env: WorkflowEnv) -> None:
    env.sim.set_scenario("rate-limit", limit=10, window=30)
    started = post_batch(env, json.dumps({"items": items(12)}).encode(), JSON)
    assert started.status_code == 202, started.text
    assert started.headers["Location"].endswith(f"/communities/batches/{started.json()['id']}")

    final, bodies = env.follow(started)

    assert final.status_code == 200, final.text
    document = final.json()
    assert document["status"] == "Succeeded"
    assert document["counts"]["Succeeded"] == 12
    assert document["progress"] == 100
    assert any("estimatedCompletionAt" in body for body in bodies if body)
    assert len(env.sim.communities()) == 12
    # The budget kept every Viva Engage request inside Graph's limit: no 429.
    assert [entry for entry in env.graph_calls() if entry["status"] == 429] == []
    # Every item is an ordinary request at its own status URL.
    [row] = [row for row in document["items"] if row["index"] == 3]
    item = requests.get(row["statusUri"], timeout=30)
    assert item.status_code == 200
    assert item.json()["community"]["id"] == row["communityId"]
    assert row["displayName"] == "Batch community 3"


def test_one_bad_csv_row_starts_nothing_and_names_the_row_and_column(env: WorkflowEnv) -> None:
    owner = OWNER["userPrincipalName"]
    body = f"displayName,owners,privacy\nGood one,{owner},private\nBad one,{owner},secret\n".encode()
    answer = post_batch(env, body, CSV)
    assert answer.status_code == 400, answer.text
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    fields = [error["field"] for error in answer.json()["errors"]]
    assert any("2" in field and "privacy" in field for field in fields), fields
    assert env.host.engine.query() == []


def test_validate_only_checks_and_starts_nothing(env: WorkflowEnv) -> None:
    owner = OWNER["userPrincipalName"]
    body = f'\ufeffdisplayName,owners\nOne,{owner}\nTwo,"{owner};{owner}"\n'.encode()
    answer = post_batch(env, body, CSV, "?validateOnly=true")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"valid": True, "items": 2, "format": "csv"}
    assert env.host.engine.query() == []


def test_an_idempotency_key_starts_one_batch_and_refuses_other_items(env: WorkflowEnv) -> None:
    body = json.dumps({"items": items(2)}).encode()
    first = post_batch(env, body, {**JSON, "Idempotency-Key": "batch-key-1"})
    again = post_batch(env, body, {**JSON, "Idempotency-Key": "batch-key-1"})
    other = post_batch(
        env, json.dumps({"items": items(3)}).encode(), {**JSON, "Idempotency-Key": "batch-key-1"}
    )
    assert (first.status_code, again.status_code, other.status_code) == (202, 202, 409)
    assert first.json()["id"] == again.json()["id"]
    assert other.json()["code"] == "IdempotencyConflict"


def test_cancel_stops_the_batch_and_every_item_not_settled(env: WorkflowEnv) -> None:
    started = post_batch(env, json.dumps({"items": items(batches.MAX_ITEMS_IN_FLIGHT + 5)}).encode(), JSON)
    assert started.status_code == 202, started.text
    env.host.advance(1)
    canceled = requests.delete(started.headers["Location"], timeout=30)
    assert canceled.status_code == 202, canceled.text

    final, _ = env.follow(requests.get(started.headers["Location"], timeout=30))

    document = final.json()
    assert final.status_code == 200, final.text
    assert document["status"] == "Canceled"
    assert document["counts"]["NotStarted"] == 0
    assert document["counts"]["Canceled"] >= 5  # at least the items never started
    assert (
        sum(document["counts"][status] for status in ("Succeeded", "Failed", "Canceled")) == document["total"]
    )
    # A cancel cannot undo a create Graph already accepted: a canceled item may leave its community behind.
    assert document["counts"]["Succeeded"] <= len(env.sim.communities()) <= batches.MAX_ITEMS_IN_FLIGHT
    assert requests.delete(started.headers["Location"], timeout=30).status_code == 409


def test_a_host_restart_mid_batch_loses_and_duplicates_nothing(env: WorkflowEnv) -> None:
    started = post_batch(env, json.dumps({"items": items(6)}).encode(), JSON)
    assert started.status_code == 202, started.text
    env.host.advance(45)
    env.restart_host()  # on a new port
    batch_url = f"{env.api}/communities/batches/{started.json()['id']}"
    final, _ = env.follow(requests.get(batch_url, timeout=30))
    assert final.status_code == 200, final.text
    assert final.json()["counts"]["Succeeded"] == 6
    names = sorted(community["displayName"] for community in env.sim.communities())
    assert names == sorted(item["displayName"] for item in items(6))


def test_retry_starts_the_items_that_did_not_succeed_as_a_new_batch_once(env: WorkflowEnv) -> None:
    env.sim.set_scenario("http-error", status=403, code="accessDenied", route="create", times=2)
    started = post_batch(env, json.dumps({"items": items(4)}).encode(), JSON)
    assert started.status_code == 202, started.text
    batch_id = started.json()["id"]
    running = requests.post(f"{started.headers['Location'].split('?')[0]}/retry", timeout=30)
    assert running.status_code == 409, running.text
    assert (running.json()["code"], running.json()["batchStatus"]) == ("NotRetryable", "Running")

    final, _ = env.follow(started)
    assert final.json()["status"] == "PartiallySucceeded", final.text
    failed = {row["requestId"] for row in final.json()["items"] if row["status"] == "Failed"}
    assert len(failed) == 2

    retry_url = f"{env.api}/communities/batches/{batch_id}/retry"
    retried = requests.post(retry_url, timeout=30)
    assert retried.status_code == 202, retried.text
    retry = retried.json()
    assert retry["id"] == batches.retry_batch_id_for(batch_id) != batch_id
    assert (retry["retryOf"], retry["total"]) == (batch_id, 2)
    again = requests.post(retry_url, timeout=30)
    assert (again.status_code, again.json()["id"]) == (202, retry["id"])  # a repeated retry starts nothing

    done, _ = env.follow(retried)
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["retryOf"], done.json()["total"]) == ("Succeeded", batch_id, 2)
    retried_items = [requests.get(row["statusUri"], timeout=30).json() for row in done.json()["items"]]
    assert {item["retryOf"] for item in retried_items} == failed
    assert len(env.sim.communities()) == 4
    assert requests.get(started.headers["Location"], timeout=30).json()["retriedBy"] == retry["id"]
    nothing_left = requests.post(f"{env.api}/communities/batches/{retry['id']}/retry", timeout=30)
    assert nothing_left.status_code == 409, nothing_left.text
    assert nothing_left.json()["batchStatus"] == "Succeeded"
    unknown = requests.post(f"{env.api}/communities/batches/batch-{'0' * 32}/retry", timeout=30)
    assert unknown.status_code == 404
