"""Viva Engage's rate limit (10 requests per 30 s per app) measured with an injected manual clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from graph_simulator import SEED_USERS, GraphSimulator


class ManualClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sim(clock: ManualClock) -> Iterator[GraphSimulator]:
    with GraphSimulator(clock=clock) as simulator:
        simulator.set_scenario("rate-limit")
        yield simulator


def _session(sim: GraphSimulator, client_id: str | None = None) -> requests.Session:
    params = {"api-version": "2019-08-01", "resource": "https://graph.microsoft.com"}
    if client_id:
        params["client_id"] = client_id
    token = requests.get(
        sim.identity_endpoint, params=params, headers={"X-IDENTITY-HEADER": sim.identity_header}, timeout=5
    ).json()["access_token"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def test_eleventh_request_within_30_seconds_is_429(sim: GraphSimulator, clock: ManualClock) -> None:
    graph = _session(sim)
    url = f"{sim.graph_base_url}/employeeExperience/communities"
    codes = []
    for _ in range(10):
        codes.append(graph.get(url).status_code)
        clock.now += 1
    clock.now -= 1  # the 10th request was at +9 s

    throttled = graph.get(url)

    assert codes == [200] * 10
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "21"  # the first request leaves the window at +30 s
    assert throttled.json()["error"]["code"] == "TooManyRequests"

    clock.now += 20.5
    assert graph.get(url).status_code == 429
    clock.now += 0.5
    assert graph.get(url).status_code == 200


def test_every_engage_route_counts_but_directory_calls_do_not(sim: GraphSimulator) -> None:
    graph = _session(sim)
    community = sim.add_community("Counted")
    engage = f"{sim.graph_base_url}/employeeExperience/communities"
    for _ in range(20):
        assert graph.get(f"{sim.graph_base_url}/users/{SEED_USERS[0]['id']}").status_code == 200
    for _ in range(5):
        assert graph.get(engage).status_code == 200
        assert graph.get(f"{engage}/{community['id']}").status_code == 200

    assert graph.get(engage).status_code == 429


def test_limit_is_per_app(sim: GraphSimulator) -> None:
    first_app = _session(sim)
    second_app = _session(sim, client_id="9d5b7c3e-1f2a-4b6c-8d0e-2a4c6e8f0a1b")
    url = f"{sim.graph_base_url}/employeeExperience/communities"
    for _ in range(10):
        first_app.get(url)

    assert first_app.get(url).status_code == 429
    assert second_app.get(url).status_code == 200


def test_options_and_admin_clock(clock: ManualClock) -> None:
    with GraphSimulator(clock=clock) as sim:
        sim.set_scenario("rate-limit", limit=2, window=10, form="fractional")
        graph = _session(sim)
        url = f"{sim.graph_base_url}/employeeExperience/communities"
        graph.get(url)
        clock.now += 2.25
        graph.get(url)

        throttled = graph.get(url)
        requests.post(f"{sim.url}/_simulator/clock", json={"advanceSeconds": 7.75}, timeout=5)
        after = graph.get(url)

    assert throttled.headers["Retry-After"] == "7.75"
    assert after.status_code == 200


def test_request_log_times_come_from_the_clock(sim: GraphSimulator, clock: ManualClock) -> None:
    graph = _session(sim)
    sim.clear_requests()
    url = f"{sim.graph_base_url}/employeeExperience/communities"
    graph.get(url)
    clock.now += 31
    graph.get(url)

    times = [entry["time"] for entry in sim.requests()]
    assert times[1] - times[0] == 31
