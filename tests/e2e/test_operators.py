"""End to end over HTTP through the dev host: operators list requests and retry a failed one."""

from __future__ import annotations

import requests

from provisioning.workflow import CHECKS_PER_EXECUTION
from tests.e2e.workflow_env import POLL_INTERVAL, WorkflowEnv, request_body
from triggers.requests_api import retry_id_for


def list_requests(env: WorkflowEnv, **params: str) -> requests.Response:
    return requests.get(f"{env.api}/communities/requests", params=params, timeout=30)


def test_list_filters_pages_newest_first_and_shows_only_requests(env: WorkflowEnv) -> None:
    succeeded, _ = env.provision(request_body("Alpha Team"))
    assert succeeded.status_code == 200, succeeded.text
    env.sim.set_scenario("http-error", status=403, code="accessDenied", route="create")
    failed, _ = env.provision(request_body("Beta Team"))
    assert failed.status_code == 422, failed.text
    env.sim.clear_scenarios()
    running = []
    for name in ("Gamma One", "Gamma Two", "Gamma Three"):
        env.host.advance(1)
        started = env.post(request_body(name))
        assert started.status_code == 202, started.text
        running.append(started.json()["id"])
    batch = requests.post(
        f"{env.api}/communities/batches", json={"items": [request_body("Delta Batch")]}, timeout=30
    )
    assert batch.status_code == 202, batch.text
    env.host.run_until_idle()  # the batch starts its item

    everything = list_requests(env)
    assert everything.status_code == 200, everything.text
    rows = everything.json()["items"]
    ids = [row["id"] for row in rows]
    assert all(row_id.startswith("req-") and ":" not in row_id for row_id in ids)
    assert len(ids) == len(set(ids)) == 6  # five requests and the batch's one item, no batch or marker
    assert "nextLink" not in everything.json()
    assert "Link" not in everything.headers

    [beta] = [row for row in rows if row["displayName"] == "Beta Team"]
    assert beta["status"] == "Failed"
    assert beta["errorCode"] == "GraphRejected"
    assert beta["statusUri"].endswith(f"/api/communities/requests/{beta['id']}")
    [alpha] = [row for row in rows if row["displayName"] == "Alpha Team"]
    assert alpha["status"] == "Succeeded"
    assert alpha["communityId"]

    failed_only = list_requests(env, status="Failed").json()["items"]
    assert [row["id"] for row in failed_only] == [beta["id"]]
    gammas = list_requests(env, displayName="gAMMA", status="Running,Succeeded").json()["items"]
    assert [row["id"] for row in gammas] == running[::-1]  # newest first

    # Paging: two at a time, the token in Link and nextLink; a request started meanwhile never shifts pages.
    first = list_requests(env, displayName="gamma", top="2")
    assert [row["id"] for row in first.json()["items"]] == running[:0:-1]
    next_link = first.json()["nextLink"]
    assert first.headers["Link"] == f'<{next_link}>; rel="next"'
    env.host.advance(1)
    assert env.post(request_body("Gamma Four")).status_code == 202
    second = requests.get(next_link, timeout=30)
    assert second.status_code == 200, second.text
    assert [row["id"] for row in second.json()["items"]] == running[:1]
    assert "nextLink" not in second.json()


def test_list_rejects_bad_filters_naming_the_parameter(env: WorkflowEnv) -> None:
    for params, field in (
        ({"status": "Done"}, "status"),
        ({"createdFrom": "yesterday"}, "createdFrom"),
        ({"createdTo": "2026-13-01"}, "createdTo"),
        ({"top": "501"}, "top"),
        ({"top": "0"}, "top"),
        ({"continuationToken": "nope"}, "continuationToken"),
    ):
        answer = list_requests(env, **params)
        assert answer.status_code == 400, (params, answer.text)
        assert answer.headers["Content-Type"].startswith("application/problem+json")
        assert answer.json()["errors"][0]["field"] == field


def test_created_range_filters_by_creation_time(env: WorkflowEnv) -> None:
    started = env.post(request_body("Epsilon"))
    assert started.status_code == 202
    assert [row["id"] for row in list_requests(env, createdFrom="2000-01-01T00:00:00Z").json()["items"]] == [
        started.json()["id"]
    ]
    assert list_requests(env, createdTo="2000-01-01T00:00:00Z").json()["items"] == []


