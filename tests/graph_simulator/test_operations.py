"""GET engagementAsyncOperation: URL forms, progression counted in polls, and the documented JSON shape."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import requests

from graph_simulator import GraphSimulator
from tests.graph_simulator.conftest import CreateFn
from tests.graph_simulator.helpers import community_body, decode_id, get_token

_SEVEN_DIGIT_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")


def _operation_id(location: str) -> str:
    match = re.search(r"\('([^']+)'\)$", location)
    assert match is not None
    return match.group(1)


def _poll(graph: requests.Session, url: str) -> dict[str, object]:
    response = graph.get(url)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_status_goes_not_started_running_succeeded(create: CreateFn, graph: requests.Session) -> None:
    location = create().headers["Location"]

    statuses = [_poll(graph, location)["status"] for _ in range(4)]

    assert statuses == ["notStarted", "running", "succeeded", "succeeded"]


@pytest.mark.parametrize(
    ("polls", "expected"), [(1, ["succeeded"]), (4, ["notStarted", "running", "running"])]
)
def test_polls_to_complete_is_configurable(polls: int, expected: list[str]) -> None:
    with GraphSimulator(polls_to_complete=polls) as sim:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {get_token(sim)}"
        location = session.post(
            f"{sim.graph_base_url}/employeeExperience/communities", json=community_body()
        ).headers["Location"]
        statuses = [_poll(session, location)["status"] for _ in expected]
    assert statuses == expected


def test_progression_is_counted_per_operation(create: CreateFn, graph: requests.Session) -> None:
    first = create().headers["Location"]
    _poll(graph, first)
    _poll(graph, first)
    second = create(displayName="Second").headers["Location"]

    assert _poll(graph, second)["status"] == "notStarted"
    assert _poll(graph, first)["status"] == "succeeded"


def test_succeeded_operation_has_the_documented_shape(
    graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session
) -> None:
    location = create().headers["Location"]
    for _ in range(2):
        _poll(graph, location)
    body = _poll(graph, location)

    op_id = _operation_id(location)
    community_id = str(body["resourceId"])
    assert body == {
        # The docs' example has no "$metadata#" in the operation's context (unlike the community's).
        "@odata.context": f"{graph_sim.url}/v1.0/employeeExperience/engagementAsyncOperations/$entity",
        "id": op_id,
        "createdDateTime": body["createdDateTime"],
        "lastActionDateTime": body["lastActionDateTime"],
        "status": "succeeded",
        "statusDetail": None,
        "resourceLocation": f"{graph_sim.url}/v1.0/employeeExperience/communities('{community_id}')",
        "operationType": "createCommunity",
        "resourceId": community_id,
    }
    decoded = decode_id(community_id)
    assert set(decoded) == {"_type", "id"}
    assert decoded["_type"] == "Group"
    assert decoded["id"].isdigit()
    assert "=" not in community_id
    assert [c["id"] for c in graph_sim.communities()] == [community_id]


def test_timestamps_are_utc_with_seven_fractional_digits(create: CreateFn, graph: requests.Session) -> None:
    body = _poll(graph, create().headers["Location"])

    for name in ("createdDateTime", "lastActionDateTime"):
        value = str(body[name])
        assert _SEVEN_DIGIT_Z.match(value), value
        parsed = datetime.fromisoformat(value)
        assert parsed.tzinfo is not None
        assert parsed.utcoffset() == UTC.utcoffset(None)


def test_timestamps_come_from_the_injected_clock(graph_sim_factory: Callable[..., GraphSimulator]) -> None:
    sim = graph_sim_factory(clock=lambda: 1_712_751_378.0240578)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {get_token(sim)}"
    created = session.post(f"{sim.graph_base_url}/employeeExperience/communities", json=community_body())
    body = _poll(session, created.headers["Location"])
    assert body["createdDateTime"] == "2024-04-10T12:16:18.0240578Z"


def test_in_progress_operation_has_no_resource_yet(create: CreateFn, graph: requests.Session) -> None:
    body = _poll(graph, create().headers["Location"])
    assert body["status"] == "notStarted"
    assert body["resourceId"] is None
    assert body["resourceLocation"] is None
    assert body["statusDetail"] is None


@pytest.mark.parametrize(
    "template",
    [
        "{base}/employeeExperience/engagementAsyncOperations('{id}')",
        "{base}/employeeExperience/engagementAsyncOperations/{id}",
        "{base}/employeeExperience/engagementAsyncOperations%28%27{id}%27%29",
        "{base}/employeeExperience/engagementAsyncOperations(%27{id}%27)",
        "{base}/employeeexperience/engagementasyncoperations/{id}",
    ],
)
@pytest.mark.parametrize("version", ["v1.0", "beta"])
def test_operation_url_forms(
    graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session, template: str, version: str
) -> None:
    op_id = _operation_id(create().headers["Location"])
    url = template.format(base=f"{graph_sim.url}/{version}", id=op_id)

    body = _poll(graph, url)

    assert body["id"] == op_id
    assert str(body["@odata.context"]).startswith(f"{graph_sim.url}/{version}/")


def test_select_on_operation(create: CreateFn, graph: requests.Session) -> None:
    location = create().headers["Location"]
    body = _poll(graph, f"{location}?$select=status,resourceId")
    assert set(body) == {"@odata.context", "status", "resourceId"}


def test_select_of_an_unknown_property_is_400(create: CreateFn, graph: requests.Session) -> None:
    response = graph.get(f"{create().headers['Location']}?$select=nope")
    assert response.status_code == 400
    assert "nope" in response.json()["error"]["message"]


def test_metadata_none_drops_the_context(create: CreateFn, graph: requests.Session) -> None:
    response = graph.get(
        create().headers["Location"], headers={"Accept": "application/json;odata.metadata=none"}
    )
    assert "@odata.context" not in response.json()


def test_unknown_operation_is_404_in_graph_format(graph_sim: GraphSimulator, graph: requests.Session) -> None:
    response = graph.get(f"{graph_sim.graph_base_url}/employeeExperience/engagementAsyncOperations('nope')")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "Request_ResourceNotFound"


def test_last_action_time_moves_when_the_status_changes() -> None:
    now = [1_700_000_000.0]
    with GraphSimulator(clock=lambda: now[0]) as sim:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {get_token(sim)}"
        location = session.post(
            f"{sim.graph_base_url}/employeeExperience/communities", json=community_body()
        ).headers["Location"]
        first = _poll(session, location)
        now[0] += 31
        second = _poll(session, location)
    assert first["lastActionDateTime"] == first["createdDateTime"]
    assert second["lastActionDateTime"] == "2023-11-14T22:13:51.0000000Z"
