"""Create a community and follow its operation, against the Graph simulator over real HTTP."""

from __future__ import annotations

import re
import uuid

import pytest

from graph_simulator import GraphSimulator
from provisioning.graph import ErrorKind, GraphClient, GraphError, OperationState, OperationStatus
from provisioning.graph.version import USER_AGENT

from .conftest import graph_requests

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def poll_to_end(client: GraphClient, operation_url: str, limit: int = 30) -> list[OperationStatus]:
    seen = []
    for _ in range(limit):
        status = client.get_operation(operation_url)
        seen.append(status)
        if status.state is not OperationState.IN_PROGRESS:
            break
    return seen


def test_create_poll_and_read_the_community(
    graph_sim: GraphSimulator, client: GraphClient, owner_id: str
) -> None:
    created = client.create_community("Finance Guild", "Money talk", "private", [owner_id])

    assert created.operation_url.startswith(
        graph_sim.graph_base_url + "/employeeExperience/engagementAsyncOperations"
    )
    assert UUID4.match(created.client_request_id)
    [post] = graph_requests(graph_sim, "POST")
    assert post["path"] == "/v1.0/employeeExperience/communities"
    assert created.request_id  # Graph's request-id header of the create

    statuses = poll_to_end(client, created.operation_url)
    assert [s.raw_status for s in statuses[:-1]]
    assert all(s.raw_status in ("notStarted", "running") for s in statuses[:-1])
    final = statuses[-1]
    assert (final.state, final.raw_status, final.is_unknown) == (OperationState.SUCCEEDED, "succeeded", False)
    assert final.resource_id
    assert final.resource_location
    assert final.resource_id in final.resource_location
    assert final.request_id

    community = client.get_community(final.resource_id)
    assert (community.display_name, community.description, community.privacy) == (
        "Finance Guild",
        "Money talk",
        "private",
    )
    assert community.group_id
    assert community.to_dict()["groupId"] == community.group_id
    [stored] = graph_sim.communities()
    assert stored["displayName"] == "Finance Guild"


def test_owners_are_bound_with_the_base_urls_origin_and_version(
    graph_sim: GraphSimulator, graph_env: dict[str, str], owner_id: str
) -> None:
    # The simulator rejects bind URLs that are not {origin}/{version}/users/{id}; beta must work as well.
    client = GraphClient(graph_sim.url + "/beta")
    created = client.create_community("Beta Guild", None, "public", [owner_id])
    assert "/beta/employeeExperience/engagementAsyncOperations" in created.operation_url
    assert poll_to_end(client, created.operation_url)[-1].state is OperationState.SUCCEEDED
    [post] = graph_requests(graph_sim, "POST")
    assert post["path"] == "/beta/employeeExperience/communities"


def test_every_request_carries_fresh_ids_user_agent_and_json_accept(
    graph_sim: GraphSimulator, client: GraphClient, owner_id: str
) -> None:
    created = client.create_community("Headers", None, "private", [owner_id])
    client.get_operation(created.operation_url)
    client.get_operation(created.operation_url)
    entries = graph_requests(graph_sim)
    assert len(entries) == 3
    ids = []
    for entry in entries:
        headers = {name.lower(): value for name, value in entry["headers"].items()}
        assert headers["user-agent"] == USER_AGENT
        assert "application/json" in headers["accept"]
        assert UUID4.match(headers["client-request-id"])
        ids.append(headers["client-request-id"])
    assert len(set(ids)) == 3
    assert ids[0] == created.client_request_id


@pytest.mark.parametrize(
    ("scenario", "form"),
    [
        (None, "key"),  # default: Location, absolute, ('id')
        ("operation-location-only", "key"),
        ("both-polling-headers", "key"),
        ("relative-location", "key"),
        ("segment-id-location", "segment"),
    ],
)
def test_polling_header_forms(
    graph_sim: GraphSimulator, client: GraphClient, owner_id: str, scenario: str | None, form: str
) -> None:
    if scenario:
        graph_sim.set_scenario(scenario)
    created = client.create_community(f"Header form {scenario}", None, "private", [owner_id])
    assert created.operation_url.startswith(
        graph_sim.graph_base_url + "/employeeExperience/engagementAsyncOperations"
    )
    assert ("('" in created.operation_url) is (form == "key")
    assert poll_to_end(client, created.operation_url)[-1].state is OperationState.SUCCEEDED
    # The URL is used as given: the simulator saw the very form it handed out.
    polls = graph_requests(graph_sim, "GET", "engagementAsyncOperations")
    assert polls
    assert all(("('" in p["path"] or "%28%27" in p["path"]) is (form == "key") for p in polls)


