"""``fault-mix``: a seeded random share of Graph requests gets one of the single faults, reproducibly."""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import requests

from graph_simulator import GraphSimulator
from graph_simulator.scenarios import MIX_FAULTS, ScenarioEngine
from tests.graph_simulator.conftest import CreateFn
from tests.graph_simulator.helpers import get_token

SEED = 20240611
CREATE_ONLY = {fault.label for fault in MIX_FAULTS if fault.create_only}


def _communities_url(sim: GraphSimulator) -> str:
    return f"{sim.graph_base_url}/employeeExperience/communities"


def _list(sim: GraphSimulator, graph: requests.Session, name: str) -> requests.Response:
    return graph.get(_communities_url(sim), params={"$filter": f"displayName eq '{name}'"}, timeout=5)


def _list_status(sim: GraphSimulator, graph: requests.Session, name: str) -> int | None:
    """The list's HTTP status, or None when the connection ended without an answer."""
    try:
        return _list(sim, graph, name).status_code
    except requests.ConnectionError:
        return None


def _name_for(label: str, seed: int = SEED) -> str:
    """A display name whose first create draws ``label`` at rate 1 (draws depend on seed and subject only)."""
    engine = ScenarioEngine()
    engine.activate("fault-mix", {"rate": 1, "seed": seed})
    for number in itertools.count():
        name = f"Community {number}"
        if engine.draw("create", "POST", functools.partial(str, name)) == label:
            return name
    raise AssertionError("unreachable")


def _faults(sim: GraphSimulator, route: str | None = None) -> list[Any]:
    return [entry["fault"] for entry in sim.requests() if route is None or entry["route"] == route]


def test_a_share_of_graph_requests_is_faulted_and_tallied(
    graph_sim: GraphSimulator, graph: requests.Session
) -> None:
    mix = graph_sim.set_scenario("fault-mix", rate=0.3, seed=SEED)
    assert mix == {
        "name": "fault-mix",
        "options": {"rate": 0.3, "seed": SEED, "slow_seconds": 1.0, "readable_after": 40.0},
        "remaining": None,
        "fired": {},
    }
    graph_sim.set_scenario("fault-mix", rate=0.3, seed=SEED, slow_seconds=0)  # replaces the first one

    statuses = Counter(_list_status(graph_sim, graph, f"Team {n}") for n in range(300))

    faults = Counter(fault for fault in _faults(graph_sim) if fault is not None)
    assert 0.22 <= sum(faults.values()) / 300 <= 0.38, faults
    assert not faults.keys() & CREATE_ONLY  # failed/skipped/late operations only come from creates
    [active] = graph_sim.scenarios.active()
    assert active["fired"] == dict(sorted(faults.items()))
    assert statuses[429] == faults["throttle"] + faults["throttle-without-retry-after"]
    assert statuses[503] == faults["unavailable"] + faults["unavailable-with-retry-after"]
    assert statuses[504] == faults["gateway-timeout"]
    assert statuses[None] == faults["connection-reset"] + faults["dropped-answer"]
    assert statuses[200] == 300 - sum(faults.values()) + faults["slow"]


def test_the_token_endpoint_and_the_admin_api_are_never_faulted(
    graph_sim: GraphSimulator, graph: requests.Session
) -> None:
    graph_sim.set_scenario("fault-mix", rate=1, seed=SEED, slow_seconds=0)

    for _ in range(20):
        get_token(graph_sim)  # raises unless 200
        assert requests.get(f"{graph_sim.url}/_simulator/scenarios", timeout=5).status_code == 200
    for number in range(20):
        _list_status(graph_sim, graph, f"Team {number}")

    assert set(_faults(graph_sim, "token")) == {None}
    assert len(_faults(graph_sim, "list")) == 20
    assert None not in _faults(graph_sim, "list")  # at rate 1 every Graph request is faulted


def test_draws_depend_on_the_seed_and_the_subject_not_on_the_interleaving(
    graph_sim_factory: Callable[..., GraphSimulator],
) -> None:
    names = [f"Team {number}" for number in range(12)]

    def run(order: list[str], seed: int) -> dict[str, list[Any]]:
        sim = graph_sim_factory()
        sim.set_scenario("fault-mix", rate=0.5, seed=seed, slow_seconds=0)
        graph = requests.Session()
        graph.headers["Authorization"] = f"Bearer {get_token(sim)}"
        seen: dict[str, list[Any]] = {name: [] for name in names}
        for name in order:
            _list_status(sim, graph, name)
            seen[name].append(sim.requests()[-1]["fault"])
        return seen

    twice = [name for name in names for _ in range(2)]
    first = run(twice, SEED)
    assert run(list(reversed(twice)), SEED) == first  # other interleaving, same faults per subject
    assert run(twice, SEED + 1) != first
    assert any(first.values())


def test_rate_zero_faults_nothing(graph_sim: GraphSimulator, create: CreateFn) -> None:
    graph_sim.set_scenario("fault-mix", rate=0, seed=SEED)
    assert all(create(displayName=f"Team {number}").status_code == 202 for number in range(30))
    assert set(_faults(graph_sim)) == {None}
    assert len(graph_sim.communities()) == 30


