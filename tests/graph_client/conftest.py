"""The client under test talks to the Graph simulator over real HTTP, with tokens from the simulator's managed
identity endpoint obtained through the production credential path (DefaultAzureCredential)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.identity import DefaultAzureCredential

from graph_simulator import SEED_USERS, GraphSimulator
from provisioning.graph import GraphClient

# Everything that would make DefaultAzureCredential pick another credential than the App Service managed
# identity the simulator speaks.
_OTHER_CREDENTIAL_VARIABLES = (
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "AZURE_TOKEN_CREDENTIALS",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
)


@pytest.fixture
def graph_env(graph_sim: GraphSimulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The app's environment pointed at the simulator (Graph base URL and managed identity endpoint)."""
    for name in _OTHER_CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    env = graph_sim.app_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def credential(graph_env: dict[str, str]) -> Iterator[DefaultAzureCredential]:
    """The production credential; tests that need the token itself (to prove it is never logged) share it."""
    real_credential = DefaultAzureCredential()
    yield real_credential
    real_credential.close()


@pytest.fixture
def client(graph_sim: GraphSimulator, graph_env: dict[str, str]) -> GraphClient:
    return GraphClient(graph_sim.graph_base_url, connect_timeout=2.0, read_timeout=5.0)


SEED_UPN = str(SEED_USERS[0]["userPrincipalName"])


@pytest.fixture
def owner_id() -> str:
    return str(SEED_USERS[0]["id"])


def graph_requests(
    sim: GraphSimulator, method: str | None = None, path_part: str = ""
) -> list[dict[str, Any]]:
    """The simulator's log of Graph calls (the token endpoint left out), optionally filtered."""
    return [
        entry
        for entry in sim.requests()
        if "/msi/" not in entry["path"]
        and not entry["path"].startswith("/_simulator")
        and (method is None or entry["method"] == method)
        and path_part in entry["path"]
    ]
