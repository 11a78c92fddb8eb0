"""Find by name (filter, escaping, paging), resolve users, add members in batches, over real HTTP."""

from __future__ import annotations

import uuid

import pytest

from graph_simulator import SEED_USERS, GraphSimulator
from provisioning.graph import ErrorKind, GraphClient, GraphError

from .conftest import graph_requests

# ------------------------------------------------------------------------------------------ find by name


@pytest.mark.parametrize("name", ["O'Neil's Guild", "Q&A + tips #1 50% 'quoted'", "Ünïcödé ✓", "a=b?c/d"])
def test_find_by_exact_name_escapes_quotes_and_encodes(
    graph_sim: GraphSimulator, client: GraphClient, name: str
) -> None:
    wanted = graph_sim.add_community(name, "the one")
    graph_sim.add_community(name + " (other)")
    graph_sim.add_community("Unrelated")

    found = client.find_communities_by_name(name)

    assert [c.id for c in found] == [wanted["id"]]
    assert found[0].display_name == name
    assert found[0].description == "the one"
    [request] = graph_requests(graph_sim, "GET")
    # What Graph receives decodes to one OData literal with the single quotes doubled.
    assert request["query"] == {"$filter": "displayName eq '" + name.replace("'", "''") + "'"}


def test_find_follows_next_links_across_pages(graph_sim: GraphSimulator, client: GraphClient) -> None:
    ids = {graph_sim.add_community("Popular")["id"] for _ in range(45)}
    graph_sim.add_community("Popular too")

    found = client.find_communities_by_name("Popular")

    assert {c.id for c in found} == ids
    assert len(found) == 45
    assert len(graph_requests(graph_sim, "GET")) == 3  # pages of 20, 20, 5


def test_paging_stops_at_a_next_link_on_a_foreign_origin(
    graph_sim: GraphSimulator, client: GraphClient
) -> None:
    for _ in range(25):
        graph_sim.add_community("Crowded")
    with GraphSimulator() as elsewhere:
        graph_sim.set_scenario("foreign-next-link", origin=elsewhere.url)
        with pytest.raises(GraphError) as caught:
            client.find_communities_by_name("Crowded")
        error = caught.value
        assert (error.kind, error.code, error.http_status) == (ErrorKind.PERMANENT, "UntrustedGraphUrl", 200)
        assert error.request_id == graph_requests(graph_sim, "GET")[0]["requestId"]  # the page with the link
        assert "next page link" in error.message
        assert elsewhere.url in error.message
        assert elsewhere.requests() == []  # the bearer token never went there
    assert len(graph_requests(graph_sim, "GET")) == 1  # the first page only


def test_find_nothing(graph_sim: GraphSimulator, client: GraphClient) -> None:
    graph_sim.add_community("Something")
    assert client.find_communities_by_name("Nothing") == []


# ------------------------------------------------------------------------------------------ resolve user


def test_a_guid_passes_straight_through(graph_sim: GraphSimulator, client: GraphClient) -> None:
    some_id = str(uuid.uuid4())
    assert client.resolve_user(some_id) == some_id
    assert client.resolve_user(f" {some_id.upper()} ") == some_id.upper()
    assert graph_requests(graph_sim) == []


def test_a_upn_is_resolved_to_its_object_id(graph_sim: GraphSimulator, client: GraphClient) -> None:
    user = SEED_USERS[1]
    assert client.resolve_user(str(user["userPrincipalName"])) == user["id"]
    [request] = graph_requests(graph_sim, "GET")
    assert request["path"].endswith("/users/" + str(user["userPrincipalName"]))
    assert request["query"] == {"$select": "id"}


def test_a_guest_upn_with_hashes_is_encoded(graph_sim: GraphSimulator, client: GraphClient) -> None:
    graph_sim.add_user("0b7d6f7e-3c47-4d7f-a7a3-2f5f1f0e9c11", "guest_fabrikam.com#EXT#@contoso.com", "Guest")
    assert (
        client.resolve_user("guest_fabrikam.com#EXT#@contoso.com") == "0b7d6f7e-3c47-4d7f-a7a3-2f5f1f0e9c11"
    )


