"""End to end over HTTP: operators list batches (GET /api/communities/batches) and a batch's requests
(GET /api/communities/requests?batchId=), every answer checked against the OpenAPI document."""

from __future__ import annotations

import requests

from provisioning import batch_workflow as batches
from provisioning import openapi
from tests.connector.test_served import assert_documented
from tests.e2e.workflow_env import OWNER, WorkflowEnv, request_body


def start_batch(env: WorkflowEnv, prefix: str, count: int) -> str:
    items = [{"displayName": f"{prefix} {n}", "owners": [OWNER["userPrincipalName"]]} for n in range(count)]
    started = requests.post(f"{env.api}/communities/batches", json={"items": items}, timeout=30)
    assert started.status_code == 202, started.text
    batch_id: str = started.json()["id"]
    return batch_id


def list_batches(env: WorkflowEnv, **params: str) -> requests.Response:
    return requests.get(f"{env.api}/communities/batches", params=params, timeout=30)


def test_batches_are_listed_newest_first_filtered_and_paged(env: WorkflowEnv) -> None:
    first = start_batch(env, "First", 2)
    env.host.run_until_status(first)
    env.host.advance(1)
    second = start_batch(env, "Second", 1)
    env.host.advance(1)
    third = start_batch(env, "Third", 1)
    env.host.run_until_idle()
    assert env.post(request_body("Not a batch")).status_code == 202  # requests are never batch rows

    everything = list_batches(env)
    body = assert_documented(everything, "get", openapi.BATCHES_PATH)
    assert [row["id"] for row in body["items"]] == [third, second, first]
    assert "nextLink" not in body
    [settled] = [row for row in body["items"] if row["id"] == first]
    assert settled["status"] == "Succeeded"
    assert settled["counts"]["Succeeded"] == settled["total"] == 2
    assert settled["progress"] == 100
    assert settled["statusUri"] == f"{env.api}/communities/batches/{first}"
    assert "items" not in settled
    running = [row for row in body["items"] if row["status"] == "Running"]
    assert {row["id"] for row in running} == {second, third}
    assert all(row["total"] == 1 and "estimatedCompletionAt" in row for row in running)

    only_running = assert_documented(list_batches(env, status="running"), "get", openapi.BATCHES_PATH)
    assert [row["id"] for row in only_running["items"]] == [third, second]
    only_settled = list_batches(env, status="Succeeded,Failed").json()
    assert [row["id"] for row in only_settled["items"]] == [first]

    # Paging: one at a time; a batch started meanwhile is newer than the token and never shifts the pages.
    page = list_batches(env, top="1")
    assert [row["id"] for row in page.json()["items"]] == [third]
    link = page.json()["nextLink"]
    assert page.headers["Link"] == f'<{link}>; rel="next"'
    env.host.advance(1)
    start_batch(env, "Fourth", 1)
    seen: list[str] = []
    while link:
        answer = requests.get(link, timeout=30)
        seen.extend(row["id"] for row in assert_documented(answer, "get", openapi.BATCHES_PATH)["items"])
        link = answer.json().get("nextLink")
    assert seen == [second, first]


def test_a_batch_filter_lists_only_that_batchs_requests(env: WorkflowEnv) -> None:
    batch_id = start_batch(env, "Filtered", 3)
    other = start_batch(env, "Other", 2)
    assert env.post(request_body("Alone")).status_code == 202
    env.host.run_until_idle()

    listed = requests.get(f"{env.api}/communities/requests", params={"batchId": batch_id}, timeout=30)
    rows = assert_documented(listed, "get", openapi.REQUESTS_PATH)["items"]
    assert {row["id"] for row in rows} == {batches.item_request_id(batch_id, n) for n in range(3)}
    assert sorted(row["displayName"] for row in rows) == ["Filtered 0", "Filtered 1", "Filtered 2"]
    named = requests.get(
        f"{env.api}/communities/requests", params={"batchId": other, "displayName": "other 1"}, timeout=30
    )
    assert [row["displayName"] for row in named.json()["items"]] == ["Other 1"]


def test_bad_list_parameters_are_refused_naming_the_parameter(env: WorkflowEnv) -> None:
    for path, params, field in (
        ("batches", {"status": "Done"}, "status"),
        ("batches", {"status": "Rejected"}, "status"),  # a request status, never a batch's
        ("batches", {"top": "0"}, "top"),
        ("batches", {"top": "501"}, "top"),
        ("batches", {"continuationToken": "nope"}, "continuationToken"),
        ("requests", {"batchId": "req-123"}, "batchId"),
    ):
        answer = requests.get(f"{env.api}/communities/{path}", params=params, timeout=30)
        assert answer.status_code == 400, (params, answer.text)
        body = assert_documented(
            answer, "get", openapi.BATCHES_PATH if path == "batches" else openapi.REQUESTS_PATH
        )
        assert body["errors"][0]["field"] == field
