"""Owners and members as one `;`- or `,`-separated string (what Forms, SharePoint and Excel hand a flow),
end to end: over HTTP and over the queue the string is the same request as the list, and a bad entry is named
by its position among the string's users."""

from __future__ import annotations

import json

import requests

from provisioning.idempotency import instance_id_for_key
from tests.e2e.workflow_env import MEMBER, OTHER_MEMBER, OWNER, QueueEnv, WorkflowEnv, request_body

AFTER_THE_END_SECONDS = 6 * 3600
MEMBERS_TEXT = f" {MEMBER['userPrincipalName']} ;; {OTHER_MEMBER['id'].upper()},"


def test_http_request_with_users_as_one_string_creates_the_community(env: WorkflowEnv) -> None:
    body = request_body(
        name="Users As Text",
        owners=f"{OWNER['userPrincipalName']};",
        members=MEMBERS_TEXT,
    )
    started = env.post(body, {"Idempotency-Key": "users-as-text"})
    assert started.status_code == 202, started.text
    final, _ = env.follow(started)
    assert final.status_code == 200, final.text
    document = final.json()
    assert document["status"] == "Succeeded"
    assert (document["request"]["ownerCount"], document["request"]["memberCount"]) == (1, 2)
    assert sorted(document["members"]["added"]) == sorted([MEMBER["id"], OTHER_MEMBER["id"]])

    # The same request written as lists is the same request: the key answers it, nothing new starts.
    as_lists = request_body(
        name="Users As Text",
        owners=[OWNER["userPrincipalName"]],
        members=[MEMBER["userPrincipalName"], OTHER_MEMBER["id"]],
    )
    again = env.post(as_lists, {"Idempotency-Key": "users-as-text"})
    assert again.status_code == 200
    assert again.json()["id"] == document["id"]
    assert len(env.graph_calls(route="create")) == 1


def test_http_request_with_a_bad_entry_in_the_string_names_its_position(env: WorkflowEnv) -> None:
    body = request_body(owners=f"{OWNER['userPrincipalName']}; ; bob", members=7)
    response = env.post(body)
    assert response.status_code == 400, response.text
    errors = {error["field"]: error["message"] for error in response.json()["errors"]}
    assert errors == {
        "owners[1]": "must be an Entra object id (GUID) or a user principal name (name@domain), got 'bob'",
        "members": "must be an array of strings or one string of users separated by ; or ,",
    }
    env.host.run_until_idle()
    assert env.request_instances() == []


def test_queue_message_with_users_as_one_string_creates_the_community(queues: QueueEnv) -> None:
    env = queues.env
    status_url = queues.send(
        "sheet-row-12",
        name="Queued Users As Text",
        owners=f"{OWNER['id']}, {OWNER['userPrincipalName']}",  # one user, twice
        members=MEMBERS_TEXT,
    )
    request_id = instance_id_for_key("sheet-row-12", "queue")
    assert status_url.endswith(request_id)
    assert env.host.run_until_status(request_id)["runtimeStatus"] == "Completed"
    env.host.advance(AFTER_THE_END_SECONDS)

    [result] = queues.results()
    assert result["status"] == "Succeeded"
    assert result["requestId"] == "sheet-row-12"
    assert result["request"]["ownerCount"] == 2  # an id and a UPN: Graph tells that they are one user
    assert sorted(result["members"]["added"]) == sorted([MEMBER["id"], OTHER_MEMBER["id"]])
    assert requests.get(status_url, timeout=30).status_code == 200


def test_queue_message_with_a_bad_entry_in_the_string_is_rejected_naming_it(queues: QueueEnv) -> None:
    queues.send("sheet-row-13", owners=f"{OWNER['userPrincipalName']},not-a-user")
    queues.env.host.run_until_idle()
    [rejected] = queues.results()
    assert rejected["status"] == "Rejected"
    assert [error["field"] for error in rejected["error"]["errors"]] == ["owners[1]"]
    # The echo of the message keeps no user principal name.
    assert OWNER["userPrincipalName"] not in json.dumps(rejected)
    assert queues.env.request_instances() == []