def test_get_operation_accepts_a_relative_url(
    graph_sim: GraphSimulator, client: GraphClient, owner_id: str
) -> None:
    created = client.create_community("Relative poll", None, "private", [owner_id])
    relative = created.operation_url.removeprefix(graph_sim.graph_base_url)
    assert relative.startswith("/employeeExperience/")
    assert client.get_operation(relative).raw_status in ("notStarted", "running", "succeeded")
    assert client.get_operation(relative.lstrip("/")).raw_status in ("notStarted", "running", "succeeded")


def test_create_without_polling_header_is_ambiguous(
    graph_sim: GraphSimulator, client: GraphClient, owner_id: str
) -> None:
    graph_sim.set_scenario("no-polling-header")
    with pytest.raises(GraphError) as caught:
        client.create_community("Headless", None, "private", [owner_id])
    error = caught.value
    assert error.kind is ErrorKind.AMBIGUOUS
    assert error.code == "MissingOperationLocation"
    assert error.http_status == 202
    assert error.request_id
    # Why ambiguous and not permanent: Graph did accept it and the community does appear.
    assert [c["displayName"] for c in graph_sim.communities()] == ["Headless"]


def test_polling_url_on_another_origin_is_refused_without_sending_the_token(
    graph_sim: GraphSimulator, client: GraphClient, owner_id: str
) -> None:
    created = client.create_community("Guarded", None, "private", [owner_id])
    with GraphSimulator(host="127.0.0.1", port=0) as elsewhere:
        foreign = created.operation_url.replace(graph_sim.url, elsewhere.url)
        with pytest.raises(GraphError) as caught:
            client.get_operation(foreign)
        assert caught.value.kind is ErrorKind.PERMANENT
        assert caught.value.code == "UntrustedGraphUrl"
        assert elsewhere.requests() == []
    assert graph_requests(graph_sim, "GET") == []


def test_create_on_a_foreign_origin_is_refused_and_nothing_reaches_it(
    graph_sim: GraphSimulator, client: GraphClient, owner_id: str
) -> None:
    with GraphSimulator() as elsewhere:
        graph_sim.set_scenario("foreign-location", origin=elsewhere.url)
        with pytest.raises(GraphError) as caught:
            client.create_community("Hijacked", None, "private", [owner_id])
        error = caught.value
        # Permanent (we will not follow that URL), but Graph accepted the create: the message says so.
        assert (error.kind, error.code, error.http_status) == (ErrorKind.PERMANENT, "UntrustedGraphUrl", 202)
        assert error.request_id == graph_requests(graph_sim, "POST")[0]["requestId"]
        assert elsewhere.url in error.message
        assert "may still be created" in error.message
        assert elsewhere.requests() == []  # no token request, no Graph request: nothing at all
    assert [c["displayName"] for c in graph_sim.communities()] == ["Hijacked"]
    assert graph_requests(graph_sim, "GET") == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"retry_after": 75}, 75.0),
        ({"retry_after": 2.128, "form": "fractional"}, 2.128),
        ({"retry_after": 2.128, "form": "seconds"}, 3.0),
        ({"form": "none"}, None),
    ],
)
def test_retry_after_of_successful_create_and_polls_is_kept(
    graph_sim: GraphSimulator,
    client: GraphClient,
    owner_id: str,
    options: dict[str, object],
    expected: float | None,
) -> None:
    graph_sim.set_scenario("operation-retry-after", **options)
    created = client.create_community("Patient", None, "private", [owner_id])
    statuses = poll_to_end(client, created.operation_url)

    assert created.retry_after_seconds == (None if expected is None else pytest.approx(expected))
    assert created.to_dict()["retryAfterSeconds"] == created.retry_after_seconds
    assert [s.retry_after_seconds for s in statuses] == [created.retry_after_seconds] * len(statuses)
    assert statuses[-1].to_dict()["retryAfterSeconds"] == created.retry_after_seconds


def test_retry_after_as_http_date_on_a_poll(
    graph_sim: GraphSimulator, client: GraphClient, owner_id: str
) -> None:
    graph_sim.set_scenario("operation-retry-after", retry_after=120, form="http-date", on="operation")
    created = client.create_community("Dated", None, "private", [owner_id])
    status = client.get_operation(created.operation_url)

    assert created.retry_after_seconds is None  # on=operation: the 202 carries none
    # An HTTP date has whole-second precision and is taken relative to now.
    assert status.retry_after_seconds is not None
    assert 115 <= status.retry_after_seconds <= 121


