"""The HTTP client's own rules, without the app: base URL, Retry-After, and where the key is (not) sent."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from cli.api import KEY_HEADER, ApiClient, CliError, ExitCode, api_base
from cli.app import Context
from cli.output import Console
from cli.waiting import MIN_POLL_SECONDS, RealClock, retry_after_seconds


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://localhost:7071", "http://localhost:7071/api"),
        ("https://app.azurewebsites.net/", "https://app.azurewebsites.net/api"),
        ("https://gw.contoso.com/engage/api/", "https://gw.contoso.com/engage/api"),
    ],
)
def test_the_api_root_is_the_address_with_or_without_api(url: str, expected: str) -> None:
    assert api_base(url) == expected


@pytest.mark.parametrize("url", ["localhost:7071", "ftp://host", "https://app/api?code=secret"])
def test_an_unusable_address_is_a_usage_error(url: str) -> None:
    with pytest.raises(CliError) as raised:
        api_base(url)
    assert raised.value.exit_code is ExitCode.USAGE


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    assert retry_after_seconds({"Retry-After": "17"}) == 17
    assert retry_after_seconds({"Retry-After": "0"}) == MIN_POLL_SECONDS  # never a tight loop
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert 55 <= retry_after_seconds({"Retry-After": in_a_minute}) <= 60
    assert retry_after_seconds({}, default=30) == 30
    assert retry_after_seconds({"Retry-After": "soon"}, default=30) == 30


def direct() -> requests.Session:
    """A session that ignores proxy variables of the machine running the tests."""
    session = requests.Session()
    session.trust_env = False
    return session


class HeaderRecorder:
    """A loopback server answering 200 {} to every GET and recording the headers it received."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.headers.append({name.lower(): value for name, value in self.headers.items()})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def recorder() -> Iterator[HeaderRecorder]:
    server = HeaderRecorder()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_the_key_goes_only_to_the_configured_origin(recorder: HeaderRecorder) -> None:
    client = ApiClient(api_base(f"http://127.0.0.1:{recorder.port}"), key="the-key", session=direct())
    client.request("GET", "communities/requests")
    # The same server under another name is another origin (a Location from PUBLIC_BASE_URL, say).
    client.request("GET", f"http://localhost:{recorder.port}/api/communities/requests/req-1")
    assert [headers.get(KEY_HEADER) for headers in recorder.headers] == ["the-key", None]


def test_a_location_on_another_origin_is_followed_on_the_configured_one() -> None:
    console = Console(io.StringIO(), io.StringIO())
    context = Context(console, {}, RealClock(), "http://app.local:7071", "the-key")
    elsewhere = "https://gw.contoso.com/engage/api/communities/requests/req-1?skip=0"
    assert context.local_url(elsewhere, "communities/requests/req-1") == (
        "http://app.local:7071/api/communities/requests/req-1?skip=0"
    )
    own = "http://app.local:7071/api/communities/requests/req-1"
    assert context.local_url(own, "unused") == own


def test_no_answer_is_exit_6_without_the_key() -> None:
    client = ApiClient(api_base("http://127.0.0.1:9"), "the-key-123", direct())  # the discard port: refused
    with pytest.raises(CliError) as raised:
        client.request("GET", "communities/requests")
    assert raised.value.exit_code is ExitCode.SERVER
    assert raised.value.message.startswith("no answer from http://127.0.0.1:9/api/communities/requests: ")
    assert "the-key-123" not in raised.value.message