def test_a_request_that_continued_as_new_keeps_its_place_and_its_creation_time(env: WorkflowEnv) -> None:
    """Azure Storage sets an instance's createdTime anew at every continue-as-new (the dev host does too): the
    list orders and filters by the request's own createdAt."""
    env.sim.set_scenario("operation-never-ends")
    started = env.post(request_body("Iota Team"))
    assert started.status_code == 202
    created_at = requests.get(started.headers["Location"], timeout=30).json()["createdAt"]
    for _ in range(CHECKS_PER_EXECUTION + 2):  # past one continue-as-new
        env.host.advance(POLL_INTERVAL * 1.2)
    instance = env.host.engine.get_status(started.json()["id"], show_input=False)
    assert instance is not None
    assert instance["createdTime"] > created_at  # what the query's createdTime now says

    env.host.advance(1)
    later = env.post(request_body("Kappa Team"))
    assert later.status_code == 202
    rows = list_requests(env, displayName="Team").json()["items"]
    assert [row["id"] for row in rows] == [later.json()["id"], started.json()["id"]]
    assert rows[1]["createdAt"] == created_at
    within = list_requests(env, createdTo=created_at, displayName="Iota").json()["items"]
    assert [row["id"] for row in within] == [started.json()["id"]]


def test_retry_of_a_failed_request_starts_it_again_once(env: WorkflowEnv) -> None:
    env.sim.set_scenario("http-error", status=403, code="accessDenied", route="create")
    failed, _ = env.provision(request_body("Zeta Team"))
    assert failed.status_code == 422, failed.text
    old_id = failed.json()["id"]
    env.sim.clear_scenarios()

    retried = requests.post(f"{env.api}/communities/requests/{old_id}/retry", timeout=30)
    assert retried.status_code == 202, retried.text
    new_id = retried.json()["id"]
    assert new_id == retry_id_for(old_id) != old_id
    assert retried.json()["retryOf"] == old_id
    assert retried.headers["Location"].endswith(f"/api/communities/requests/{new_id}")

    again = requests.post(f"{env.api}/communities/requests/{old_id}/retry", timeout=30)
    assert again.status_code == 202, again.text
    assert again.json()["id"] == new_id
    assert again.headers["Location"] == retried.headers["Location"]

    final, _ = env.follow(retried)
    assert final.json()["retryOf"] == old_id  # the retry's own document says what it retries
    assert final.status_code == 200, final.text
    assert final.json()["request"]["displayName"] == "Zeta Team"
    assert len([i for i in env.request_instances() if i["instanceId"] == new_id]) == 1

    rows = {row["id"]: row for row in list_requests(env).json()["items"]}
    assert rows[old_id]["retriedBy"] == new_id
    assert rows[new_id]["retryOf"] == old_id

    # The retry succeeded: retrying it is a conflict; so is retrying a running request. Unknown ids are 404.
    succeeded = requests.post(f"{env.api}/communities/requests/{new_id}/retry", timeout=30)
    assert succeeded.status_code == 409, succeeded.text
    assert succeeded.json()["code"] == "NotRetryable"
    assert succeeded.json()["requestStatus"] == "Succeeded"
    unknown = requests.post(f"{env.api}/communities/requests/req-{'0' * 32}/retry", timeout=30)
    assert unknown.status_code == 404


def test_retry_of_a_running_request_is_a_conflict(env: WorkflowEnv) -> None:
    started = env.post(request_body("Eta Team"))
    assert started.status_code == 202
    answer = requests.post(f"{env.api}/communities/requests/{started.json()['id']}/retry", timeout=30)
    assert answer.status_code == 409, answer.text
    assert answer.json()["requestStatus"] == "Running"
    assert answer.headers["Content-Type"].startswith("application/problem+json")


def test_a_failed_request_is_told_apart_on_the_instance_itself(env: WorkflowEnv) -> None:
    """Durable tooling sees runtime status Completed (docs/workflow.md argues why); the instance's custom
    status and output say Failed with the error code and Graph's request-id, without our API."""
    env.sim.set_scenario("http-error", status=403, code="accessDenied", route="create")
    failed, _ = env.provision(request_body("Theta Team"))
    assert failed.status_code == 422, failed.text

    instance = env.host.engine.get_status(failed.json()["id"], show_input=False)
    assert instance is not None
    assert instance["runtimeStatus"] == "Completed"
    for document in (instance["customStatus"], instance["output"]):
        assert document["status"] == "Failed"
        assert document["error"]["code"] == "GraphRejected"
        assert document["error"]["graphRequestId"]