def test_an_unknown_upn_is_a_permanent_user_not_found(client: GraphClient) -> None:
    with pytest.raises(GraphError) as caught:
        client.resolve_user("nobody@contoso.com")
    error = caught.value
    assert (error.kind, error.http_status, error.code) == (ErrorKind.PERMANENT, 404, "UserNotFound")
    assert "nobody@contoso.com" in error.message
    assert error.request_id


# ------------------------------------------------------------------------------------------------ members


@pytest.fixture
def user_ids(graph_sim: GraphSimulator) -> list[str]:
    ids = []
    for number in range(25):
        user_id = str(uuid.UUID(int=0xA11CE000 + number))
        graph_sim.add_user(user_id, f"member{number}@contoso.com", f"Member {number}")
        ids.append(user_id)
    return ids


@pytest.fixture
def group_id(graph_sim: GraphSimulator) -> str:
    return str(graph_sim.add_community("Members club")["groupId"])


def test_25_members_take_two_patches(
    graph_sim: GraphSimulator, client: GraphClient, group_id: str, user_ids: list[str]
) -> None:
    result = client.add_group_members(group_id, user_ids + user_ids[:3])  # duplicates are sent once

    assert result.added == user_ids
    assert result.already_members == []
    assert result.failed == []
    patches = graph_requests(graph_sim, "PATCH")
    assert [p["path"] for p in patches] == [f"/v1.0/groups/{group_id}"] * 2
    assert graph_requests(graph_sim, "POST") == []
    assert set(user_ids) <= set(graph_sim.group_members(group_id))


def test_existing_members_fall_back_to_one_by_one(
    graph_sim: GraphSimulator, client: GraphClient, group_id: str, user_ids: list[str]
) -> None:
    client.add_group_members(group_id, [user_ids[1], user_ids[22]])
    graph_sim.clear_requests()

    result = client.add_group_members(group_id, user_ids)

    assert sorted(result.already_members) == sorted([user_ids[1], user_ids[22]])
    assert sorted(result.added) == sorted(set(user_ids) - {user_ids[1], user_ids[22]})
    assert result.failed == []
    # Both batches hit an existing member, so both fell back: 2 PATCHes, then 20 + 5 single adds.
    assert len(graph_requests(graph_sim, "PATCH")) == 2
    posts = graph_requests(graph_sim, "POST")
    assert len(posts) == 25
    assert all(p["path"] == f"/v1.0/groups/{group_id}/members/$ref" for p in posts)
    assert set(user_ids) <= set(graph_sim.group_members(group_id))


def test_a_user_graph_refuses_is_failed_and_the_rest_added(
    graph_sim: GraphSimulator, client: GraphClient, group_id: str, user_ids: list[str]
) -> None:
    stranger = str(uuid.uuid4())  # not in the directory
    result = client.add_group_members(group_id, [*user_ids[:3], stranger])

    assert result.added == user_ids[:3]
    [(failed_id, error)] = result.failed
    assert failed_id == stranger
    assert error.kind is ErrorKind.PERMANENT
    assert error.http_status in (400, 404)
    assert stranger not in graph_sim.group_members(group_id)


def test_throttling_while_adding_members_propagates(
    graph_sim: GraphSimulator, client: GraphClient, group_id: str, user_ids: list[str]
) -> None:
    graph_sim.set_scenario("throttle", retry_after=2.128, form="fractional", route="members")
    with pytest.raises(GraphError) as caught:
        client.add_group_members(group_id, user_ids)
    assert caught.value.kind is ErrorKind.THROTTLED
    assert caught.value.retry_after_seconds == pytest.approx(2.128)


def test_members_bind_with_the_beta_base_url(
    graph_sim: GraphSimulator, graph_env: dict[str, str], group_id: str, user_ids: list[str]
) -> None:
    client = GraphClient(graph_sim.url + "/beta")
    assert client.add_group_members(group_id, user_ids[:2]).added == user_ids[:2]
    [patch] = graph_requests(graph_sim, "PATCH")
    assert patch["path"] == f"/beta/groups/{group_id}"


def test_members_result_is_plain_json(
    graph_sim: GraphSimulator, client: GraphClient, group_id: str, user_ids: list[str]
) -> None:
    result = client.add_group_members(group_id, [user_ids[0], str(uuid.UUID(int=7))])
    data = result.to_dict()
    assert data["added"] == [user_ids[0]]
    assert data["failed"][0]["id"] == str(uuid.UUID(int=7))
    assert data["failed"][0]["error"]["kind"] == "permanent"
