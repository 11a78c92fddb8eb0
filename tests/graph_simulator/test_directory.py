"""Users by id or UPN, and group members ($ref, PATCH members@odata.bind with its 20 limit, listing)."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest
import requests

from graph_simulator import SEED_USERS, GraphSimulator

ALREADY_MEMBER = (
    "One or more added object references already exist for the following modified properties: 'members'."
)


def _directory_object(user_id: str) -> str:
    return f"https://graph.microsoft.com/v1.0/directoryObjects/{user_id}"


def _group(sim: GraphSimulator) -> str:
    return str(sim.add_community("Team", owner_ids=[SEED_USERS[0]["id"]])["groupId"])


def _new_users(sim: GraphSimulator, count: int) -> list[str]:
    ids = []
    for index in range(count):
        user_id = str(uuid.uuid4())
        sim.add_user(user_id, f"member{index}@contoso.onmicrosoft.com", f"Member {index}")
        ids.append(user_id)
    return ids


@pytest.mark.parametrize(
    "key",
    [
        SEED_USERS[1]["id"],
        SEED_USERS[1]["id"].upper(),
        SEED_USERS[1]["userPrincipalName"],
        SEED_USERS[1]["userPrincipalName"].upper(),
    ],
)
def test_user_by_id_or_upn(graph_sim: GraphSimulator, graph: requests.Session, key: str) -> None:
    response = graph.get(f"{graph_sim.graph_base_url}/users/{key}")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == SEED_USERS[1]["id"]
    assert body["userPrincipalName"] == SEED_USERS[1]["userPrincipalName"]
    assert body["@odata.context"] == f"{graph_sim.url}/v1.0/$metadata#users/$entity"


def test_upn_with_an_apostrophe_percent_encoded(graph_sim: GraphSimulator, graph: requests.Session) -> None:
    upn = SEED_USERS[4]["userPrincipalName"]
    response = graph.get(f"{graph_sim.url}/beta/users/{quote(upn, safe='@')}", params={"$select": "id"})
    assert response.json() == {
        "@odata.context": f"{graph_sim.url}/beta/$metadata#users/$entity",
        "id": SEED_USERS[4]["id"],
    }


def test_user_by_upn_in_key_syntax_with_a_doubled_quote(
    graph_sim: GraphSimulator, graph: requests.Session
) -> None:
    escaped = SEED_USERS[4]["userPrincipalName"].replace("'", "''")
    response = graph.get(f"{graph_sim.graph_base_url}/users('{escaped}')")
    assert response.json()["id"] == SEED_USERS[4]["id"]


def test_unknown_user_is_404_request_resource_not_found(
    graph_sim: GraphSimulator, graph: requests.Session
) -> None:
    response = graph.get(f"{graph_sim.graph_base_url}/users/nobody@contoso.onmicrosoft.com")

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "Request_ResourceNotFound"
    assert "nobody@contoso.onmicrosoft.com" in error["message"]


def test_add_member_by_ref(graph_sim: GraphSimulator, graph: requests.Session) -> None:
    group_id = _group(graph_sim)
    member = SEED_USERS[2]["id"]

    response = graph.post(
        f"{graph_sim.graph_base_url}/groups/{group_id}/members/$ref",
        json={"@odata.id": _directory_object(member)},
    )

    assert response.status_code == 204
    assert response.content == b""
    assert graph_sim.group_members(group_id) == [SEED_USERS[0]["id"], member]


def test_adding_an_existing_member_is_400_like_graph(
    graph_sim: GraphSimulator, graph: requests.Session
) -> None:
    group_id = _group(graph_sim)
    url = f"{graph_sim.graph_base_url}/groups/{group_id}/members/$ref"

    response = graph.post(url, json={"@odata.id": _directory_object(SEED_USERS[0]["id"])})  # the owner

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Request_BadRequest"
    assert response.json()["error"]["message"] == ALREADY_MEMBER


def test_member_missing_from_the_directory_is_404(graph_sim: GraphSimulator, graph: requests.Session) -> None:
    group_id = _group(graph_sim)
    response = graph.post(
        f"{graph_sim.graph_base_url}/groups/{group_id}/members/$ref",
        json={"@odata.id": _directory_object(str(uuid.uuid4()))},
    )
    assert response.status_code == 404
    assert graph_sim.group_members(group_id) == [SEED_USERS[0]["id"]]


def test_unknown_group_is_404(graph_sim: GraphSimulator, graph: requests.Session) -> None:
    response = graph.get(f"{graph_sim.graph_base_url}/groups/{uuid.uuid4()}/members")
    assert response.status_code == 404


def test_patch_binds_up_to_20_members(graph_sim: GraphSimulator, graph: requests.Session) -> None:
    group_id = _group(graph_sim)
    users = _new_users(graph_sim, 20)

    response = graph.patch(
        f"{graph_sim.graph_base_url}/groups/{group_id}",
        json={"members@odata.bind": [_directory_object(user) for user in users]},
    )

    assert response.status_code == 204
    assert graph_sim.group_members(group_id) == [SEED_USERS[0]["id"], *users]


def test_patch_with_21_members_is_400(graph_sim: GraphSimulator, graph: requests.Session) -> None:
    group_id = _group(graph_sim)
    users = _new_users(graph_sim, 21)

    response = graph.patch(
        f"{graph_sim.graph_base_url}/groups/{group_id}",
        json={"members@odata.bind": [_directory_object(user) for user in users]},
    )

    assert response.status_code == 400
    assert graph_sim.group_members(group_id) == [SEED_USERS[0]["id"]]


def test_one_existing_member_fails_the_whole_patch(
    graph_sim: GraphSimulator, graph: requests.Session
) -> None:
    group_id = _group(graph_sim)
    newcomer = SEED_USERS[3]["id"]

    response = graph.patch(
        f"{graph_sim.graph_base_url}/groups/{group_id}",
        json={"members@odata.bind": [_directory_object(newcomer), _directory_object(SEED_USERS[0]["id"])]},
    )

    assert response.status_code == 400
    assert response.json()["error"]["message"] == ALREADY_MEMBER
    assert graph_sim.group_members(group_id) == [SEED_USERS[0]["id"]]


def test_list_members(graph_sim: GraphSimulator, graph: requests.Session) -> None:
    group_id = _group(graph_sim)
    graph.post(
        f"{graph_sim.graph_base_url}/groups/{group_id}/members/$ref",
        json={"@odata.id": f"{graph_sim.url}/v1.0/users/{SEED_USERS[1]['id']}"},
    )

    body = graph.get(f"{graph_sim.graph_base_url}/groups/{group_id}/members").json()

    assert body["@odata.context"] == f"{graph_sim.url}/v1.0/$metadata#directoryObjects"
    assert [(m["@odata.type"], m["id"]) for m in body["value"]] == [
        ("#microsoft.graph.user", SEED_USERS[0]["id"]),
        ("#microsoft.graph.user", SEED_USERS[1]["id"]),
    ]