@pytest.mark.parametrize(
    ("label", "status", "retry_after", "created"),
    [
        ("throttle", 429, "2.128", 0),
        ("throttle-without-retry-after", 429, None, 0),
        ("unavailable", 503, None, 0),
        ("unavailable-with-retry-after", 503, "5", 0),
        ("gateway-timeout", 504, None, 0),
    ],
)
def test_error_answers_process_nothing(
    graph_sim: GraphSimulator,
    create: CreateFn,
    label: str,
    status: int,
    retry_after: str | None,
    created: int,
) -> None:
    graph_sim.set_scenario("fault-mix", rate=1, seed=SEED)
    response = create(displayName=_name_for(label))

    assert response.status_code == status
    assert response.headers.get("Retry-After") == retry_after
    assert response.json()["error"]["innerError"]["request-id"]
    assert len(graph_sim.communities()) == created
    assert _faults(graph_sim, "create") == [label]


@pytest.mark.parametrize("label", ["connection-reset", "dropped-answer"])
def test_lost_create_answers_come_after_the_community_was_created(
    graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session, label: str
) -> None:
    name = _name_for(label)
    graph_sim.set_scenario("fault-mix", rate=1, seed=SEED)

    with pytest.raises(requests.ConnectionError):
        create(displayName=name)

    [community] = graph_sim.communities()
    assert community["displayName"] == name
    assert graph_sim.requests()[-1]["status"] is None
    graph_sim.set_scenario("fault-mix", rate=0, seed=SEED)
    assert [found["id"] for found in _list(graph_sim, graph, name).json()["value"]] == [community["id"]]


def test_slow_create_answers_come_after_the_client_gave_up(
    graph_sim: GraphSimulator, graph: requests.Session
) -> None:
    graph_sim.set_scenario("fault-mix", rate=1, seed=SEED, slow_seconds=0.4)
    body = {
        "displayName": _name_for("slow"),
        "privacy": "private",
        "owners@odata.bind": [f"https://graph.microsoft.com/v1.0/users/{graph_sim.users()[0]['id']}"],
    }

    with pytest.raises(requests.ReadTimeout):
        graph.post(_communities_url(graph_sim), json=body, timeout=(2, 0.1))

    assert len(graph_sim.communities()) == 1


@pytest.mark.parametrize(
    ("label", "status"), [("operation-failed", "failed"), ("operation-skipped", "skipped")]
)
def test_failed_and_skipped_operations_create_nothing(
    graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session, label: str, status: str
) -> None:
    graph_sim.set_scenario("fault-mix", rate=1, seed=SEED)
    location = create(displayName=_name_for(label)).headers["Location"]
    graph_sim.set_scenario("fault-mix", rate=0, seed=SEED)  # the outcome is bound to the operation

    assert [graph.get(location).json()["status"] for _ in range(3)] == ["notStarted", "running", status]
    assert graph_sim.communities() == []


def test_succeeded_before_the_community_is_readable(
    graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session
) -> None:
    name = _name_for("succeeded-before-readable")
    graph_sim.set_scenario("fault-mix", rate=1, seed=SEED, readable_after=45)
    location = create(displayName=name).headers["Location"]
    graph_sim.set_scenario("fault-mix", rate=0, seed=SEED)

    graph_sim.advance_clock(100)  # time before "succeeded" does not count
    [*_, done] = [graph.get(location).json() for _ in range(3)]
    assert done["status"] == "succeeded"
    community_url = f"{_communities_url(graph_sim)}/{done['resourceId']}"
    graph_sim.advance_clock(44)
    assert graph.get(community_url).status_code == 404
    assert _list(graph_sim, graph, name).json()["value"] == []
    [truth] = graph_sim.communities()  # it exists; Graph does not show it yet

    graph_sim.advance_clock(1)
    assert graph.get(community_url).json()["id"] == truth["id"] == done["resourceId"]
    assert [found["id"] for found in _list(graph_sim, graph, name).json()["value"]] == [truth["id"]]


def test_every_fault_of_the_mix_fires_on_creates(graph_sim: GraphSimulator, create: CreateFn) -> None:
    graph_sim.set_scenario("fault-mix", rate=1, seed=SEED, slow_seconds=0)
    for number in range(120):
        with contextlib.suppress(requests.ConnectionError):
            create(displayName=f"Team {number}")

    assert set(_faults(graph_sim, "create")) == {fault.label for fault in MIX_FAULTS}


def test_the_admin_api_and_the_cli_form_switch_it_on(graph_sim: GraphSimulator) -> None:
    answer = requests.post(
        f"{graph_sim.url}/_simulator/scenarios",
        json={"name": "fault-mix", "options": {"rate": "0.25", "seed": "7", "slowSeconds": "2"}},
        timeout=5,
    )
    assert answer.status_code == 201
    assert answer.json()["options"] == {"rate": 0.25, "seed": 7, "slow_seconds": 2.0, "readable_after": 40.0}
    refused = requests.post(
        f"{graph_sim.url}/_simulator/scenarios", json={"name": "fault-mix", "options": {"rate": 2}}, timeout=5
    )
    assert refused.status_code == 400
    assert "rate" in refused.json()["error"]
