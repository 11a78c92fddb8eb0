"""One client, one pooled session and one credential per process, built from the app settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from graph_simulator import GraphSimulator
from provisioning.graph import GraphClient, get_graph_client
from provisioning.graph.client import process_session
from provisioning.settings import SettingsError, get_settings

from .conftest import SEED_UPN, graph_requests


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_get_graph_client_is_built_once_from_the_settings(
    graph_sim: GraphSimulator,
    graph_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    fresh_settings: None,
) -> None:
    monkeypatch.setenv("GRAPH_CONNECT_TIMEOUT_SECONDS", "1.5")
    monkeypatch.setenv("GRAPH_READ_TIMEOUT_SECONDS", "0.2")
    client = get_graph_client()
    assert get_graph_client() is client
    assert client.base_url == graph_sim.graph_base_url
    assert client.endpoint.token_scope == f"{graph_sim.url}/.default"

    # The configured read timeout is the one used: a 1 s response does not arrive in time.
    graph_sim.set_scenario("slow", seconds=1.0, route="users")
    with pytest.raises(Exception, match="timed out"):
        client.resolve_user(SEED_UPN)

    # Changed settings (a new simulator, a test's environment) give a new client; the same ones do not.
    monkeypatch.setenv("GRAPH_BASE_URL", graph_sim.url + "/beta")
    get_settings.cache_clear()
    beta_client = get_graph_client()
    assert beta_client is not client
    assert beta_client.base_url.endswith("/beta")
    get_settings.cache_clear()
    assert get_graph_client() is beta_client


def test_a_bad_base_url_names_the_setting(monkeypatch: pytest.MonkeyPatch, fresh_settings: None) -> None:
    monkeypatch.setenv("GRAPH_BASE_URL", "http://graph.example.com/v1.0")
    with pytest.raises(SettingsError, match="GRAPH_BASE_URL"):
        get_graph_client()


def test_clients_share_the_process_session_and_urllib3_never_retries() -> None:
    first = GraphClient("https://graph.microsoft.com/v1.0")
    second = GraphClient("https://graph.microsoft.com/beta")
    assert first._session is None
    assert second._session is None
    session = process_session()
    assert process_session() is session
    adapter = session.get_adapter("https://graph.microsoft.com/v1.0")
    retries = adapter.max_retries  # type: ignore[attr-defined]
    assert retries.total == 0
    assert retries.read is False


def test_the_credential_is_created_lazily_with_the_user_assigned_identity(
    graph_sim: GraphSimulator, graph_env: dict[str, str], owner_id: str
) -> None:
    client = GraphClient(graph_sim.graph_base_url, client_id="11111111-2222-3333-4444-555555555555")
    assert client._credential is None
    assert graph_sim.requests() == []
    client.create_community("Lazy", None, "private", [owner_id])
    assert client._credential is not None
    token_calls = [e for e in graph_sim.requests() if "/msi/" in e["path"]]
    assert len(token_calls) == 1
    assert token_calls[0]["query"]["client_id"] == "11111111-2222-3333-4444-555555555555"
    assert token_calls[0]["query"]["resource"].rstrip("/") == graph_sim.url
    client.get_community(str(graph_sim.communities()[0]["id"]))
    assert len([e for e in graph_sim.requests() if "/msi/" in e["path"]]) == 1  # the token is cached
    assert len(graph_requests(graph_sim)) == 2
