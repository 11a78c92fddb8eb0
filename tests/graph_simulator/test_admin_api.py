"""The /_simulator/ admin API, as an out-of-process user (make run, devhost) drives it."""

from __future__ import annotations

import pytest
import requests

from graph_simulator import SEED_USERS, GraphSimulator
from tests.graph_simulator.conftest import CreateFn


def _admin(sim: GraphSimulator, method: str, path: str, **kwargs: object) -> requests.Response:
    return requests.request(method, f"{sim.url}/_simulator/{path}", timeout=5, **kwargs)  # type: ignore[arg-type]


def test_scenarios_lifecycle(graph_sim: GraphSimulator, create: CreateFn) -> None:
    added = _admin(
        graph_sim, "POST", "scenarios", json={"name": "throttle", "options": {"retryAfter": "2.128"}}
    )
    listed = _admin(graph_sim, "GET", "scenarios").json()

    assert added.status_code == 201
    assert added.json()["options"]["retry_after"] == 2.128
    assert [s["name"] for s in listed["active"]] == ["throttle"]
    assert {s["name"] for s in listed["available"]} >= {"throttle", "rate-limit", "operation-failed"}
    assert create().headers["Retry-After"] == "2.128"

    _admin(graph_sim, "POST", "scenarios", json={"name": "server-error"})
    assert _admin(graph_sim, "DELETE", "scenarios").status_code == 204
    assert graph_sim.scenarios.active() == []


def test_bad_scenario_is_400_naming_it(graph_sim: GraphSimulator) -> None:
    response = _admin(graph_sim, "POST", "scenarios", json={"name": "throttle", "options": {"colour": "red"}})
    assert response.status_code == 400
    assert "colour" in response.json()["error"]
    assert _admin(graph_sim, "POST", "scenarios", json={}).status_code == 400


def test_users_and_communities(graph_sim: GraphSimulator, graph: requests.Session) -> None:
    user = {
        "id": "1e2d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b",
        "userPrincipalName": "new@contoso.com",
        "displayName": "N",
    }
    assert _admin(graph_sim, "POST", "users", json=user).status_code == 201
    assert graph.get(f"{graph_sim.graph_base_url}/users/new@contoso.com").json()["id"] == user["id"]
    assert len(_admin(graph_sim, "GET", "users").json()["value"]) == len(SEED_USERS) + 1

    for _ in range(2):
        seeded = _admin(
            graph_sim, "POST", "communities", json={"displayName": "Dup", "ownerIds": [SEED_USERS[0]["id"]]}
        )
        assert seeded.status_code == 201
    communities = _admin(graph_sim, "GET", "communities").json()["value"]
    assert [c["displayName"] for c in communities] == ["Dup", "Dup"]
    assert communities[0]["privacy"] == "private"
    members = _admin(graph_sim, "GET", f"groups/{communities[0]['groupId']}/members").json()["value"]
    assert members == [SEED_USERS[0]["id"]]
    assert _admin(graph_sim, "POST", "users", json={"id": "x"}).status_code == 400


def test_request_log_and_reset(graph_sim: GraphSimulator, create: CreateFn) -> None:
    create()
    log = _admin(graph_sim, "GET", "requests").json()["value"]

    assert [(e["method"], e["route"], e["status"]) for e in log] == [
        ("GET", "token", 200),
        ("POST", "create", 202),
    ]
    entry = log[1]
    assert entry["path"] == "/v1.0/employeeExperience/communities"
    assert set(entry) >= {"method", "path", "query", "time", "status", "headers"}
    assert not any(e["path"].startswith("/_simulator") for e in graph_sim.requests())

    graph_sim.set_scenario("throttle")
    assert _admin(graph_sim, "POST", "reset").status_code == 204
    assert graph_sim.communities() == []
    assert graph_sim.requests() == []
    assert graph_sim.scenarios.active() == []
    assert len(graph_sim.users()) == len(SEED_USERS)

    create()
    assert _admin(graph_sim, "DELETE", "requests").status_code == 204
    assert graph_sim.requests() == []


def test_clock(graph_sim: GraphSimulator) -> None:
    before = _admin(graph_sim, "GET", "clock").json()["now"]
    after = _admin(graph_sim, "POST", "clock", json={"advanceSeconds": 3600}).json()

    assert after["now"] - before >= 3600
    assert after["iso"].endswith("Z")
    assert _admin(graph_sim, "POST", "clock", json={"advanceSeconds": -1}).status_code == 400


def test_config(graph_sim: GraphSimulator, create: CreateFn) -> None:
    updated = _admin(graph_sim, "PATCH", "config", json={"operationHeader": "both", "pollsToComplete": 1})

    assert updated.json() == {"operationHeader": "both", "pollsToComplete": 1}
    assert {"Location", "Operation-Location"} <= set(create().headers)
    assert _admin(graph_sim, "PATCH", "config", json={"operationHeader": "nope"}).status_code == 400
    assert _admin(graph_sim, "GET", "config").json()["operationHeader"] == "both"


def test_app_env(graph_sim: GraphSimulator) -> None:
    assert _admin(graph_sim, "GET", "app-env").json() == graph_sim.app_env()


def test_stopped_simulator_answers_nothing_on_kept_alive_connections() -> None:
    sim = GraphSimulator().start()
    session = requests.Session()
    assert session.get(f"{sim.url}/_simulator/clock", timeout=5).status_code == 200
    url = sim.url

    sim.stop()

    with pytest.raises(requests.ConnectionError):
        session.get(f"{url}/_simulator/clock", timeout=5)
