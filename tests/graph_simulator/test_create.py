"""POST /employeeExperience/communities: the 202 and its polling header, and Graph-like validation."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import requests

from graph_simulator import SEED_USERS, GraphSimulator
from tests.graph_simulator.conftest import CreateFn
from tests.graph_simulator.helpers import community_body, decode_id, get_token, owner_bind

_KEY_FORM = re.compile(
    r"^(?P<base>.+)/employeeExperience/engagementAsyncOperations\('(?P<id>[A-Za-z0-9_-]+)'\)$"
)


def test_create_answers_202_with_no_body_and_a_location_in_key_form(
    graph_sim: GraphSimulator, create: CreateFn
) -> None:
    response = create()

    assert response.status_code == 202
    assert response.content == b""
    assert response.headers["Content-Type"] == "application/json"
    assert "Operation-Location" not in response.headers  # what Graph really sends: Location only
    match = _KEY_FORM.match(response.headers["Location"])
    assert match is not None
    assert match.group("base") == graph_sim.graph_base_url


def test_operation_id_is_base64url_json_without_padding(create: CreateFn) -> None:
    match = _KEY_FORM.match(create().headers["Location"])
    assert match is not None
    op_id = match.group("id")

    assert "=" not in op_id
    decoded = decode_id(op_id)
    assert decoded == {"_type": "LongRunningOperation", "id": decoded["id"], "operation": "CreateCommunity"}
    uuid.UUID(decoded["id"])


def test_beta_create_points_to_beta(graph_sim: GraphSimulator, create: CreateFn) -> None:
    response = create(version="beta", **{"owners@odata.bind": [owner_bind(version="beta")]})

    assert response.status_code == 202
    assert response.headers["Location"].startswith(f"{graph_sim.url}/beta/employeeExperience/")


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("location", {"Location"}),
        ("operation-location", {"Operation-Location"}),
        ("both", {"Location", "Operation-Location"}),
    ],
)
def test_operation_header_option(setting: str, expected: set[str]) -> None:
    with GraphSimulator(operation_header=setting) as sim:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {get_token(sim)}"
        response = session.post(f"{sim.graph_base_url}/employeeExperience/communities", json=community_body())

    present = {name for name in ("Location", "Operation-Location") if name in response.headers}
    assert present == expected
    assert len({response.headers[name] for name in present}) == 1


def test_create_makes_the_community_with_owners_as_group_members(
    graph_sim: GraphSimulator, create: CreateFn
) -> None:
    second = SEED_USERS[1]["id"]
    create(**{"owners@odata.bind": [owner_bind(), owner_bind(second), owner_bind()]})

    [community] = graph_sim.communities()
    assert community["displayName"] == "Financial Advice for Software Engineers"
    assert community["privacy"] == "public"
    assert graph_sim.group_members(community["groupId"]) == [SEED_USERS[0]["id"], second]


def test_odata_type_annotation_is_accepted_and_ignored(create: CreateFn) -> None:
    response = create(**{"@odata.type": "#microsoft.graph.community"})
    assert response.status_code == 202


def test_owner_urls_may_use_the_simulators_origin_or_directory_objects(
    graph_sim: GraphSimulator, create: CreateFn
) -> None:
    owners = [
        f"{graph_sim.url}/v1.0/users/{SEED_USERS[0]['id']}",
        f"https://graph.microsoft.com/beta/directoryObjects/{SEED_USERS[1]['id']}",
    ]
    assert create(**{"owners@odata.bind": owners}).status_code == 202


def test_description_may_be_null(create: CreateFn) -> None:
    assert create(description=None).status_code == 202


@pytest.mark.parametrize(
    ("overrides", "message_part"),
    [
        ({"displayName": ""}, "displayName"),
        ({"displayName": "x" * 256}, "displayName"),
        ({"displayName": None}, "displayName"),
        ({"description": "x" * 1025}, "description"),
        ({"privacy": "secret"}, "privacy"),
        ({"privacy": "unknownFutureValue"}, "privacy"),
        ({"privacy": None}, "privacy"),
        ({"owners@odata.bind": []}, "owners@odata.bind"),
        ({"owners@odata.bind": None}, "owners@odata.bind"),
        ({"owners@odata.bind": ["26be1845-4119-4801-a799-aea79d09f1a2"]}, "owners@odata.bind"),
        (
            {
                "owners@odata.bind": [
                    "https://evil.example.com/v1.0/users/26be1845-4119-4801-a799-aea79d09f1a2"
                ]
            },
            "URL",
        ),
        ({"owners@odata.bind": [owner_bind()] * 101}, "100"),
        ({"visibility": "public"}, "visibility"),
    ],
)
def test_invalid_create_is_400_naming_the_problem(
    graph_sim: GraphSimulator, create: CreateFn, overrides: dict[str, Any], message_part: str
) -> None:
    response = create(**overrides)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "BadRequest"
    assert message_part in error["message"]
    assert graph_sim.communities() == []


def test_exactly_255_and_1024_characters_are_allowed(create: CreateFn) -> None:
    assert create(displayName="x" * 255, description="y" * 1024).status_code == 202


def test_exactly_100_owners_are_allowed(graph_sim: GraphSimulator, create: CreateFn) -> None:
    owners = []
    for index in range(100):
        user_id = str(uuid.uuid4())
        graph_sim.add_user(user_id, f"owner{index}@contoso.onmicrosoft.com", f"Owner {index}")
        owners.append(owner_bind(user_id))
    assert create(**{"owners@odata.bind": owners}).status_code == 202


def test_owner_missing_from_the_directory_is_404(graph_sim: GraphSimulator, create: CreateFn) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    response = create(**{"owners@odata.bind": [owner_bind(missing)]})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "Request_ResourceNotFound"
    assert missing in response.json()["error"]["message"]
    assert graph_sim.communities() == []


def test_body_that_is_not_json_is_400(graph_sim: GraphSimulator, graph: requests.Session) -> None:
    response = graph.post(
        f"{graph_sim.graph_base_url}/employeeExperience/communities",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"


def test_errors_carry_graph_error_json_and_request_ids(
    graph_sim: GraphSimulator, graph: requests.Session
) -> None:
    client_request_id = str(uuid.uuid4())
    response = graph.post(
        f"{graph_sim.graph_base_url}/employeeExperience/communities",
        json=community_body(displayName=""),
        headers={"client-request-id": client_request_id},
    )

    assert response.headers["client-request-id"] == client_request_id
    request_id = response.headers["request-id"]
    uuid.UUID(request_id)
    error = response.json()["error"]
    assert set(error) == {"code", "message", "innerError"}
    inner = error["innerError"]
    assert inner["request-id"] == request_id
    assert inner["client-request-id"] == client_request_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", inner["date"])


def test_successful_responses_also_carry_request_ids(graph_sim: GraphSimulator, create: CreateFn) -> None:
    response = create()
    uuid.UUID(response.headers["request-id"])
    uuid.UUID(response.headers["client-request-id"])  # generated when the caller sends none
