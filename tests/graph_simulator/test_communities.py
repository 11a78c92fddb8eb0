"""GET/list/filter/update/delete communities: key forms, paging, $filter escaping, $select, duplicates."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from graph_simulator import GraphSimulator
from tests.graph_simulator.conftest import CreateFn


def _list(graph: requests.Session, url: str, **params: str) -> dict[str, Any]:
    response = graph.get(url, params=params or None)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _all_pages(graph: requests.Session, url: str, **params: str) -> list[list[dict[str, Any]]]:
    pages = []
    body = _list(graph, url, **params)
    pages.append(body["value"])
    while "@odata.nextLink" in body:
        body = _list(graph, body["@odata.nextLink"])
        pages.append(body["value"])
    return pages


@pytest.mark.parametrize("form", ["/{id}", "('{id}')", "%28%27{id}%27%29"])
@pytest.mark.parametrize("version", ["v1.0", "beta"])
def test_get_community_by_both_key_forms(
    graph_sim: GraphSimulator, graph: requests.Session, form: str, version: str
) -> None:
    seeded = graph_sim.add_community("Engineering", "All engineers", "public")
    url = f"{graph_sim.url}/{version}/employeeExperience/communities" + form.format(id=seeded["id"])

    response = graph.get(url)

    assert response.status_code == 200
    assert response.json() == {
        "@odata.context": f"{graph_sim.url}/{version}/$metadata#employeeExperience/communities/$entity",
        "id": seeded["id"],
        "displayName": "Engineering",
        "description": "All engineers",
        "privacy": "public",
        "groupId": seeded["groupId"],
    }


def test_community_created_through_the_api_is_readable_from_resource_id(
    graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session
) -> None:
    location = create().headers["Location"]
    for _ in range(3):
        operation = graph.get(location).json()
    community = graph.get(
        f"{graph_sim.graph_base_url}/employeeExperience/communities/{operation['resourceId']}"
    )
    by_location = graph.get(operation["resourceLocation"])

    assert community.status_code == by_location.status_code == 200
    assert community.json()["displayName"] == "Financial Advice for Software Engineers"


def test_unknown_community_is_404(graph_sim: GraphSimulator, graph: requests.Session) -> None:
    missing = graph_sim.store.new_community_id()  # well-formed, never used
    response = graph.get(f"{graph_sim.graph_base_url}/employeeExperience/communities/{missing}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "itemNotFound"


def test_malformed_community_id_is_400(graph_sim: GraphSimulator, graph: requests.Session) -> None:
    response = graph.get(f"{graph_sim.graph_base_url}/employeeExperience/communities/not-an-id")
    assert response.status_code == 400


def test_select_on_community(graph_sim: GraphSimulator, graph: requests.Session) -> None:
    seeded = graph_sim.add_community("Engineering")
    body = graph.get(
        f"{graph_sim.graph_base_url}/employeeExperience/communities/{seeded['id']}",
        params={"$select": "id,groupId"},
    ).json()
    assert set(body) == {"@odata.context", "id", "groupId"}


def test_list_pages_by_20_with_skiptoken(graph_sim: GraphSimulator, graph: requests.Session) -> None:
    for index in range(45):
        graph_sim.add_community(f"Community {index:02d}")
    url = f"{graph_sim.graph_base_url}/employeeExperience/communities"

    first = _list(graph, url)
    pages = _all_pages(graph, url)

    assert first["@odata.context"] == f"{graph_sim.url}/v1.0/$metadata#employeeExperience/communities"
    next_link = urlsplit(first["@odata.nextLink"])
    assert f"{next_link.scheme}://{next_link.netloc}{next_link.path}" == url
    assert "$skiptoken" in parse_qs(next_link.query)
    assert [len(page) for page in pages] == [20, 20, 5]
    names = [item["displayName"] for page in pages for item in page]
    assert names == [f"Community {index:02d}" for index in range(45)]


def test_top_sets_the_page_size(graph_sim: GraphSimulator, graph: requests.Session) -> None:
    for index in range(7):
        graph_sim.add_community(f"Community {index}")
    pages = _all_pages(graph, f"{graph_sim.graph_base_url}/employeeExperience/communities", **{"$top": "3"})
    assert [len(page) for page in pages] == [3, 3, 1]


def test_filter_by_display_name_keeps_duplicates_and_follows_pages(
    graph_sim: GraphSimulator, graph: requests.Session
) -> None:
    for index in range(3):
        graph_sim.add_community("Same name", f"copy {index}")
    graph_sim.add_community("Other name")
    url = f"{graph_sim.graph_base_url}/employeeExperience/communities"

    pages = _all_pages(graph, url, **{"$filter": "displayName eq 'Same name'", "$top": "2"})

    assert [len(page) for page in pages] == [2, 1]
    assert {item["description"] for page in pages for item in page} == {"copy 0", "copy 1", "copy 2"}


@pytest.mark.parametrize("name", ["O'Brien's team", "''", "A & B + C", "Ünïcödé #1 100%"])
def test_filter_unescapes_doubled_quotes(
    graph_sim: GraphSimulator, graph: requests.Session, name: str
) -> None:
    wanted = graph_sim.add_community(name)
    graph_sim.add_community(name + " (other)")
    escaped = name.replace("'", "''")

    body = _list(
        graph,
        f"{graph_sim.graph_base_url}/employeeExperience/communities",
        **{"$filter": f"displayName eq '{escaped}'"},
    )

    assert [item["id"] for item in body["value"]] == [wanted["id"]]


def test_unescaped_quote_in_filter_is_400(graph_sim: GraphSimulator, graph: requests.Session) -> None:
    response = graph.get(
        f"{graph_sim.graph_base_url}/employeeExperience/communities",
        params={"$filter": "displayName eq 'O'Brien'"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"


def test_filter_on_group_id_is_unsupported(graph_sim: GraphSimulator, graph: requests.Session) -> None:
    response = graph.get(
        f"{graph_sim.graph_base_url}/employeeExperience/communities",
        params={"$filter": "groupId eq 'abc'"},
    )
    assert response.status_code == 400


def test_list_select_and_orderby(graph_sim: GraphSimulator, graph: requests.Session) -> None:
    for name in ("beta", "Alpha", "gamma"):
        graph_sim.add_community(name)
    body = _list(
        graph,
        f"{graph_sim.graph_base_url}/employeeExperience/communities",
        **{"$select": "displayName", "$orderby": "displayName desc"},
    )
    assert body["value"] == [{"displayName": "gamma"}, {"displayName": "beta"}, {"displayName": "Alpha"}]


def test_bad_skiptoken_and_top_are_400(graph_sim: GraphSimulator, graph: requests.Session) -> None:
    url = f"{graph_sim.graph_base_url}/employeeExperience/communities"
    assert graph.get(url, params={"$skiptoken": "garbage"}).status_code == 400
    assert graph.get(url, params={"$top": "0"}).status_code == 400


def test_update_and_delete_answer_204(graph_sim: GraphSimulator, graph: requests.Session) -> None:
    seeded = graph_sim.add_community("Before")
    url = f"{graph_sim.graph_base_url}/employeeExperience/communities/{seeded['id']}"

    patched = graph.patch(url, json={"displayName": "After", "privacy": "public"})
    assert patched.status_code == 204
    assert graph.get(url).json()["displayName"] == "After"
    assert graph.patch(url, json={"displayName": "x" * 256}).status_code == 400

    assert graph.delete(url).status_code == 204
    assert graph.get(url).status_code == 404
    assert graph_sim.communities() == []


def test_unknown_path_and_method(graph_sim: GraphSimulator, graph: requests.Session) -> None:
    unknown = graph.get(f"{graph_sim.graph_base_url}/employeeExperience/nothingHere")
    wrong_method = graph.put(f"{graph_sim.graph_base_url}/employeeExperience/communities", json={})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"] == "Resource not found for the segment 'nothingHere'."
    assert unknown.json()["error"]["innerError"]["request-id"] == unknown.headers["request-id"]
    assert wrong_method.status_code == 405
