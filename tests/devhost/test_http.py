"""HTTP triggers over real HTTP: routes, constraints, methods, query, headers, bodies, status codes, async."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from devhost.testing import DevHost

APP = "tests.devhost.apps.http_app:app"


@pytest.fixture
def host(devhost_factory: Callable[..., DevHost]) -> DevHost:
    return devhost_factory(app=APP, host_json=None)


def test_route_parameter_with_int_constraint_and_query(host: DevHost) -> None:
    response = requests.get(f"{host.base_url}/api/items/42?x=1&x=2&y=", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Item"] == "42"
    assert response.json() == {"id": "42", "query": {"x": "1,2", "y": ""}}


def test_constraint_mismatch_falls_through_to_literal_route_or_404(host: DevHost) -> None:
    assert requests.get(f"{host.base_url}/api/items/special", timeout=5).text == "special"
    assert requests.get(f"{host.base_url}/api/items/abc", timeout=5).status_code == 404
    assert requests.get(f"{host.base_url}/api/ITEMS/7", timeout=5).status_code == 200  # literals ignore case


def test_method_not_in_route_methods_is_405(host: DevHost) -> None:
    assert requests.post(f"{host.base_url}/api/items/1", timeout=5).status_code == 405


def test_async_function_gets_method_url_headers_body_and_catch_all(host: DevHost) -> None:
    response = requests.put(
        f"{host.base_url}/api/echo/a/b/c?q=1", json={"hello": "world"}, headers={"X-Custom": "yes"}, timeout=5
    )
    assert response.status_code == 201
    assert response.json() == {
        "method": "PUT",
        "url": f"{host.base_url}/api/echo/a/b/c?q=1",
        "rest": "a/b/c",
        "contentType": "application/json",
        "custom": "yes",
        "json": {"hello": "world"},
    }


def test_optional_parameter_and_str_return(host: DevHost) -> None:
    with_name = requests.get(f"{host.base_url}/api/files/report.txt", timeout=5)
    assert (with_name.status_code, with_name.text) == (200, "name=report.txt")
    assert with_name.headers["Content-Type"].startswith("text/plain")
    assert requests.get(f"{host.base_url}/api/files", timeout=5).text == "name=None"


def test_binary_body_round_trip(host: DevHost) -> None:
    response = requests.post(f"{host.base_url}/api/raw", data=bytes([0, 1, 2, 255]), timeout=5)
    assert response.content == bytes([255, 2, 1, 0])
    assert response.headers["Content-Type"] == "application/octet-stream"


def test_an_exception_or_no_response_is_500(host: DevHost) -> None:
    assert requests.get(f"{host.base_url}/api/boom", timeout=5).status_code == 500
    # The worker cannot encode None for the `$return` http binding (HttpResponseConverter.encode refuses it),
    # so the invocation fails.
    assert requests.delete(f"{host.base_url}/api/nothing", timeout=5).status_code == 500


def test_unknown_route_404_and_auth_ignored_by_default(host: DevHost) -> None:
    assert requests.get(f"{host.base_url}/api/missing", timeout=5).status_code == 404
    assert requests.get(f"{host.base_url}/items/1", timeout=5).status_code == 404  # outside the route prefix
    assert requests.get(f"{host.base_url}/api/secure", timeout=5).text == "secret ok"


def test_route_prefix_from_host_json(devhost_factory: Callable[..., DevHost], tmp_path: Path) -> None:
    host_json = tmp_path / "host.json"
    host_json.write_text(json.dumps({"version": "2.0", "extensions": {"http": {"routePrefix": "v1"}}}))
    host = devhost_factory(app=APP, host_json=host_json)
    assert requests.get(f"{host.base_url}/v1/items/5", timeout=5).json()["id"] == "5"
    assert requests.get(f"{host.base_url}/api/items/5", timeout=5).status_code == 404


def test_empty_route_prefix(devhost_factory: Callable[..., DevHost], tmp_path: Path) -> None:
    host_json = tmp_path / "host.json"
    host_json.write_text(json.dumps({"extensions": {"http": {"routePrefix": ""}}}))
    host = devhost_factory(app=APP, host_json=host_json)
    assert requests.get(f"{host.base_url}/items/5", timeout=5).json()["id"] == "5"


def test_settings_are_applied_while_running_and_restored(devhost_factory: Callable[..., DevHost]) -> None:
    import os

    assert "DEVHOST_TEST_SETTING" not in os.environ
    host = devhost_factory(app=APP, host_json=None, settings={"DEVHOST_TEST_SETTING": "on"})
    assert requests.get(f"{host.base_url}/api/setting/DEVHOST_TEST_SETTING", timeout=5).text == "on"
    host.stop()
    assert "DEVHOST_TEST_SETTING" not in os.environ


def test_chunked_request_body(host: DevHost) -> None:
    chunks = (part for part in [b'{"hello": ', b'"chunks"}'])
    response = requests.post(
        f"{host.base_url}/api/echo/x", data=chunks, headers={"Content-Type": "application/json"}, timeout=5
    )
    assert response.status_code == 201
    assert response.json()["json"] == {"hello": "chunks"}