def test_without_retry_after_successful_answers_have_none(
    graph_sim: GraphSimulator, client: GraphClient, owner_id: str
) -> None:
    created = client.create_community("Plain", None, "private", [owner_id])
    assert created.retry_after_seconds is None
    assert client.get_operation(created.operation_url).retry_after_seconds is None


@pytest.mark.parametrize(
    ("scenario", "options", "raw_final", "state"),
    [
        ("operation-failed", {}, "failed", OperationState.FAILED),
        ("operation-failed", {"status": "invalid"}, "invalid", OperationState.FAILED),
        ("operation-skipped", {}, "skipped", OperationState.FAILED),
    ],
)
def test_failed_operations_keep_their_detail(
    graph_sim: GraphSimulator,
    client: GraphClient,
    owner_id: str,
    scenario: str,
    options: dict[str, str],
    raw_final: str,
    state: OperationState,
) -> None:
    graph_sim.set_scenario(scenario, **options)
    created = client.create_community(f"Doomed {raw_final}", None, "private", [owner_id])
    final = poll_to_end(client, created.operation_url)[-1]
    assert (final.state, final.raw_status, final.is_unknown) == (state, raw_final, False)
    assert final.status_detail
    assert final.resource_id is None


@pytest.mark.parametrize("spelling", ["inProgress", "inprogress", "INPROGRESS"])
def test_in_progress_spellings(
    graph_sim: GraphSimulator, client: GraphClient, owner_id: str, spelling: str
) -> None:
    graph_sim.set_scenario("operation-in-progress-spelling", status=spelling, polls=3)
    created = client.create_community(f"Spelling {spelling}", None, "private", [owner_id])
    statuses = poll_to_end(client, created.operation_url)
    assert spelling in [s.raw_status for s in statuses]
    assert all(s.state is OperationState.IN_PROGRESS and not s.is_unknown for s in statuses[:-1])
    assert statuses[-1].state is OperationState.SUCCEEDED


def test_unknown_status_stays_in_progress_but_is_flagged(
    graph_sim: GraphSimulator, client: GraphClient, owner_id: str
) -> None:
    graph_sim.set_scenario("operation-unknown-status", status="unknownFutureValue", polls=3)
    created = client.create_community("Future", None, "private", [owner_id])
    statuses = poll_to_end(client, created.operation_url)
    unknown = [s for s in statuses if s.raw_status == "unknownFutureValue"]
    assert unknown
    assert all(s.state is OperationState.IN_PROGRESS and s.is_unknown for s in unknown)
    assert statuses[-1].state is OperationState.SUCCEEDED
    assert not statuses[-1].is_unknown


def test_operation_that_never_ends_stays_in_progress(
    graph_sim: GraphSimulator, client: GraphClient, owner_id: str
) -> None:
    graph_sim.set_scenario("operation-never-ends")
    created = client.create_community("Forever", None, "private", [owner_id])
    statuses = poll_to_end(client, created.operation_url, limit=8)
    assert len(statuses) == 8
    assert all(s.state is OperationState.IN_PROGRESS for s in statuses)


def test_succeeded_without_community_reads_as_not_found(
    graph_sim: GraphSimulator, client: GraphClient, owner_id: str
) -> None:
    graph_sim.set_scenario("operation-succeeded-without-community")
    created = client.create_community("Phantom", None, "private", [owner_id])
    final = poll_to_end(client, created.operation_url)[-1]
    assert final.state is OperationState.SUCCEEDED
    assert final.resource_id
    with pytest.raises(GraphError) as caught:
        client.get_community(final.resource_id)
    assert caught.value.kind is ErrorKind.PERMANENT
    assert caught.value.is_not_found
    assert caught.value.http_status == 404
    assert caught.value.request_id


def test_graph_validation_errors_are_permanent_with_graphs_code(client: GraphClient) -> None:
    with pytest.raises(GraphError) as caught:
        client.create_community("No owners", None, "private", [])
    error = caught.value
    assert (error.kind, error.http_status, error.code) == (ErrorKind.PERMANENT, 400, "BadRequest")
    assert "owners" in error.message
    assert error.request_id
    uuid.UUID(error.client_request_id or "")
