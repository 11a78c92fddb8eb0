"""The local loop in the dev host: 405 problems with `Allow`, `Retry-After` in caller seconds under a fast
clock, and a busy port named with its flag."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
import requests

from devhost.http_server import scale_retry_after
from devhost.offline import _start_simulator
from devhost.ports import PortInUseError, ensure_port_free
from devhost.testing import DevHost
from graph_simulator import GraphSimulator

APP = "tests.devhost.apps.local_loop_app:app"


@pytest.fixture
def host(devhost_factory: Callable[..., DevHost]) -> DevHost:
    return devhost_factory(app=APP, host_json=None)


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else listens on (on every interface, as another dev server would)."""
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


# -- 405 --------------------------------------------------------------------------------------------------


def test_a_method_no_route_takes_is_405_with_allow_and_a_problem_listing_the_methods(host: DevHost) -> None:
    response = requests.post(f"{host.base_url}/api/things/7", timeout=5)
    assert response.status_code == 405
    # Two functions serve this route: the answer lists the methods of both.
    assert response.headers["Allow"] == "DELETE, GET"
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json() == {
        "type": "about:blank",
        "title": "Method Not Allowed",
        "status": 405,
        "detail": "/api/things/7 does not take POST; it takes DELETE, GET.",
        "code": "MethodNotAllowed",
        "allowedMethods": ["DELETE", "GET"],
    }
    # The methods it lists do work, and a path no route matches stays a plain 404.
    assert requests.get(f"{host.base_url}/api/things/7", timeout=5).text == "thing 7"
    assert requests.delete(f"{host.base_url}/api/things/7", timeout=5).status_code == 204
    missing = requests.post(f"{host.base_url}/api/nothing-here", timeout=5)
    assert (missing.status_code, missing.content, missing.headers.get("Allow")) == (404, b"", None)


def test_head_and_options_are_methods_like_any_other(host: DevHost) -> None:
    # As in the host, a route declared for GET does not take HEAD or OPTIONS.
    head = requests.head(f"{host.base_url}/api/wait?after=1", timeout=5)
    assert (head.status_code, head.headers["Allow"], head.content) == (405, "GET", b"")
    options = requests.options(f"{host.base_url}/api/things/1", timeout=5)
    assert (options.status_code, options.json()["allowedMethods"]) == (405, ["DELETE", "GET"])
    # A function without `methods` takes them all.
    assert requests.request("PATCH", f"{host.base_url}/api/open/x", timeout=5).text == "PATCH"


# -- Retry-After --------------------------------------------------------------------------------------------


def _retry_after(host: DevHost, after: str, name: str = "Retry-After") -> str:
    response = requests.get(f"{host.base_url}/api/wait", params={"after": after, "name": name}, timeout=5)
    assert response.status_code == 202
    return str(response.headers["Retry-After"])


def test_retry_after_is_divided_by_the_clock_speed_and_rounded_up(
    devhost_factory: Callable[..., DevHost],
) -> None:
    host = devhost_factory(app=APP, host_json=None, retry_after_speed=60)
    assert _retry_after(host, "30") == "1"  # half a second: the header takes whole seconds
    assert _retry_after(host, "60") == "1"
    assert _retry_after(host, "61") == "2"
    assert _retry_after(host, "600") == "10"
    assert _retry_after(host, "0") == "0"  # "now" stays now
    assert _retry_after(host, "30", name="retry-after") == "1"  # any spelling of the name
    date = "Wed, 21 Oct 2026 07:28:00 GMT"
    assert _retry_after(host, date) == date  # a date is left as it is


def test_a_slower_clock_stretches_retry_after(devhost_factory: Callable[..., DevHost]) -> None:
    host = devhost_factory(app=APP, host_json=None, retry_after_speed=0.5)
    assert _retry_after(host, "30") == "60"


def test_without_a_clock_speed_retry_after_is_what_the_app_sent(host: DevHost) -> None:
    assert _retry_after(host, "30") == "30"
    assert _retry_after(host, "0") == "0"


def test_scale_retry_after_touches_only_delay_seconds() -> None:
    headers = {"Retry-After": " 45 ", "Location": "http://x/30", "X-Other": "30"}
    assert scale_retry_after(headers, 30) == {"Retry-After": "2", "Location": "http://x/30", "X-Other": "30"}
    for odd in ("-5", "1.5", "²", "", "soon"):
        assert scale_retry_after({"Retry-After": odd}, 60) == {"Retry-After": odd}


def test_retry_after_speed_must_be_positive() -> None:
    with pytest.raises(ValueError, match="retry_after_speed"):
        DevHost(app=APP, host_json=None, retry_after_speed=0).start()


# -- busy ports ---------------------------------------------------------------------------------------------


def test_a_busy_app_port_names_the_port_and_the_flag(busy_port: int) -> None:
    host = DevHost(app=APP, host_json=None, port=busy_port)
    with pytest.raises(PortInUseError) as raised:
        host.start()
    host.stop()
    assert str(raised.value) == (
        f"port {busy_port} (the app's HTTP port) is already in use: stop what listens there or choose "
        "another port with --port N"
    )


def test_a_busy_simulator_port_names_the_graph_port_flag(busy_port: int) -> None:
    with pytest.raises(PortInUseError, match=rf"^port {busy_port} \(the Graph simulator\).* --graph-port N$"):
        _start_simulator(GraphSimulator(port=busy_port), busy_port)


def test_ensure_port_free(busy_port: int) -> None:
    with pytest.raises(PortInUseError, match="--flag N"):
        ensure_port_free(busy_port, what="x", flag="--flag")
    ensure_port_free(0, what="x", flag="--flag")  # any free port: never busy
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = int(free.getsockname()[1])
    ensure_port_free(port, what="x", flag="--flag")
