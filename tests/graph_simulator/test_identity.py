"""Managed identity endpoint (App Service protocol) and Graph's 401 without a token from it."""

from __future__ import annotations

import pytest
import requests
from azure.identity import DefaultAzureCredential

from graph_simulator import GraphSimulator
from tests.graph_simulator.helpers import get_token

# Anything that would make DefaultAzureCredential pick another credential than the managed identity.
_OTHER_CREDENTIAL_VARS = (
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_TENANT_ID",
    "AZURE_USERNAME",
    "AZURE_FEDERATED_TOKEN_FILE",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "IMDS_ENDPOINT",
)


def _token_request(sim: GraphSimulator, **params: str) -> requests.Response:
    query = {"api-version": "2019-08-01", "resource": "https://graph.microsoft.com", **params}
    return requests.get(
        sim.identity_endpoint, params=query, headers={"X-IDENTITY-HEADER": sim.identity_header}, timeout=5
    )


@pytest.mark.parametrize("client_id", [None, "0c1d2e3f-4a5b-4c6d-8e9f-a0b1c2d3e4f5"])
def test_default_azure_credential_gets_a_token_that_graph_accepts(
    graph_sim: GraphSimulator, monkeypatch: pytest.MonkeyPatch, client_id: str | None
) -> None:
    for name in (*_OTHER_CREDENTIAL_VARS, "AZURE_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in graph_sim.app_env(client_id=client_id).items():
        monkeypatch.setenv(name, value)

    credential = DefaultAzureCredential(managed_identity_client_id=client_id)
    token = credential.get_token("https://graph.microsoft.com/.default")

    response = requests.get(
        f"{graph_sim.graph_base_url}/users/{'adele.vance@contoso.onmicrosoft.com'}",
        headers={"Authorization": f"Bearer {token.token}"},
        timeout=5,
    )
    assert response.status_code == 200
    token_call = graph_sim.requests()[0]
    assert token_call["route"] == "token"
    assert token_call["query"]["api-version"] == "2019-08-01"
    assert token_call["query"].get("client_id") == client_id


def test_app_env_names_what_the_app_reads(graph_sim: GraphSimulator) -> None:
    assert graph_sim.app_env() == {
        "GRAPH_BASE_URL": graph_sim.url + "/v1.0",
        "IDENTITY_ENDPOINT": graph_sim.url + "/msi/token",
        "IDENTITY_HEADER": graph_sim.identity_header,
    }
    assert graph_sim.app_env(client_id="abc")["AZURE_CLIENT_ID"] == "abc"


def test_token_answer_has_the_app_service_shape(graph_sim: GraphSimulator) -> None:
    response = _token_request(graph_sim)

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["resource"] == "https://graph.microsoft.com"
    assert isinstance(body["expires_on"], str)
    assert body["expires_on"].isdigit()
    assert body["access_token"].count(".") == 2  # JWT-shaped


@pytest.mark.parametrize(
    "resource",
    ["https://graph.microsoft.com", "https://graph.microsoft.com/", "{origin}", "{origin}/"],
)
def test_token_accepts_graph_or_the_simulators_origin(graph_sim: GraphSimulator, resource: str) -> None:
    response = _token_request(graph_sim, resource=resource.format(origin=graph_sim.url))
    assert response.status_code == 200


def test_token_refuses_other_resources(graph_sim: GraphSimulator) -> None:
    response = _token_request(graph_sim, resource="https://management.azure.com")
    assert response.status_code == 400
    assert response.json()["statusCode"] == 400


def test_token_needs_the_identity_header(graph_sim: GraphSimulator) -> None:
    missing = requests.get(
        graph_sim.identity_endpoint,
        params={"api-version": "2019-08-01", "resource": "https://graph.microsoft.com"},
        timeout=5,
    )
    wrong = requests.get(
        graph_sim.identity_endpoint,
        params={"api-version": "2019-08-01", "resource": "https://graph.microsoft.com"},
        headers={"X-IDENTITY-HEADER": "not-the-secret"},
        timeout=5,
    )
    assert missing.status_code == 401
    assert wrong.status_code == 401


def test_token_needs_the_2019_api_version(graph_sim: GraphSimulator) -> None:
    response = _token_request(graph_sim, **{"api-version": "2017-09-01"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "Access token is empty."),
        ("Bearer not-a-token-from-the-simulator", "Access token validation failure. Invalid audience."),
        ("Basic dXNlcjpwYXNz", "Access token is empty."),
    ],
)
def test_graph_without_a_valid_token_is_401_in_graph_format(
    graph_sim: GraphSimulator, authorization: str | None, message: str
) -> None:
    headers = {"client-request-id": "0f0e0d0c-0b0a-4909-8807-060504030201"}
    if authorization:
        headers["Authorization"] = authorization
    response = requests.get(
        f"{graph_sim.graph_base_url}/employeeExperience/communities", headers=headers, timeout=5
    )

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    error = response.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert error["message"] == message
    assert error["innerError"]["client-request-id"] == "0f0e0d0c-0b0a-4909-8807-060504030201"
    assert error["innerError"]["request-id"] == response.headers["request-id"]


def test_expired_token_is_refused() -> None:
    with GraphSimulator(token_lifetime_seconds=-1) as sim:
        token = get_token(sim)
        response = requests.get(
            f"{sim.graph_base_url}/users/{'lee.gu@contoso.onmicrosoft.com'}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Lifetime validation failed, the token is expired."


def test_tokens_from_another_simulator_are_refused(graph_sim: GraphSimulator) -> None:
    with GraphSimulator() as other:
        foreign = get_token(other)
    response = requests.get(
        f"{graph_sim.graph_base_url}/users/{'lee.gu@contoso.onmicrosoft.com'}",
        headers={"Authorization": f"Bearer {foreign}"},
        timeout=5,
    )
    assert response.status_code == 401


def test_request_log_never_holds_secrets(graph_sim: GraphSimulator) -> None:
    token = get_token(graph_sim)
    requests.get(
        f"{graph_sim.graph_base_url}/users/{'lee.gu@contoso.onmicrosoft.com'}",
        headers={"Authorization": f"Bearer {token}", "Cookie": "session=abc"},
        timeout=5,
    )

    log = graph_sim.requests()
    assert [entry["route"] for entry in log] == ["token", "users"]
    flat = repr(log)
    assert token not in flat
    assert graph_sim.identity_header not in flat
    assert "session=abc" not in flat
    for entry in log:
        names = {name.lower() for name in entry["headers"]}
        assert not names & {"authorization", "x-identity-header", "cookie"}
