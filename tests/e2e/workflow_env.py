"""The product app in the dev host against the Graph simulator, both on one manual (virtual) clock.

Used by the orchestrator tests (``tests/unit/test_orchestrator*.py``), the connector tests and the end-to-end
tests here; their ``conftest.py`` files import the fixtures ``env`` and ``start_env``. The simulator logs each
request with the virtual time, so tests can assert the spacing of status checks without waiting for it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from devhost.clock import ManualClock
from devhost.testing import DevHost
from graph_simulator import FOREIGN_CREDENTIAL_VARIABLES, SEED_USERS, GraphSimulator
from provisioning.idempotency import instance_id_for_key
from provisioning.models import ORCHESTRATOR_NAME
from provisioning.settings import get_settings
from provisioning.workflow import RETRY_JITTER_FRACTION

OWNER = SEED_USERS[0]
MEMBER = SEED_USERS[1]
OTHER_MEMBER = SEED_USERS[2]
POLL_INTERVAL = 30


class WorkflowEnv:
    def __init__(self, start_host: Callable[[], DevHost], sim: GraphSimulator) -> None:
        self._start_host = start_host
        self.host = start_host()
        self.sim = sim

    def restart_host(self) -> None:
        """Stop the host and start a new one on the same durable state (a Functions host restart)."""
        self.host.stop()
        self.host = self._start_host()

    @property
    def api(self) -> str:
        return f"{self.host.base_url}/api"

    # -- Graph request log (virtual times) ------------------------------------------------------------------

    def graph_calls(self, route: str | None = None, method: str | None = None) -> list[dict[str, Any]]:
        return [
            entry
            for entry in self.sim.requests()
            if entry.get("route") not in (None, "token")
            and (route is None or entry.get("route") == route)
            and (method is None or entry["method"] == method)
        ]

    def request_instances(self) -> list[dict[str, Any]]:
        """The durable instances of requests (not the create-try markers, batches or the budget entity)."""
        return [status for status in self.host.engine.query() if status["name"] == ORCHESTRATOR_NAME]

    def status_check_times(self) -> list[float]:
        return [entry["time"] for entry in self.graph_calls("operation")]

    # -- driving the API like Power Automate -----------------------------------------------------------------

    def post(self, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> requests.Response:
        return requests.post(
            f"{self.api}/communities", json=dict(body), headers=dict(headers or {}), timeout=30
        )

    def follow(
        self, response: requests.Response, max_polls: int = 500
    ) -> tuple[requests.Response, list[Any]]:
        """Follow ``Location`` while the answer is 202, advancing virtual time by ``Retry-After`` instead of
        sleeping; returns the first non-202 answer and every body seen on the way."""
        bodies: list[Any] = [response.json()] if response.content else []
        for _ in range(max_polls):
            if response.status_code != 202:
                return response, bodies
            location = response.headers["Location"]
            self.host.advance(float(response.headers["Retry-After"]))
            response = requests.get(location, timeout=30)
            bodies.append(response.json() if response.content else None)
        raise AssertionError(f"still 202 after {max_polls} polls: {bodies[-1]}")

    def provision(self, body: Mapping[str, Any]) -> tuple[requests.Response, list[Any]]:
        started = self.post(body)
        assert started.status_code == 202, started.text
        return self.follow(started)


def gaps(times: list[float]) -> list[float]:
    """Differences between successive times."""
    return [later - earlier for earlier, later in itertools.pairwise(times)]


@dataclass(frozen=True)
class jittered:  # noqa: N801 - reads as a matcher in assertions: gaps(...) == [jittered(5.0)]
    """Equals a wait of ``expected`` seconds plus at most the retry jitter (never less than ``expected``)."""

    expected: float

    def __eq__(self, actual: object) -> bool:
        top = self.expected * (1 + RETRY_JITTER_FRACTION)
        return isinstance(actual, float | int) and self.expected - 1e-6 <= actual <= top + 1e-6

    def __repr__(self) -> str:
        return f"{self.expected} (+ up to {RETRY_JITTER_FRACTION:.0%})"


def request_body(name: str = "Contoso Engineering", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "displayName": name,
        "description": "Where engineers share news",
        "privacy": "private",
        "owners": [OWNER["userPrincipalName"]],
    }
    body.update(overrides)
    return body


def provisioning_input(request_id: str = "req-unit", **request: Any) -> dict[str, Any]:
    """An orchestrator input as the starters build it (``ProvisioningInput``)."""
    spec: dict[str, Any] = {
        "displayName": "Contoso Engineering",
        "description": "Where engineers share news",
        "privacy": "private",
        "owners": [OWNER["userPrincipalName"]],
        "members": [],
        "onDuplicateName": "fail",
    }
    spec.update(request)
    return {
        "requestId": request_id,
        "source": "http",
        "request": spec,
        "callbackUrl": None,
        "createdAt": "2026-01-01T00:00:00Z",
        "bodyHash": "test",
    }


@contextmanager
def workflow_env(
    devhost_factory: Callable[..., DevHost],
    monkeypatch: pytest.MonkeyPatch,
    storage_connection_string: str,
    *,
    settings: Mapping[str, str] | None = None,
    polls_to_complete: int = 3,
    host_options: Mapping[str, Any] | None = None,
) -> Iterator[WorkflowEnv]:
    clock = ManualClock()
    for name in FOREIGN_CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with GraphSimulator(clock=clock.time, polls_to_complete=polls_to_complete) as sim:
        app_settings = {
            **sim.app_env(),
            "STATUS_POLL_INTERVAL_SECONDS": str(POLL_INTERVAL),
            "PROVISIONING_TIMEOUT_MINUTES": "60",
            "CALLBACK_ALLOW_LOOPBACK": "true",
            "PROVISIONING_QUEUE": "community-requests",
            "RESULTS_QUEUE": "community-results",
            "TASKHUB_NAME": "WorkflowTests",
            **(settings or {}),
        }
        # The app reads settings once per process; every test brings its own simulator.
        get_settings.cache_clear()
        with tempfile.TemporaryDirectory(prefix="workflow-state-") as state_dir:

            def start_host() -> DevHost:
                return devhost_factory(
                    app="function_app:app",
                    clock=clock,
                    settings=app_settings,
                    storage_connection_string=storage_connection_string,
                    state_path=Path(state_dir) / "durable.db",
                    **(host_options or {}),
                )

            try:
                yield WorkflowEnv(start_host, sim)
            finally:
                get_settings.cache_clear()


@pytest.fixture
def start_env(
    devhost_factory: Callable[..., DevHost], monkeypatch: pytest.MonkeyPatch, azurite: Any
) -> Iterator[Callable[..., WorkflowEnv]]:
    """Starts a ``WorkflowEnv`` (keyword options of ``workflow_env``); stopped at the end of the test."""
    with contextlib.ExitStack() as started:

        def start(**options: Any) -> WorkflowEnv:
            return started.enter_context(
                workflow_env(devhost_factory, monkeypatch, azurite.connection_string, **options)
            )

        yield start


@pytest.fixture
def env(start_env: Callable[..., WorkflowEnv]) -> WorkflowEnv:
    """The app against a Graph simulator whose operations finish after 3 status checks."""
    return start_env()


def queue(connection_string: str, name: str) -> QueueClient:
    """A storage queue (created if missing) with the app's base64 message encoding."""
    client = QueueClient.from_connection_string(
        connection_string,
        name,
        message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy(),
    )
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()
    return client


