"""Error classification over real HTTP: Graph errors, Retry-After, malformed bodies, timeouts, resets."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.identity import DefaultAzureCredential

from graph_simulator import GraphSimulator
from provisioning.graph import ErrorKind, GraphClient, GraphError

from .conftest import SEED_UPN, graph_requests


def create(client: GraphClient, owner_id: str, name: str = "Errors") -> Any:
    return client.create_community(name, None, "private", [owner_id])


def fail(call: Any, *args: Any) -> GraphError:
    with pytest.raises(GraphError) as caught:
        call(*args)
    return caught.value


# --------------------------------------------------------------------------------------------- throttling


@pytest.mark.parametrize(
    ("retry_after", "form", "expected"),
    [(7, "seconds", 7.0), (2.128, "fractional", 2.128), (0.5, "fractional", 0.5), (30, "none", None)],
)
def test_throttled_with_retry_after_in_seconds(
    graph_sim: GraphSimulator,
    client: GraphClient,
    owner_id: str,
    retry_after: float,
    form: str,
    expected: float | None,
) -> None:
    graph_sim.set_scenario("throttle", retry_after=retry_after, form=form, route="create")
    error = fail(create, client, owner_id)
    assert (error.kind, error.http_status, error.code) == (ErrorKind.THROTTLED, 429, "TooManyRequests")
    assert error.retry_after_seconds == (None if expected is None else pytest.approx(expected))
    assert error.request_id
    assert graph_sim.communities() == []  # a 429 means nothing was done: retrying is safe


def test_throttled_with_retry_after_as_http_date(graph_sim: GraphSimulator, client: GraphClient) -> None:
    graph_sim.set_scenario("throttle", retry_after=120, form="http-date", route="users")
    error = fail(client.resolve_user, "someone@contoso.com")
    assert error.kind is ErrorKind.THROTTLED
    # An HTTP date has whole-second precision and is taken relative to now.
    assert error.retry_after_seconds is not None
    assert 115 <= error.retry_after_seconds <= 121


def test_viva_engage_rate_limit_is_throttling(
    graph_sim: GraphSimulator, client: GraphClient, owner_id: str
) -> None:
    graph_sim.set_scenario("rate-limit", limit=2, window=30)
    created = create(client, owner_id)
    client.get_operation(created.operation_url)
    error = fail(client.get_operation, created.operation_url)
    assert error.kind is ErrorKind.THROTTLED
    assert error.retry_after_seconds is not None
    assert 0 < error.retry_after_seconds <= 30


# ------------------------------------------------------------------------------------------- HTTP errors


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_on_reads_are_transient(
    graph_sim: GraphSimulator, client: GraphClient, status: int
) -> None:
    graph_sim.set_scenario("server-error", status=status, route="list")
    error = fail(client.find_communities_by_name, "Anything")
    assert (error.kind, error.http_status) == (ErrorKind.TRANSIENT, status)
    assert error.request_id


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (500, ErrorKind.TRANSIENT),
        (503, ErrorKind.TRANSIENT),
        (502, ErrorKind.AMBIGUOUS),
        (504, ErrorKind.AMBIGUOUS),
    ],
)
def test_server_errors_on_the_create(
    graph_sim: GraphSimulator, client: GraphClient, owner_id: str, status: int, kind: ErrorKind
) -> None:
    # A gateway's 502/504 may hide a backend that created the community; 500/503 come from Graph itself.
    graph_sim.set_scenario("server-error", status=status, route="create")
    error = fail(create, client, owner_id)
    assert (error.kind, error.http_status) == (kind, status)


def test_service_unavailable_keeps_retry_after(graph_sim: GraphSimulator, client: GraphClient) -> None:
    graph_sim.set_scenario("server-error", status=503, retry_after=3, form="seconds", route="community")
    error = fail(client.get_community, "eyJfdHlwZSI6Ikdyb3VwIiwiaWQiOiIxIn0")
    assert (error.kind, error.retry_after_seconds) == (ErrorKind.TRANSIENT, 3.0)


@pytest.mark.parametrize(("status", "code"), [(403, "accessDenied"), (409, "nameAlreadyExists"), (401, None)])
def test_client_errors_are_permanent(
    graph_sim: GraphSimulator, client: GraphClient, owner_id: str, status: int, code: str | None
) -> None:
    options: dict[str, Any] = {"status": status, "route": "create"}
    if code:
        options["code"] = code
    graph_sim.set_scenario("http-error", **options)
    error = fail(create, client, owner_id)
    assert (error.kind, error.http_status) == (ErrorKind.PERMANENT, status)
    if code:
        assert error.code == code
    assert error.message
    assert error.request_id
    assert not error.is_not_found


def test_get_community_not_found(client: GraphClient) -> None:
    error = fail(client.get_community, "eyJfdHlwZSI6Ikdyb3VwIiwiaWQiOiI0MiJ9")
    assert (error.kind, error.http_status, error.is_not_found) == (ErrorKind.PERMANENT, 404, True)
    assert error.code


# ------------------------------------------------------------------------------------------ broken bodies


@pytest.mark.parametrize("route", ["operation", "list", "community", "users"])
def test_malformed_json_is_a_clear_transient_error(
    graph_sim: GraphSimulator, client: GraphClient, owner_id: str, route: str
) -> None:
    created = create(client, owner_id)
    final = None
    while final is None or final.raw_status != "succeeded":
        final = client.get_operation(created.operation_url)
    graph_sim.set_scenario("malformed-json", route=route)
    call: dict[str, Any] = {
        "operation": lambda: client.get_operation(created.operation_url),
        "list": lambda: client.find_communities_by_name("Errors"),
        "community": lambda: client.get_community(str(final.resource_id)),
        "users": lambda: client.resolve_user(SEED_UPN),
    }
    error = fail(call[route])
    assert (error.kind, error.code, error.http_status) == (ErrorKind.TRANSIENT, "MalformedResponse", 200)
    assert "JSON" in error.message


# ------------------------------------------------------------------------------------- lost connections


@pytest.mark.parametrize("commit", [True, False])
def test_reset_after_the_create_was_sent_is_ambiguous_and_not_retried(
    graph_sim: GraphSimulator, client: GraphClient, owner_id: str, commit: bool
) -> None:
    # Whether Graph acted before the connection dropped is unknowable to the client: ambiguous either way.
    graph_sim.set_scenario("connection-reset", route="create", commit=commit)
    error = fail(create, client, owner_id, "Reset")
    assert error.kind is ErrorKind.AMBIGUOUS
    assert error.code == "ResponseLost"
    assert "may exist" in error.message
    # Exactly one POST: neither requests nor urllib3 repeated it.
    assert len(graph_requests(graph_sim, "POST")) == 1
    assert [c["displayName"] for c in graph_sim.communities()] == (["Reset"] if commit else [])


def test_reset_on_a_read_is_transient(graph_sim: GraphSimulator, client: GraphClient) -> None:
    graph_sim.set_scenario("connection-reset", route="list")
    error = fail(client.find_communities_by_name, "Anything")
    assert (error.kind, error.code) == (ErrorKind.TRANSIENT, "ResponseLost")
    assert len(graph_requests(graph_sim, "GET")) == 1


def test_read_timeout_on_the_create_is_ambiguous(
    graph_sim: GraphSimulator, graph_env: dict[str, str], owner_id: str
) -> None:
    graph_sim.set_scenario("slow", seconds=1.0, route="create")
    client = GraphClient(graph_sim.graph_base_url, read_timeout=0.2)
    error = fail(create, client, owner_id, "Slow")
    assert (error.kind, error.code) == (ErrorKind.AMBIGUOUS, "ResponseLost")
    assert "timed out" in error.message
    assert len(graph_requests(graph_sim, "POST")) == 1


def test_read_timeout_on_a_read_is_transient(graph_sim: GraphSimulator, graph_env: dict[str, str]) -> None:
    graph_sim.set_scenario("slow", seconds=1.0, route="users")
    client = GraphClient(graph_sim.graph_base_url, read_timeout=0.2)
    error = fail(client.resolve_user, SEED_UPN)
    assert (error.kind, error.code) == (ErrorKind.TRANSIENT, "ResponseLost")


def test_refused_connection_is_transient_even_for_the_create(
    graph_sim: GraphSimulator, credential: DefaultAzureCredential, owner_id: str
) -> None:
    client = GraphClient(graph_sim.graph_base_url, credential=credential)
    credential.get_token(client.endpoint.token_scope)  # cached: the create needs no token endpoint
    graph_sim.stop()
    error = fail(create, client, owner_id)
    assert (error.kind, error.code) == (ErrorKind.TRANSIENT, "ConnectionFailed")
    assert "not sent" in error.message


class _SimulatorToken:
    """Real simulator tokens for a client pointed at another loopback port (the simulator only issues tokens
    for its own origin): the credential path is still the production one."""

    def __init__(self, credential: DefaultAzureCredential, scope: str) -> None:
        self._credential = credential
        self._scope = scope

    def get_token(self, *scopes: str) -> Any:
        return self._credential.get_token(self._scope)


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A loopback port whose accept queue is full: new connections hang in SYN, so connects time out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(8):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.05)
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_connect_timeout_is_transient_even_for_the_create(
    graph_sim: GraphSimulator, credential: DefaultAzureCredential, owner_id: str, unanswered_port: int
) -> None:
    token = _SimulatorToken(credential, f"{graph_sim.url}/.default")
    client = GraphClient(f"http://127.0.0.1:{unanswered_port}/v1.0", credential=token, connect_timeout=0.3)
    started = time.monotonic()
    error = fail(create, client, owner_id)
    assert time.monotonic() - started < 3
    assert (error.kind, error.code) == (ErrorKind.TRANSIENT, "ConnectionFailed")
    assert "ConnectTimeout" in error.message


# --------------------------------------------------------------------------------------- logs and secrets


def test_one_log_line_per_request_and_never_the_token(
    graph_sim: GraphSimulator,
    credential: DefaultAzureCredential,
    owner_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = GraphClient(graph_sim.graph_base_url, credential=credential)
    caplog.set_level(logging.DEBUG)
    created = create(client, owner_id, "Logged")
    client.find_communities_by_name("Logged O'Neil")
    graph_sim.set_scenario("http-error", status=403, route="operation")
    error = fail(client.get_operation, created.operation_url)
    token = credential.get_token(client.endpoint.token_scope).token

    lines = [r for r in caplog.records if r.name == "provisioning.graph.client"]
    assert len(lines) == 3
    post, listing, denied = (r.getMessage() for r in lines)
    assert post.startswith("Graph POST /v1.0/employeeExperience/communities -> 202 in ")
    assert f"client-request-id {created.client_request_id}" in post
    assert f"request-id {created.request_id}" in post
    assert listing.startswith("Graph GET /v1.0/employeeExperience/communities -> 200 in ")
    assert "filter" not in listing
    assert "Neil" not in listing
    assert "-> 403 in " in denied
    assert lines[2].levelno == logging.WARNING
    assert {"graph_method", "graph_path", "duration_ms", "graphRequestId", "client_request_id"} <= set(
        vars(lines[0])
    )

    everything = caplog.text + str(error) + repr(error) + str(error.to_dict())
    assert token not in everything
    assert token[:20] not in everything  # not even a prefix of it
    assert graph_sim.identity_header not in everything
