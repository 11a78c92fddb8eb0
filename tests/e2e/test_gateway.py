"""Polls through the Power Platform connector gateway stay authorised, end to end with the keys enforced.

The test plays the gateway: a small threaded HTTP proxy that serves the connection's URLs,
``https://<gateway host>/apim/<api>/<connection>/<operation path>``, and forwards the connector's operations
to the dev host as the connector's policies do (dynamichosturl: ``<host>/api``; setheader: the connection's
function key as ``x-functions-key``), adding the gateway's ``X-MS-APIM-Referrer-Prefix`` and
``X-MS-APIM-Referrer`` headers. It plays the flow engine too: after the start it follows ``Location`` as it
is, without any key of its own, until the answer is not 202. The test's "DNS" sends the gateway host to the
proxy; the proxy stands in for TLS.

What it shows: answers to calls through the connector carry gateway URLs (``Location``, ``statusUri``,
``nextLink``), so every poll goes through the connection and gets its key; the backend URL the app answered
before (no ``code``, the key was a header) is refused without a key; a forged prefix is ignored.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from devhost.host import HOST_KEYS_SETTING
from devhost.testing import DevHost
from provisioning import openapi
from tests.e2e.workflow_env import WorkflowEnv, request_body, workflow_env
from triggers.answers import GATEWAY_PREFIX_HEADER, gateway_prefix

KEY = "connection-host-key"
GATEWAY_HOST = "default-7c1e0f2a9b3d4e5f.05.common.europe002.azure-apihub.net"
CONNECTION_PATH = "/apim/vivaengagecommunities/shared-vivaengageco-5f0c3a1e-9d2b-4c6a-8e7f-1a2b3c4d5e6f"
PREFIX = f"https://{GATEWAY_HOST}{CONNECTION_PATH}"
FORWARDED_HEADERS = ("Content-Type", "Idempotency-Key")
ANSWER_HEADERS = ("Content-Type", "Location", "Retry-After", "Link", "Cache-Control")


@functools.cache
def connector_operations() -> list[tuple[str, re.Pattern[str]]]:
    """(method, path pattern) of every operation of the connector definition: what the gateway routes."""
    routes: list[tuple[str, re.Pattern[str]]] = []
    for path, item in openapi.connector_definition()["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\{\w+\\}", "[^/]+", re.escape(path)) + "$")
        routes.extend((method.upper(), pattern) for method in item)
    return routes


@dataclass
class Gateway:
    """The connection's gateway: a threaded proxy in front of the dev host; ``calls`` logs what it got."""

    backend_api: str
    server: ThreadingHTTPServer | None = None
    calls: list[tuple[str, str, bool]] = field(default_factory=list)  # method, path, key sent by the caller

    @property
    def address(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def forward(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> requests.Response | int:
        path, _, query = target.partition("?")
        if not path.startswith(CONNECTION_PATH + "/"):
            return 404
        operation_path = path.removeprefix(CONNECTION_PATH)
        if not any(method == m and pattern.match(operation_path) for m, pattern in connector_operations()):
            return 404  # the gateway forwards the connector's operations only
        self.calls.append((method, operation_path, any(k.lower() == "x-functions-key" for k in headers)))
        sent = {name: headers[name] for name in FORWARDED_HEADERS if name in headers}
        sent["x-functions-key"] = KEY  # the connection's key (setheader policy), whatever the caller sent
        sent[GATEWAY_PREFIX_HEADER] = PREFIX
        sent["X-MS-APIM-Referrer"] = f"https://{GATEWAY_HOST}{target}"
        url = f"{self.backend_api}{operation_path}" + (f"?{query}" if query else "")
        return requests.request(
            method, url, headers=sent, data=body or None, timeout=30, allow_redirects=False
        )


def handler_for(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = dict(self.headers.items())
            answer = gateway.forward(self.command, self.path, headers, body)
            if isinstance(answer, int):
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(answer.status_code)
            for name in ANSWER_HEADERS:
                if name in answer.headers:
                    self.send_header(name, answer.headers[name])
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def keyed_env(
    devhost_factory: Callable[..., DevHost], monkeypatch: pytest.MonkeyPatch, azurite: Any
) -> Iterator[WorkflowEnv]:
    def keyed_factory(**kwargs: Any) -> DevHost:
        return devhost_factory(enforce_keys=True, **kwargs)

    with workflow_env(
        keyed_factory, monkeypatch, azurite.connection_string, settings={HOST_KEYS_SETTING: KEY}
    ) as env:
        yield env


@pytest.fixture
def gateway(keyed_env: WorkflowEnv) -> Iterator[Gateway]:
    proxy = Gateway(keyed_env.api)
    proxy.server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(proxy))
    thread = threading.Thread(target=proxy.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()
        thread.join(timeout=10)


class Engine:
    """The flow engine: calls the connector's operations on the connection's gateway URL, and follows
    Location as it is, sending no key (it has none; the gateway adds the connection's)."""

    def __init__(self, env: WorkflowEnv, gateway: Gateway) -> None:
        self.env = env
        self.gateway = gateway

    def call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("https", GATEWAY_HOST), f"not a gateway URL: {url}"
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Host": GATEWAY_HOST, **kwargs.pop("headers", {})}  # the test's DNS: gateway → proxy
        return requests.request(method, self.gateway.address + target, headers=headers, timeout=30, **kwargs)

    def start(
        self, operation_path: str, body: Any, headers: dict[str, str] | None = None
    ) -> requests.Response:
        return self.call("POST", PREFIX + operation_path, json=body, headers=headers or {})

    def follow(self, response: requests.Response, max_polls: int = 200) -> requests.Response:
        """Poll Location after Retry-After (virtual time) until the answer is not 202."""
        for _ in range(max_polls):
            if response.status_code != 202:
                return response
            location = response.headers["Location"]
            assert location.startswith(PREFIX + "/"), location
            self.env.host.advance(float(response.headers["Retry-After"]))
            response = self.call("GET", location)
        raise AssertionError(f"still 202 after {max_polls} polls")


def assert_no_key_in(response: requests.Response) -> None:
    assert KEY not in response.text
    assert KEY not in str(dict(response.headers))


def test_a_request_through_the_connector_is_polled_through_the_gateway_to_its_outcome(
    keyed_env: WorkflowEnv, gateway: Gateway
) -> None:
    env, engine = keyed_env, Engine(keyed_env, gateway)
    started = engine.start("/communities", request_body("Gateway Community"), {"Idempotency-Key": "run-gw-1"})
    assert started.status_code == 202, started.text
    request_id = started.json()["id"]
    location = started.headers["Location"]
    assert location == started.json()["statusUri"] == f"{PREFIX}/communities/requests/{request_id}"
    assert "code=" not in location
    assert_no_key_in(started)

    # The backend status URL, which the app answered before, carries no key: a poll of it is refused.
    backend = f"{env.api}/communities/requests/{request_id}"
    assert requests.get(backend, timeout=30).status_code == 401

    env.host.run_until_idle()
    running = engine.call("GET", location)
    assert running.status_code == 202
    assert running.headers["Location"] == location
    now = engine.call("GET", f"{location}/status")
    assert (now.status_code, now.json()["status"], "Location" in now.headers) == (200, "Running", False)

    final = engine.follow(running)
    assert final.status_code == 200, final.text
    assert final.json()["status"] == "Succeeded"
    assert final.json()["community"]["id"]
    polls = [call for call in gateway.calls if call == ("GET", f"/communities/requests/{request_id}", False)]
    assert len(polls) >= 2, gateway.calls  # every poll came through the gateway, without a key of its own
    assert all(not sent_key for _, _, sent_key in gateway.calls)

    # A repeated start (retry policy) answers from the same request, still on the gateway.
    again = engine.start("/communities", request_body("Gateway Community"), {"Idempotency-Key": "run-gw-1"})
    assert (again.status_code, again.json()["id"]) == (200, request_id)


def test_cancel_batches_and_pages_through_the_connector_stay_on_the_gateway(
    keyed_env: WorkflowEnv, gateway: Gateway
) -> None:
    env, engine = keyed_env, Engine(keyed_env, gateway)
    running = engine.start("/communities", request_body("Gateway Canceled"))
    assert running.status_code == 202
    env.host.run_until_idle()
    canceled = engine.call("DELETE", running.headers["Location"])
    assert canceled.status_code in (200, 202), canceled.text
    if canceled.status_code == 202:
        assert canceled.headers["Location"].startswith(PREFIX + "/")
        env.host.run_until_idle()
    after = engine.call("GET", running.headers["Location"])
    assert (after.status_code, after.json()["status"]) == (409, "Canceled")

    names = ["Gateway Batch 0", "Gateway Batch 1", "Gateway Batch 2"]
    batch = engine.start("/communities/batches", {"items": [request_body(name) for name in names]})
    assert batch.status_code == 202, batch.text
    batch_url = f"{PREFIX}/communities/batches/{batch.json()['id']}"
    assert batch.headers["Location"] == batch.json()["statusUri"] == batch_url
    settled = engine.follow(batch)
    assert (settled.status_code, settled.json()["status"]) == (200, "Succeeded")
    items = settled.json()["items"]
    assert all(item["statusUri"].startswith(f"{PREFIX}/communities/requests/req-") for item in items)
    assert engine.call("GET", items[0]["statusUri"]).json()["status"] == "Succeeded"

    page = engine.call("GET", batch_url, params={"top": 1})
    next_link = page.json()["nextLink"]
    assert next_link.startswith(batch_url + "?")
    assert [row["index"] for row in engine.call("GET", next_link).json()["items"]] == [1]

    listed = engine.call("GET", f"{PREFIX}/communities/requests", params={"top": 2})
    assert listed.status_code == 200, listed.text
    assert all(row["statusUri"].startswith(PREFIX + "/") for row in listed.json()["items"])
    following = listed.json()["nextLink"]
    assert following.startswith(f"{PREFIX}/communities/requests?")
    assert listed.headers["Link"] == f'<{following}>; rel="next"'
    assert engine.call("GET", following).status_code == 200
    assert_no_key_in(listed)


FORGED_PREFIXES = (
    "https://evil.example/apim/api/connection",
    "https://default-1.common.azure-apihub.net.evil.example/apim/api/connection",
    "http://default-1.common.azure-apihub.net/apim/api/connection",
    "https://default-1.common.azure-apihub.net:8443/apim/api/connection",
    "https://user@default-1.common.azure-apihub.net/apim/api/connection",
    "https://default-1.common.azure-apihub.net/other/api/connection",
    "https://default-1.common.azure-apihub.net/apim/api/connection/communities",
    "https://default-1.common.azure-apihub.net/apim/api/connection?x=1",
    "https://default-1.common.azure-apihub.net/apim/api/..",
    "https://default-1.common.azure-apihub.net/apim/api/%2e%2e",
    "https://default-1.common.azure-apihub.net/apim/api/conn\nection",
    "https://azure-apihub.net/apim/api/connection",
)


def test_a_forged_referrer_prefix_is_ignored(keyed_env: WorkflowEnv) -> None:
    for forged in FORGED_PREFIXES:
        assert gateway_prefix({GATEWAY_PREFIX_HEADER: forged}) is None, forged
        if "\n" in forged:
            continue  # no HTTP client sends a line break in a header
        headers = {"x-functions-key": KEY, GATEWAY_PREFIX_HEADER: forged}
        started = requests.post(
            f"{keyed_env.api}/communities", json=request_body("Forged Prefix"), headers=headers, timeout=30
        )
        assert started.status_code == 202, started.text
        assert started.headers["Location"] == f"{keyed_env.api}/communities/requests/{started.json()['id']}"


@pytest.mark.parametrize(
    ("header", "prefix"),
    [
        (PREFIX, PREFIX),
        (PREFIX + "/", PREFIX),
        (f"  {PREFIX.replace(GATEWAY_HOST, GATEWAY_HOST.upper())}  ", PREFIX),
        (
            "https://logic-apis-westeurope.azure-apim.net/apim/vivaengage/0123abcd",
            "https://logic-apis-westeurope.azure-apim.net/apim/vivaengage/0123abcd",
        ),
        (
            "https://power-apis-usgov001-public.azure-apihub.us/apim/vivaengage/0123abcd",
            "https://power-apis-usgov001-public.azure-apihub.us/apim/vivaengage/0123abcd",
        ),
        (None, None),
    ],
)
def test_gateway_prefixes_of_the_known_gateway_hosts_are_taken(
    header: str | None, prefix: str | None
) -> None:
    assert gateway_prefix({} if header is None else {GATEWAY_PREFIX_HEADER: header}) == prefix
