"""Every scenario of the catalog, over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

from graph_simulator import SCENARIOS, GraphSimulator
from graph_simulator.scenarios import ScenarioError
from tests.graph_simulator.conftest import CreateFn
from tests.graph_simulator.helpers import community_body, get_token


def _poll_n(graph: requests.Session, url: str, count: int) -> list[dict[str, Any]]:
    return [graph.get(url).json() for _ in range(count)]


def _statuses(graph: requests.Session, url: str, count: int) -> list[str]:
    return [body["status"] for body in _poll_n(graph, url, count)]


# --- operation outcomes -------------------------------------------------------------------------------------


def test_operation_failed_with_status_detail(
    graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session
) -> None:
    graph_sim.set_scenario("operation-failed", status_detail="Group provisioning failed.")
    location = create().headers["Location"]

    bodies = _poll_n(graph, location, 4)

    assert [b["status"] for b in bodies] == ["notStarted", "running", "failed", "failed"]
    assert [b["statusDetail"] for b in bodies] == [
        None,
        None,
        "Group provisioning failed.",
        "Group provisioning failed.",
    ]
    assert bodies[-1]["resourceId"] is None
    assert bodies[-1]["resourceLocation"] is None
    assert graph_sim.communities() == []


def test_operation_failed_with_another_failure_status(
    graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session
) -> None:
    graph_sim.set_scenario("operation-failed", status="invalid", polls=1)
    assert _statuses(graph, create().headers["Location"], 1) == ["invalid"]


def test_operation_skipped(graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session) -> None:
    graph_sim.set_scenario("operation-skipped", polls=2)
    bodies = _poll_n(graph, create().headers["Location"], 2)

    assert [b["status"] for b in bodies] == ["notStarted", "skipped"]
    assert bodies[-1]["statusDetail"] == "The operation was skipped."
    assert graph_sim.communities() == []


def test_operation_unknown_status_then_success(
    graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session
) -> None:
    graph_sim.set_scenario("operation-unknown-status", status="paused", polls=4)
    assert _statuses(graph, create().headers["Location"], 4) == [
        "notStarted",
        "paused",
        "paused",
        "succeeded",
    ]
    assert len(graph_sim.communities()) == 1


def test_operation_unknown_status_forever(
    graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session
) -> None:
    graph_sim.set_scenario("operation-unknown-status", final="none")
    assert _statuses(graph, create().headers["Location"], 6)[1:] == ["unknownFutureValue"] * 5
    assert graph_sim.communities() == []


@pytest.mark.parametrize("spelling", ["inProgress", "inprogress"])
def test_operation_in_progress_spelling(
    graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session, spelling: str
) -> None:
    graph_sim.set_scenario("operation-in-progress-spelling", status=spelling)
    assert _statuses(graph, create().headers["Location"], 3) == ["notStarted", spelling, "succeeded"]


def test_operation_succeeded_without_community(
    graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session
) -> None:
    graph_sim.set_scenario("operation-succeeded-without-community", polls=1)
    [body] = _poll_n(graph, create().headers["Location"], 1)

    assert body["status"] == "succeeded"
    assert body["resourceId"]
    community = graph.get(f"{graph_sim.graph_base_url}/employeeExperience/communities/{body['resourceId']}")
    assert community.status_code == 404
    assert graph.get(body["resourceLocation"]).status_code == 404
    assert graph_sim.communities() == []


def test_operation_never_ends(graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session) -> None:
    graph_sim.set_scenario("operation-never-ends")
    statuses = _statuses(graph, create().headers["Location"], 50)
    assert statuses == ["notStarted"] + ["running"] * 49


def test_outcome_is_bound_at_create_and_times_limits_it(
    graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session
) -> None:
    graph_sim.set_scenario("operation-failed", times=1, polls=1)
    failing = create().headers["Location"]
    succeeding = create(displayName="Second").headers["Location"]
    graph_sim.clear_scenarios()

    assert _statuses(graph, failing, 1) == ["failed"]
    assert _statuses(graph, succeeding, 3)[-1] == "succeeded"
    assert graph_sim.scenarios.active() == []


# --- polling header shapes ----------------------------------------------------------------------------------


def test_no_polling_header_still_creates(graph_sim: GraphSimulator, create: CreateFn) -> None:
    graph_sim.set_scenario("no-polling-header")
    response = create()

    assert response.status_code == 202
    assert "Location" not in response.headers
    assert "Operation-Location" not in response.headers
    assert len(graph_sim.communities()) == 1


def test_relative_location_resolves_against_the_origin(
    graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session
) -> None:
    graph_sim.set_scenario("relative-location")
    location = create().headers["Location"]

    assert location.startswith("/v1.0/employeeExperience/engagementAsyncOperations('")
    assert graph.get(urljoin(graph_sim.graph_base_url, location)).status_code == 200


def test_segment_id_location(graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session) -> None:
    graph_sim.set_scenario("segment-id-location")
    location = create().headers["Location"]

    assert "('" not in location
    assert location.startswith(f"{graph_sim.graph_base_url}/employeeExperience/engagementAsyncOperations/eyJ")
    assert graph.get(location).json()["status"] == "notStarted"


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("operation-location-only", {"Operation-Location"}),
        ("both-polling-headers", {"Location", "Operation-Location"}),
    ],
)
def test_polling_header_names(
    graph_sim: GraphSimulator, create: CreateFn, scenario: str, expected: set[str]
) -> None:
    graph_sim.set_scenario(scenario)
    response = create()
    assert {name for name in ("Location", "Operation-Location") if name in response.headers} == expected


def test_foreign_location_points_the_polling_url_to_another_origin(
    graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session
) -> None:
    graph_sim.set_scenario("foreign-location")
    location = create().headers["Location"]

    # Default origin: a port where nothing listens. The path is a normal Location's: only the origin differs.
    assert location.startswith("http://127.0.0.1:1/v1.0/employeeExperience/engagementAsyncOperations('")
    assert len(graph_sim.communities()) == 1  # Graph accepted the create
    same_operation_here = location.replace("http://127.0.0.1:1", graph_sim.url)
    assert graph.get(same_operation_here).json()["status"] == "notStarted"


def test_foreign_location_follows_the_configured_polling_headers(
    graph_sim_factory: Callable[..., GraphSimulator],
) -> None:
    sim = graph_sim_factory(operation_header="both")
    sim.set_scenario("foreign-location", origin="https://evil.example:8443/", times=1)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {get_token(sim)}"
    url = f"{sim.graph_base_url}/employeeExperience/communities"

    first = session.post(url, json=community_body(), timeout=5)
    second = session.post(url, json=community_body(displayName="Second"), timeout=5)

    for name in ("Location", "Operation-Location"):
        assert first.headers[name].startswith("https://evil.example:8443/v1.0/employeeExperience/")
        assert second.headers[name].startswith(sim.url + "/v1.0/")  # times=1


def test_foreign_next_link_points_list_pages_to_another_origin(
    graph_sim: GraphSimulator, graph: requests.Session
) -> None:
    url = f"{graph_sim.graph_base_url}/employeeExperience/communities"
    graph_sim.set_scenario("foreign-next-link", origin="http://127.0.0.1:9", times=1)
    graph_sim.add_community("Alone")

    single_page = graph.get(url, timeout=5).json()
    assert "@odata.nextLink" not in single_page
    assert graph_sim.scenarios.active()[0]["remaining"] == 1  # only a page with a next link uses it up

    for index in range(24):
        graph_sim.add_community(f"Crowd {index}")
    first = graph.get(url, timeout=5).json()
    next_link = first["@odata.nextLink"]
    assert next_link.startswith("http://127.0.0.1:9/v1.0/employeeExperience/communities?")
    assert "$skiptoken" in next_link
    # Only the origin is foreign: the same link on the simulator's own origin is the real next page.
    second = graph.get(next_link.replace("http://127.0.0.1:9", graph_sim.url), timeout=5).json()
    assert len(first["value"]) + len(second["value"]) == 25
    assert graph_sim.scenarios.active() == []


@pytest.mark.parametrize(
    "origin", ["ftp://127.0.0.1:21", "http://127.0.0.1:9/v1.0", "127.0.0.1:9", "http://"]
)
def test_foreign_origin_must_be_an_origin(graph_sim: GraphSimulator, origin: str) -> None:
    with pytest.raises(ScenarioError, match="origin"):
        graph_sim.set_scenario("foreign-location", origin=origin)


# --- Retry-After on successful answers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("on", "on_create", "on_polls"),
    [("both", "75", ["75", "75"]), ("create", "75", [None, None]), ("operation", None, ["75", "75"])],
)
def test_operation_retry_after_on_successful_answers(
    graph_sim: GraphSimulator,
    create: CreateFn,
    graph: requests.Session,
    on: str,
    on_create: str | None,
    on_polls: list[str | None],
) -> None:
    graph_sim.set_scenario("operation-retry-after", retry_after=75, on=on)
    created = create()
    polls = [graph.get(created.headers["Location"]) for _ in range(2)]

    assert created.status_code == 202
    assert created.headers.get("Retry-After") == on_create
    assert [poll.status_code for poll in polls] == [200, 200]
    assert [poll.headers.get("Retry-After") for poll in polls] == on_polls


def test_operation_retry_after_default_is_60_on_both_for_every_answer(
    graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session
) -> None:
    assert graph_sim.set_scenario("operation-retry-after")["remaining"] is None
    created = create()
    assert created.headers["Retry-After"] == "60"
    assert {graph.get(created.headers["Location"]).headers["Retry-After"] for _ in range(4)} == {"60"}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"retry_after": 2.128}, "2.128"),
        ({"retry_after": 2.128, "form": "seconds"}, "3"),
        ({"form": "none"}, None),
    ],
)
def test_operation_retry_after_forms(
    graph_sim: GraphSimulator, create: CreateFn, options: dict[str, Any], expected: str | None
) -> None:
    graph_sim.set_scenario("operation-retry-after", on="create", **options)
    assert create().headers.get("Retry-After") == expected


def test_operation_retry_after_as_http_date_uses_the_simulator_clock(
    graph_sim: GraphSimulator, create: CreateFn
) -> None:
    graph_sim.advance_clock(3600)
    graph_sim.set_scenario("operation-retry-after", retry_after=120, form="http-date")
    when = parsedate_to_datetime(create().headers["Retry-After"]).timestamp()
    assert graph_sim.now() + 118 <= when <= graph_sim.now() + 121


def test_operation_retry_after_counts_answers_and_skips_errors_and_other_routes(
    graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session
) -> None:
    location = create().headers["Location"]
    graph_sim.set_scenario("throttle", retry_after=1, route="operation", times=1)
    graph_sim.set_scenario("operation-retry-after", retry_after=45, times=2)

    listed = graph.get(f"{graph_sim.graph_base_url}/employeeExperience/communities", timeout=5)
    polls = [graph.get(location) for _ in range(4)]

    assert "Retry-After" not in listed.headers
    # The 429 keeps its own Retry-After and does not use up the scenario; two successes carry it, then none.
    assert [(p.status_code, p.headers.get("Retry-After")) for p in polls] == [
        (429, "1"),
        (200, "45"),
        (200, "45"),
        (200, None),
    ]


# --- duplicate names ----------------------------------------------------------------------------------------


def test_duplicate_names_are_allowed_by_default(graph_sim: GraphSimulator, create: CreateFn) -> None:
    graph_sim.add_community("Financial Advice for Software Engineers")
    assert create().status_code == 202
    assert len(graph_sim.communities()) == 2


def test_duplicate_name_conflict(graph_sim: GraphSimulator, create: CreateFn) -> None:
    graph_sim.add_community("Financial Advice for Software Engineers")
    graph_sim.set_scenario("duplicate-name-conflict")

    response = create()

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "nameAlreadyExists"
    assert create(displayName="Fresh name").status_code == 202


# --- faults -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, "1"),
        ({"retry_after": 2.128}, "2.128"),
        ({"retryAfter": "2.128", "form": "seconds"}, "3"),
        ({"retry_after": 7}, "7"),
    ],
)
def test_throttle_retry_after_seconds(
    graph_sim: GraphSimulator, create: CreateFn, options: dict[str, Any], expected: str
) -> None:
    graph_sim.set_scenario("throttle", route="create", **options)

    response = create()

    assert response.status_code == 429
    assert response.headers["Retry-After"] == expected
    error = response.json()["error"]
    assert error["code"] == "TooManyRequests"
    assert error["message"] == "Please retry again later."
    assert error["innerError"]["code"] == "429"
    assert error["innerError"]["status"] == "429"
    assert graph_sim.communities() == []
    assert create().status_code == 202  # times=1 by default


def test_throttle_http_date_uses_the_simulator_clock(graph_sim: GraphSimulator, create: CreateFn) -> None:
    graph_sim.set_scenario("throttle", retry_after=120, form="http-date")
    response = create()

    when = parsedate_to_datetime(response.headers["Retry-After"]).timestamp()
    assert graph_sim.now() + 118 <= when <= graph_sim.now() + 121


def test_throttle_without_retry_after(graph_sim: GraphSimulator, create: CreateFn) -> None:
    graph_sim.set_scenario("throttle", form="none")
    response = create()
    assert response.status_code == 429
    assert "Retry-After" not in response.headers


def test_fault_targets_only_its_route_for_times_requests(
    graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session
) -> None:
    location = create().headers["Location"]
    graph_sim.set_scenario("throttle", route="operation", times=2)

    assert create(displayName="Other").status_code == 202
    assert [graph.get(location).status_code for _ in range(3)] == [429, 429, 200]
    assert graph.get(location).json()["status"] == "running"  # throttled polls are not counted


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_error(graph_sim: GraphSimulator, create: CreateFn, status: int) -> None:
    graph_sim.set_scenario("server-error", status=status, route="create", times=2)

    responses = [create() for _ in range(3)]

    assert [r.status_code for r in responses] == [status, status, 202]
    assert responses[0].json()["error"]["innerError"]["request-id"] == responses[0].headers["request-id"]
    assert len(graph_sim.communities()) == 1


def test_server_error_with_retry_after(graph_sim: GraphSimulator, create: CreateFn) -> None:
    graph_sim.set_scenario("server-error", status=503, retry_after=2.5)
    response = create()
    assert response.headers["Retry-After"] == "2.5"
    assert response.json()["error"]["code"] == "serviceNotAvailable"


def test_http_error(graph_sim: GraphSimulator, create: CreateFn) -> None:
    graph_sim.set_scenario("http-error", status=403, code="Authorization_RequestDenied", message="Nope.")
    response = create()
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Authorization_RequestDenied"
    assert response.json()["error"]["message"] == "Nope."


def test_connection_reset_after_create_is_ambiguous(graph_sim: GraphSimulator, create: CreateFn) -> None:
    graph_sim.set_scenario("connection-reset", route="create")

    with pytest.raises(requests.ConnectionError):
        create()

    assert len(graph_sim.communities()) == 1  # the response was lost, the community exists
    assert graph_sim.requests()[-1]["status"] is None
    assert create(displayName="Next").status_code == 202


def test_connection_reset_without_commit_creates_nothing(graph_sim: GraphSimulator, create: CreateFn) -> None:
    graph_sim.set_scenario("connection-reset", route="create", commit=False)

    with pytest.raises(requests.ConnectionError):
        create()

    assert graph_sim.communities() == []


def test_reset_poll_is_counted_when_committed(
    graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session
) -> None:
    location = create().headers["Location"]
    graph_sim.set_scenario("connection-reset", route="operation")

    with pytest.raises(requests.ConnectionError):
        graph.get(location)

    assert graph.get(location).json()["status"] == "running"


def test_slow_response_is_delayed_but_processed(graph_sim: GraphSimulator, graph: requests.Session) -> None:
    graph_sim.set_scenario("slow", route="create", seconds=0.6)
    url = f"{graph_sim.graph_base_url}/employeeExperience/communities"

    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        graph.post(url, json=community_body(), timeout=(2, 0.2))

    assert len(graph_sim.communities()) == 1  # a read timeout after sending is ambiguous too
    graph_sim.set_scenario("slow", seconds=0.3)
    assert graph.post(url, json=community_body(displayName="B"), timeout=5).status_code == 202
    assert time.monotonic() - started >= 0.3


def test_malformed_json(graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session) -> None:
    location = create().headers["Location"]
    graph_sim.set_scenario("malformed-json", route="operation")

    broken = graph.get(location)

    assert broken.status_code == 200
    assert broken.headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError, match=r"Expecting|Unterminated"):
        broken.json()
    assert graph.get(location).json()["status"] == "running"  # the broken poll still counted


def test_faults_on_the_token_endpoint_only_when_named(graph_sim: GraphSimulator) -> None:
    graph_sim.set_scenario("server-error", status=500)  # route any: Graph routes only
    get_token(graph_sim)
    graph_sim.clear_scenarios()
    graph_sim.set_scenario("server-error", status=500, route="token")

    with pytest.raises(requests.HTTPError):
        get_token(graph_sim)


# --- engine -------------------------------------------------------------------------------------------------


def test_several_scenarios_at_once(
    graph_sim: GraphSimulator, create: CreateFn, graph: requests.Session
) -> None:
    graph_sim.set_scenario("operation-skipped", polls=1)
    graph_sim.set_scenario("segment-id-location")
    graph_sim.set_scenario("throttle", route="operation")

    location = create().headers["Location"]

    assert "/engagementAsyncOperations/" in location
    assert graph.get(location).status_code == 429
    assert graph.get(location).json()["status"] == "skipped"


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("no-such-scenario", {}),
        ("throttle", {"colour": "red"}),
        ("throttle", {"times": 0}),
        ("throttle", {"form": "weekly"}),
        ("server-error", {"status": 200}),
        ("slow", {"seconds": 60}),
        ("connection-reset", {"commit": "maybe"}),
        ("connection-reset", {"how": "slam"}),
        ("operation-succeeded-without-community", {"readable_after": "soon"}),
        ("fault-mix", {"rate": 1.5}),
        ("fault-mix", {"seed": "random"}),
        ("throttle", {"route": "elsewhere"}),
    ],
)
def test_bad_scenarios_are_refused_with_a_clear_error(
    graph_sim: GraphSimulator, name: str, options: dict[str, Any]
) -> None:
    with pytest.raises(ScenarioError):
        graph_sim.set_scenario(name, **options)
    assert graph_sim.scenarios.active() == []


def test_set_scenario_reports_options_and_remaining(graph_sim: GraphSimulator) -> None:
    active = graph_sim.set_scenario("throttle", times="3", retryAfter="2.128")
    assert active == {
        "name": "throttle",
        "options": {"retry_after": 2.128, "form": "auto", "route": "any"},
        "remaining": 3,
    }
    assert graph_sim.set_scenario("operation-never-ends")["remaining"] is None


def test_catalog_is_complete() -> None:
    assert set(SCENARIOS) == {
        "operation-failed",
        "operation-skipped",
        "operation-unknown-status",
        "operation-in-progress-spelling",
        "operation-succeeded-without-community",
        "operation-never-ends",
        "no-polling-header",
        "relative-location",
        "segment-id-location",
        "operation-location-only",
        "both-polling-headers",
        "foreign-location",
        "foreign-next-link",
        "operation-retry-after",
        "duplicate-name-conflict",
        "throttle",
        "server-error",
        "http-error",
        "connection-reset",
        "slow",
        "malformed-json",
        "rate-limit",
        "fault-mix",
    }