class QueueEnv:
    """A ``WorkflowEnv`` whose app reads requests from and writes results to queues of its own."""

    def __init__(self, env: WorkflowEnv, requests_queue: QueueClient, results_queue: QueueClient) -> None:
        self.env = env
        self.requests_queue = requests_queue
        self.results_queue = results_queue

    def send(self, request_id: str, **fields: Any) -> str:
        """Put a request on the queue; returns the status URL of the request it starts."""
        self.requests_queue.send_message(json.dumps({**request_body(**fields), "requestId": request_id}))
        self.env.host.wait_for_queues_idle(timeout=20)
        return f"{self.env.api}/communities/requests/{instance_id_for_key(request_id, 'queue')}"

    def results(self) -> list[dict[str, Any]]:
        messages = self.results_queue.receive_messages(messages_per_page=32, visibility_timeout=60)
        return [json.loads(message.content) for message in messages]


@pytest.fixture
def queues(start_env: Callable[..., WorkflowEnv], azurite: Any) -> QueueEnv:
    """A ``QueueEnv`` on fresh queues (Azurite outlives the test)."""
    suffix = uuid.uuid4().hex[:8]
    names = {"PROVISIONING_QUEUE": f"requests-{suffix}", "RESULTS_QUEUE": f"results-{suffix}"}
    requests_queue = queue(azurite.connection_string, names["PROVISIONING_QUEUE"])
    results_queue = queue(azurite.connection_string, names["RESULTS_QUEUE"])
    return QueueEnv(start_env(settings=names), requests_queue, results_queue)


class CallbackReceiver:
    """A loopback HTTP server standing in for a Logic Apps callback URL; records every POST body."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.bodies: list[Any] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/workflows/run/callback?sig=top-secret"

    def __enter__(self) -> CallbackReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
